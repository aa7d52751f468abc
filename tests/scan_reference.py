"""The reference path of a breast scan, for tests and benchmarks: `predict` (heat maps and all) once per
window, against which the batched `scan` must give the same answers."""

from __future__ import annotations

from mammodesk.inference.runner import ModelRunner
from mammodesk.inference.scan import ScanResult, _window_map, scan_windows
from mammodesk.io import Image


def scan_per_window(image: Image, runner: ModelRunner, overlap: float | None = None) -> ScanResult:
    boxes = scan_windows(image, runner, overlap)
    predictions = [runner.predict(image, tuple(box)) for box in boxes]
    positive = runner.card.positive_index
    return ScanResult(predictions, boxes, positive, _window_map(image.shape, boxes, predictions, positive))
