"""Where the pectoral muscle is on an MLO view: the bright, roughly triangular
band in the upper chest-wall corner. Found on a small copy, in three steps:
the brighter part of the breast's upper chest-wall region (Otsu within the
breast), the component of it that holds that corner, then a straight edge
fitted robustly to its per-row extent. The muscle is the side of that line
next to the chest wall. None when no plausible muscle is seen (CC views, a
muscle hidden by dense tissue): "not known" is said, never a guess."""

from __future__ import annotations

import cv2
import numpy as np

WORK_ROWS = 256
MIN_SHARE, MAX_SHARE = 0.02, 0.45  # of the breast's area: outside this, what was found is not the muscle
MAX_APEX = 0.75  # the muscle's lower tip lies in the upper three quarters of the image


def pectoral_mask(pixels: np.ndarray, breast: np.ndarray, chest_wall: str) -> np.ndarray | None:
    """Bool mask of the pectoral muscle (`pixels`' shape), or None. `chest_wall`: 'left' or 'right'
    (the stored pixels' chest-wall side)."""
    rows, cols = breast.shape
    factor = WORK_ROWS / rows
    size = (max(8, round(cols * factor)), WORK_ROWS)
    small = cv2.resize(pixels.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(breast.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    if chest_wall == "right":  # work with the chest wall on the left
        small, mask = small[:, ::-1], mask[:, ::-1]
    edge = _muscle_edge(small, mask)
    if edge is None:
        return None
    a, b = edge  # the muscle lies left of x = a + b * row
    yy, xx = np.mgrid[0:small.shape[0], 0:small.shape[1]]
    muscle = (xx < a + b * yy) & mask
    share = muscle.sum() / max(mask.sum(), 1)
    if not MIN_SHARE <= share <= MAX_SHARE:
        return None
    if chest_wall == "right":
        muscle = muscle[:, ::-1]
    return cv2.resize(muscle.astype(np.uint8), (cols, rows), interpolation=cv2.INTER_NEAREST).astype(bool)


def _muscle_edge(small: np.ndarray, mask: np.ndarray) -> tuple[float, float] | None:
    rows, cols = mask.shape
    region = np.zeros_like(mask)
    region[: int(rows * 0.7), : max(2, int(cols * 0.7))] = True
    region &= mask
    values = small[region]
    if values.size < 50:
        return None
    eight = np.clip((small - values.min()) * (255.0 / max(float(np.ptp(values)), 1e-6)), 0, 255).astype(np.uint8)
    threshold, _ = cv2.threshold(eight[region].reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = ((eight > threshold) & region).astype(np.uint8)
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    _, labels = cv2.connectedComponents(bright)
    at_wall = []  # the labels along the breast's chest-wall edge in its upper third: the muscle's start
    for row in range(int(rows * 0.33)):
        on = np.flatnonzero(mask[row])
        if on.size:
            at_wall += [v for v in labels[row, on[0]:on[0] + 3] if v > 0]
    if not at_wall:
        return None
    muscle = labels == int(np.argmax(np.bincount(at_wall)))
    extent = np.array([_edge_in_row(muscle[r], mask[r]) for r in range(int(rows * 0.75))], float)
    present = np.flatnonzero(extent > 0)
    if present.size == 0:
        return None
    # The muscle only narrows going down; where the bright band widens again, glandular tissue has
    # joined it along the chest wall. Keep the rows at the running minimum of the extent.
    top = present[0]
    run = extent[top:]
    ends = np.flatnonzero(run == 0)
    run = run[: ends[0]] if ends.size else run
    narrowing = np.minimum.accumulate(run)
    ys = top + np.flatnonzero(run <= narrowing * 1.05)
    if ys.size < rows * 0.1:
        return None
    slope, intercept = _robust_line(ys.astype(float), extent[ys])
    if slope >= 0:  # a muscle narrows downwards
        return None
    wall = float(np.flatnonzero(mask.any(axis=0))[0])
    apex = (wall - intercept) / slope  # the row where the muscle's edge meets the chest wall
    if apex > rows * MAX_APEX:
        return None  # an edge that runs most of the way down is dense tissue, not the muscle
    return intercept, slope


def _edge_in_row(muscle: np.ndarray, breast: np.ndarray) -> int:
    """Where the muscle ends in one row: it must start at the breast's own chest-wall edge there
    (film margins leave a few dark columns first); 0 when the row has no muscle."""
    on = np.flatnonzero(breast)
    if on.size == 0 or not muscle[on[0]:on[0] + 3].any():
        return 0
    start = on[0] + int(np.argmax(muscle[on[0]:]))
    off = np.flatnonzero(~muscle[start:])
    return int(start + (off[0] if off.size else muscle.size - start))


def _robust_line(x: np.ndarray, y: np.ndarray, rounds: int = 3) -> tuple[float, float]:
    """Least squares, refitted without the points furthest from the line (tissue that joins the muscle)."""
    keep = np.ones(x.size, bool)
    slope, intercept = 0.0, float(np.median(y))
    for _ in range(rounds):
        if keep.sum() < 3:
            break
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        residual = np.abs(y - (slope * x + intercept))
        keep = residual <= max(2.0, np.percentile(residual, 80))
    return float(slope), float(intercept)
