"""Running an ROI model over a whole breast: a grid of ROI-sized windows inside
the breast mask, each classified as the model was trained to, and a coarse
map of the positive class over the windows. It answers "where would this ROI
model look first?" on an image nobody has marked; it is not a detector and
the map is as good as the ROI model's CV figures, no better.

Speed: every window is preprocessed once on its own crop (an ROI model's spec
is window-local by definition - it was trained on crops, so running e.g.
non-local means or CLAHE once over the whole breast would change the pixels
at window borders and the answers with them); all windows (all their patches,
for patch models) then go through onnxruntime in large batches without the
Grad-CAM outputs, and only the windows whose maps are shown (the most
positive) are run again with them. The answers equal the per-window path's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mammodesk.anatomy import Anatomy, read_anatomy
from mammodesk.inference.results import Prediction, SourceMap
from mammodesk.inference.runner import ModelInputError, ModelRunner
from mammodesk.io import Image
from mammodesk.preprocessing.pectoral import pectoral_mask
from mammodesk.preprocessing.spatial import breast_mask

MAX_WINDOWS = 400  # beyond this the stride grows: a scan stays seconds, not minutes, on a CPU


@dataclass
class ScanResult:
    predictions: list[Prediction]  # one per window, in scan order
    boxes: np.ndarray              # (N, 4) source x0, y0, x1, y1 of each window
    positive: int                  # the class index the map shows
    map: SourceMap                 # mean probability of `positive` over the windows covering each pixel

    def ranked(self) -> list[int]:
        """Window indices, most positive first."""
        scores = np.array([p.probabilities[self.positive] for p in self.predictions])
        return list(np.argsort(-scores, kind="stable"))


def scan_windows(image: Image, runner: ModelRunner, overlap: float | None = None,
                 anatomy: Anatomy | None = None) -> np.ndarray:
    """(N, 4) ROI boxes (x0, y0, x1, y1) on a grid over the breast: windows of the
    model's ROI size at this image's spacing, `overlap` shared with each neighbour,
    kept when their centre lies on the breast mask."""
    if runner.card.reads_whole_image:
        raise ModelInputError(f"{runner.card.name} classifies whole images; there is nothing to scan")
    rows, cols = image.shape
    _, _, size_y, size_x = runner.roi_window(image, (cols / 2, rows / 2, cols / 2 + 1, rows / 2 + 1))
    size = max(size_x, size_y)
    if size > min(rows, cols):
        raise ModelInputError(f"the image ({cols}x{rows}) is smaller than one {size}-pixel ROI of "
                              f"{runner.card.name}")
    overlap = runner.card.mode.scan_overlap if overlap is None else overlap
    mask = tissue_mask(image, anatomy)
    if not mask.any():
        raise ModelInputError("no breast found in the image (blank or unreadable contrast); place ROIs by hand")
    stride = max(1, int(size * (1 - overlap)))
    ys, xs = np.nonzero(mask)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    while True:
        centres = [(cx, cy) for cy in _centres(top, bottom, size, stride) for cx in _centres(left, right, size, stride)]
        inside = [(cx, cy) for cx, cy in centres if mask[min(cy, rows - 1), min(cx, cols - 1)]]
        if len(inside) <= MAX_WINDOWS:
            break
        stride = int(stride * 1.25) + 1
    half = size / 2
    return np.array([(cx - half, cy - half, cx + half, cy + half) for cx, cy in inside], float).reshape(-1, 4)


def tissue_mask(image: Image, anatomy: Anatomy | None = None) -> np.ndarray:
    """What a scan covers: the breast (film borders, labels and marks out), less the pectoral muscle
    on an MLO view where it is seen (a window on the muscle looks at muscle, not at breast). `anatomy`:
    the image's, when known (from its load); read here otherwise."""
    valid = None if image.meta.padding_mask is None else ~image.meta.padding_mask
    mask = breast_mask(image.pixels, valid)
    anatomy = anatomy or read_anatomy(image)
    if mask.any() and anatomy.family == "MLO":
        muscle = pectoral_mask(image.pixels, mask, anatomy.chest_wall)
        if muscle is not None:
            mask &= ~muscle
    return mask


def _centres(start: int, end: int, size: int, stride: int) -> list[int]:
    """Window centres along one axis from `start` to `end` (exclusive): the first window flush with the
    start, the last flush with the end (the chest wall is never left out), the rest evenly between."""
    span = end - start
    if span <= size:
        return [start + span // 2]
    count = int(np.ceil((span - size) / stride)) + 1
    return [int(round(v)) for v in np.linspace(start + size / 2, end - size / 2, count)]


def scan(image: Image, runner: ModelRunner, *, overlap: float | None = None,
         progress: Callable[[int, int], None] | None = None,
         should_stop: Callable[[], bool] | None = None, explained: int = 1,
         anatomy: Anatomy | None = None) -> ScanResult:
    """Classify every window of `scan_windows` in batches; the `explained` most positive windows
    also get their heat maps. `progress(done, total)` follows the batches; `should_stop()`
    returning True ends the scan early (InterruptedError)."""
    boxes = scan_windows(image, runner, overlap, anatomy)
    if len(boxes) == 0:
        raise ModelInputError("the breast is smaller than one ROI of this model")
    predictions = runner.predict_windows(image, [tuple(box) for box in boxes], progress=progress,
                                         should_stop=should_stop)
    positive = runner.card.positive_index
    result = ScanResult(predictions, boxes, positive, _window_map(image.shape, boxes, predictions, positive))
    if runner.card.has_cams:
        for index in result.ranked()[:explained]:
            predictions[index] = runner.predict(image, tuple(boxes[index]))
    return result


def _window_map(shape: tuple[int, int], boxes: np.ndarray, predictions: list[Prediction], positive: int) -> SourceMap:
    rows, cols = shape
    left = int(max(0, np.floor(boxes[:, 0].min())))
    top = int(max(0, np.floor(boxes[:, 1].min())))
    right = int(min(cols, np.ceil(boxes[:, 2].max())))
    bottom = int(min(rows, np.ceil(boxes[:, 3].max())))
    total = np.zeros((bottom - top, right - left), np.float32)
    hits = np.zeros_like(total)
    for (x0, y0, x1, y1), prediction in zip(boxes, predictions):
        r0, r1 = int(max(y0, top)) - top, int(min(y1, bottom)) - top
        c0, c1 = int(max(x0, left)) - left, int(min(x1, right)) - left
        total[r0:r1, c0:c1] += prediction.probabilities[positive]
        hits[r0:r1, c0:c1] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(hits > 0, total / hits, np.nan).astype(np.float32)
    return SourceMap(top, left, values)
