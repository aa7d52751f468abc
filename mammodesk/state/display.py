"""Pure functions behind the canvas: window LUTs, window/level dragging,
chest-wall orientation and thumbnails.

Every window (LINEAR, LINEAR_EXACT, SIGMOID or a DICOM LUT sequence, with or
without inversion) becomes one lookup table indexed by the stored value, so
the view applies it to the native-dtype pixels in a single pass and
window/level dragging never touches the pixels again.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np

from mammodesk.io.image import Image, WindowPreset
from mammodesk.io.voi import apply_window, auto_window
from mammodesk.preprocessing.spatial import chest_wall_side

Side = Literal["left", "right"]
LUT_LIMIT = 1 << 16


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


def standard_side(laterality: str | None) -> Side:
    """Radiological display: a right breast is shown as if facing the patient,
    chest wall on the right of the screen; a left breast mirrored, so the two
    chest walls meet in the middle of a hanging. Unknown laterality: left."""
    return "right" if laterality == "R" else "left"


def needs_flip(image: Image) -> bool:
    """Whether the image must be mirrored to show its chest wall on its standard side."""
    side = chest_wall_side(_small(image.pixels), image.meta.laterality)
    return side != standard_side(image.meta.laterality)


def thumbnail(image: Image, size: int = 160) -> np.ndarray:
    """A uint8 thumbnail (longest side `size`) under the image's default or auto window."""

    small = _small(image.pixels, size)
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


def _small(pixels: np.ndarray, size: int = 512) -> np.ndarray:
    rows, cols = pixels.shape[:2]
    factor = min(1.0, size / max(rows, cols))
    if factor == 1.0:
        return pixels
    target = (max(1, round(cols * factor)), max(1, round(rows * factor)))
    return cv2.resize(pixels, target, interpolation=cv2.INTER_AREA)
