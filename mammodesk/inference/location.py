"""Where an image reader's answer points: the most suspicious place on its
patch-logit map, and the box around it in source pixels (`predict`'s `roi`
column, the marker in the app). Training scores the same rule in its pointing
game (`mammodesk_train.reader.fit`), so the reported hit rate is the app's."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mammodesk.preprocessing import Geometry
from mammodesk.preprocessing.pectoral import pectoral_mask

LOCATION_MM = 25.6  # the location box's side, whatever the reader's cell size (4 cells of 6.4 mm at 0.4 mm)


def location_cells(cell_mm: float) -> float:
    """How many map cells of `cell_mm` the location box spans."""
    return LOCATION_MM / float(cell_mm)


def tissue_cells(model_input: np.ndarray, breast: np.ndarray, family: str | None) -> np.ndarray:
    """The cells a mark may sit on: breast cells whose eight neighbours are breast too (so never on the skin
    line, a film border or the map's edge, the chest wall included), less the pectoral muscle where one is
    seen (`pectoral_mask` on the reader's input, chest wall left; not on CC views). The breast cells when
    nothing is left (a tiny breast)."""
    padded = np.pad(breast, 1, constant_values=False)
    rows, cols = breast.shape
    interior = breast.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            interior &= padded[dy:dy + rows, dx:dx + cols]
    if family != "CC":
        grey = model_input[..., 0] if model_input.ndim == 3 else model_input
        muscle = pectoral_mask(grey, grey > 0, "left")
        if muscle is not None:
            step_y, step_x = grey.shape[0] // rows, grey.shape[1] // cols
            share = muscle[:rows * step_y, :cols * step_x].reshape(rows, step_y, cols, step_x).mean(axis=(1, 3))
            interior &= share < 0.5
    return interior if interior.any() else breast


def peak_centre(logits: np.ndarray, breast: np.ndarray, window: int = 1) -> tuple[float, float]:
    """The most suspicious place, in map cells (row, column; a cell's centre is at +0.5): the centre of the
    `window` x `window` block of cells (inside the map) whose breast cells have the highest mean logit. A
    block outweighs a lone hot cell; window 1 is the single highest breast cell."""
    rows, cols = logits.shape
    window = max(1, min(int(window), rows, cols))
    inside = breast & np.isfinite(logits)
    if not inside.any():
        raise ValueError("no breast cell on the map")
    values = np.where(inside, logits, 0.0).astype(np.float64)
    sums = sliding_window_view(values, (window, window)).sum(axis=(2, 3))
    counts = sliding_window_view(inside.astype(np.float64), (window, window)).sum(axis=(2, 3))
    means = np.where(counts > 0, sums / np.maximum(counts, 1.0), -np.inf)
    row, col = np.unravel_index(int(np.argmax(means)), means.shape)
    return row + window / 2, col + window / 2


def peak_box(logits: np.ndarray, breast: np.ndarray, geometry: Geometry, *, spacing_mm: float,
             window: int = 1) -> tuple[int, int, int, int]:
    """The answer's location: a box LOCATION_MM wide (on the model's input at `spacing_mm` per pixel) around
    `peak_centre` (on the raw logits: calibration can tie the top cells), in source pixels (x0, y0, x1, y1),
    inside the image."""
    centre_row, centre_col = peak_centre(logits, breast, window)
    rows, cols = geometry.output_shape
    step_y, step_x = rows / logits.shape[0], cols / logits.shape[1]
    cells = location_cells(step_y * spacing_mm)
    cy, cx = centre_row * step_y - 0.5, centre_col * step_x - 0.5
    half_y, half_x = cells * step_y / 2, cells * step_x / 2
    corners = geometry.inverse_points([[cx - half_x, cy - half_y], [cx + half_x, cy + half_y]])
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    src_rows, src_cols = geometry.source_shape
    x0, x1 = inside(int(x0), int(x1), src_cols)
    y0, y1 = inside(int(y0), int(y1), src_rows)
    return x0, y0, x1, y1


def inside(low: int, high: int, size: int) -> tuple[int, int]:
    """A box side moved (never cut) to lie within [margin, size - margin]: a mark is whole and never touches
    the image's edge; cut only when it is wider than the image."""
    width = max(1, high - low)
    if width > size:
        return 0, size
    margin = min(max(2, size // 100), (size - width) // 2)  # as much of a margin as the image leaves room for
    low = min(max(low, margin), size - margin - width)
    return low, low + width
