"""Running a preprocessing spec for display: a quick pass at the view's
resolution, then the full-resolution result, both in workers. A newer edit
supersedes older work through a generation counter, and a stopped job ends
at the next op boundary (OpenCV calls themselves cannot be interrupted, so
their result is simply dropped)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mammodesk.io.image import Image, WindowPreset
from mammodesk.io.voi import auto_window
from mammodesk.preprocessing import Frame, PipelineSpec, ProcessedImage, initial_frame
from mammodesk.io.display import to_display_integers


class Cancelled(Exception):
    """A processing job noticed it was superseded or stopped."""


@dataclass(frozen=True)
class ProcessedView:
    result: ProcessedImage
    shown: np.ndarray  # uint8/uint16, what the display LUT indexes
    auto_window: WindowPreset
    preview: bool
    elapsed_ms: float

    @property
    def value_span(self) -> float:
        return 255.0 if self.shown.dtype == np.uint8 else 65535.0


def preview_scale(image_shape: tuple[int, int], view_size: tuple[int, int]) -> float:
    """The scale at which the image fills a view of (width, height) device pixels."""
    rows, cols = image_shape
    width, height = view_size
    return float(min(1.0, max(width / cols, height / rows, 1e-3)))


class FrameCache:
    """The downscaled starting frame of recent previews: downscaling a
    4096x3328 image costs more than a median on the result, and every slider
    step of an image starts from the same frame."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._frames: OrderedDict[tuple[int, float], tuple[Image, Frame]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, image: Image, scale: float) -> Frame:
        key = (id(image), round(scale, 4))
        with self._lock:
            hit = self._frames.get(key)
            if hit is not None and hit[0] is image:
                self._frames.move_to_end(key)
                return hit[1]
        frame = initial_frame(image, scale)
        with self._lock:
            self._frames[key] = (image, frame)  # holding the image keeps id() unambiguous
            while len(self._frames) > self._size:
                self._frames.popitem(last=False)
        return frame


def process_for_display(image: Image, spec: PipelineSpec, *, scale: float = 1.0,
                        should_stop: Callable[[], bool] = lambda: False,
                        cache: FrameCache | None = None) -> ProcessedView:
    start = time.perf_counter()
    frame = cache.get(image, scale) if cache is not None and scale < 1.0 else initial_frame(image, scale)
    for op in spec.ops:
        if should_stop():
            raise Cancelled
        frame = op(frame)
    if should_stop():
        raise Cancelled
    result = ProcessedImage(frame.pixels, frame.geometry, frame.mask)
    shown = to_display_integers(result.array)
    window = auto_window(shown, None if result.mask is None else ~result.mask)
    return ProcessedView(result, shown, window, scale < 1.0, (time.perf_counter() - start) * 1000)


class Generations:
    """Hands out increasing job numbers per key; a job is current while no
    newer one was started for its key. Thread-safe: workers ask `is_current`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[object, int] = {}
        self._counter = 0

    def start(self, key: object) -> int:
        with self._lock:
            self._counter += 1
            self._latest[key] = self._counter
            return self._counter

    def is_current(self, key: object, generation: int) -> bool:
        with self._lock:
            return self._latest.get(key) == generation

    def cancel(self, key: object) -> None:
        with self._lock:
            self._latest.pop(key, None)

    def cancel_all(self) -> None:
        with self._lock:
            self._latest.clear()


class ScheduleBook:
    """Which views' processing was started for which spec (the spec's JSON): a view on screen is due
    when it has no result yet, or one computed for another spec, or the spec itself just changed."""

    def __init__(self) -> None:
        self._started: dict[int, str] = {}  # document id -> spec JSON

    def due(self, document_id: int, spec_key: str, respec: bool = False) -> bool:
        """Whether to start it now; a True answer records it as started."""
        if self._started.get(document_id) == spec_key and not respec:
            return False
        self._started[document_id] = spec_key
        return True

    def forget(self, document_id: int) -> None:
        self._started.pop(document_id, None)

    def clear(self) -> None:
        self._started.clear()
