"""Display maths beside the VOI transforms: window LUTs, window/level dragging,
the one downscale (`reduce_longest`), thumbnails and the display-resolution copy
(which side is the chest wall is `mammodesk.anatomy`'s; where the breast is,
`preprocessing.spatial.outline_breast`'s).

Every window (LINEAR, LINEAR_EXACT, SIGMOID or a DICOM LUT sequence, with or
without inversion) becomes one lookup table indexed by the stored value, so
the view applies it to the native-dtype pixels in a single pass and
window/level dragging never touches the pixels again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from mammodesk.io import shared_pixels
from mammodesk.io.image import Image, WindowPreset
from mammodesk.io.voi import apply_window, auto_window

LUT_LIMIT = 1 << 16
# The longest side of the copy a view shows while the whole image is in sight. The window LUT is
# applied to every shown pixel on each paint: four 12 MP views cost 100-200 ms of UI thread, four
# copies of this size about a tenth. Zoomed in further, the view shows full-resolution crops.
DISPLAY_LONGEST = 1536


def lut_size(pixels: np.ndarray) -> int:
    """Entries a display LUT needs for these (integer) pixels."""
    if pixels.dtype == np.uint8:
        return 256
    return LUT_LIMIT


def window_lut(preset: WindowPreset, size: int, *, inverted: bool = False) -> np.ndarray:
    """uint8 grey levels for stored values 0..size-1 under `preset`."""
    grey = np.rint(apply_window(np.arange(size, dtype=np.float32), preset) * 255.0).astype(np.uint8)
    return 255 - grey if inverted else grey


def drag_window(preset: WindowPreset, dx: float, dy: float, value_span: float) -> WindowPreset:
    """Window/level by mouse drag, the radiology convention: right = wider
    window (less contrast), down = higher level (darker). One pixel moves by
    1/500 of the value span; width changes multiplicatively so fine and
    coarse windows both feel right. A DICOM LUT preset becomes LINEAR here."""
    step = value_span / 500.0
    width = float(np.clip(preset.width * math.exp(dx / 250.0), 2.0, 2.0 * value_span))
    center = float(np.clip(preset.center + dy * step, -value_span, 2.0 * value_span))
    function = "LINEAR" if preset.function == "LUT" else preset.function
    return WindowPreset(center, width, function, "custom")


def breast_window(image: Image, reduced: np.ndarray, breast: np.ndarray) -> WindowPreset:
    """An automatic window over the breast's own pixels (0.5th-99.8th percentile of `reduced`, a
    reduced copy, where `breast`); the whole image's percentiles when under 100 pixels are breast."""
    if breast.sum() < 100:
        return auto_window(image.pixels, image.meta.padding_mask)
    lo, hi = (float(v) for v in np.percentile(reduced[breast], [0.5, 99.8]))
    if hi <= lo:
        hi = lo + 1.0
    return WindowPreset((lo + hi) / 2, hi - lo, "LINEAR_EXACT", "auto (breast)")


COARSEST = 512  # the smallest copy kept: a view never needs fewer pixels than this to look sharp


@dataclass(frozen=True)
class DisplayCopy:
    """A reduced copy of an image's pixels (same dtype, so the same window LUT applies), with a
    coarser copy of itself (half the size) while that one still has COARSEST pixels a side: a view
    painted in a 2x2 hanging needs a quarter of the full copy's pixels, and the LUT is applied to
    every pixel the item holds."""

    pixels: np.ndarray
    scale: tuple[float, float]  # source pixels per copy pixel, (rows, columns)
    coarser: "DisplayCopy | None" = None

    def __getstate__(self) -> dict:
        return dict(self.__dict__, pixels=shared_pixels.export(self.pixels))  # see Image.__getstate__

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, pixels=shared_pixels.take(state["pixels"]))

    @property
    def factor(self) -> float:
        return max(self.scale)

    def level_for(self, source_per_device_pixel: float) -> "DisplayCopy":
        """The coarsest copy that still gives every device pixel at least one copy pixel."""
        if self.coarser is not None and self.coarser.factor <= source_per_device_pixel:
            return self.coarser.level_for(source_per_device_pixel)
        return self


def display_copy(pixels: np.ndarray, longest: int = DISPLAY_LONGEST) -> DisplayCopy | None:
    """The display-resolution copy (area-averaged) and its coarser levels, or None when the image is
    small enough to show as it is. Made once per load, in the loader."""
    rows, cols = pixels.shape[:2]
    if max(rows, cols) <= longest * 1.25 or pixels.ndim != 2:
        return None
    levels = [reduce_longest(pixels, longest)]
    while max(levels[-1].shape) // 2 >= COARSEST:
        levels.append(reduce_longest(levels[-1], max(levels[-1].shape) // 2))
    copy = None
    for small in reversed(levels):
        copy = DisplayCopy(small, (rows / small.shape[0], cols / small.shape[1]), copy)
    return copy


def thumbnail(image: Image, size: int = 160) -> np.ndarray:
    """A uint8 thumbnail (longest side `size`) under the image's default or auto window."""

    small = reduce_longest(image.pixels, size)
    preset = image.meta.default_window or auto_window(small)
    return np.rint(apply_window(small, preset) * 255).astype(np.uint8)


def to_display_integers(array: np.ndarray) -> np.ndarray:
    """A processed array as integers a LUT can index: floats (assumed in [0, 1]
    after normalise/window ops, otherwise min-max scaled) become uint16; RGB
    model inputs show their first channel."""
    if array.ndim == 3:
        array = array[..., 0]
    if np.issubdtype(array.dtype, np.integer):
        return array if array.dtype in (np.uint8, np.uint16) else np.clip(array, 0, 65535).astype(np.uint16)
    finite = array[np.isfinite(array)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    scaled = (np.nan_to_num(array, nan=lo) - lo) * (65535.0 / max(hi - lo, 1e-12))
    return np.clip(scaled, 0, 65535).astype(np.uint16)


def reduce_longest(pixels: np.ndarray, size: int) -> np.ndarray:
    """An area-averaged copy whose longest side is at most `size` (the pixels themselves when
    already small enough); same dtype."""
    rows, cols = pixels.shape[:2]
    factor = min(1.0, size / max(rows, cols))
    if factor == 1.0:
        return pixels
    target = (max(1, round(cols * factor)), max(1, round(rows * factor)))
    return cv2.resize(pixels, target, interpolation=cv2.INTER_AREA)
