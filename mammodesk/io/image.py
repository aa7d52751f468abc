"""The immutable `Image`: pixels in their native dtype plus the metadata that
decides how they may be displayed, processed and split.

Pixel convention: after reading, every image has *presentation polarity*
(higher value = denser tissue = brighter), whatever the file's photometric
interpretation. The modality LUT is applied; the VOI LUT is kept as window
presets because window/level is interactive (see `mammodesk.io.voi`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

from mammodesk.io import shared_pixels

VoiFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID", "LUT"]
SUPPORTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


def _frozen(array: np.ndarray | None) -> np.ndarray | None:
    if array is None:
        return None
    array = np.asarray(array)
    if array.flags.writeable:
        array = array.copy() if not array.flags.owndata else array
        array.flags.writeable = False
    return array


@dataclass(frozen=True)
class WindowPreset:
    """One VOI transform: a window (centre/width + function) or an explicit LUT.

    For `LUT`, `lut` holds the outputs already scaled to [0, 1] by the LUT
    Descriptor's bit depth, and `lut_first` is the first input value mapped;
    inputs outside the table clamp to its ends.
    """

    center: float
    width: float
    function: VoiFunction = "LINEAR"
    name: str = ""
    lut: np.ndarray | None = field(default=None, compare=False, repr=False)
    lut_first: int = 0

    def __post_init__(self) -> None:
        if self.function != "LUT" and not self.width > 0:
            raise ValueError(f"window width must be > 0, got {self.width}")
        if self.function == "LUT" and (self.lut is None or len(self.lut) < 2):
            raise ValueError("a LUT preset needs a table of at least two entries")
        object.__setattr__(self, "lut", _frozen(self.lut))

    @property
    def label(self) -> str:
        if self.function == "LUT":
            return self.name or "VOI LUT"
        text = f"W {self.width:g} / L {self.center:g}"
        return f"{self.name} ({text})" if self.name else text


@dataclass(frozen=True)
class ImageMeta:
    """What we know about an image beyond its pixels. Nothing identifying by default:
    `identifying` is filled only when a reader is asked to keep it."""

    source_path: Path | None = None
    format: str = ""
    modality: str = ""
    laterality: Literal["L", "R"] | None = None
    view: str | None = None
    photometric_interpretation: str = "MONOCHROME2"
    bits_stored: int = 8
    pixel_spacing_mm: tuple[float, float] | None = None
    window_presets: tuple[WindowPreset, ...] = ()
    padding_mask: np.ndarray | None = field(default=None, compare=False, repr=False)
    patient_key: str | None = None
    study_key: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    identifying: Mapping[str, str] | None = field(default=None, compare=False, repr=False)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "padding_mask", _frozen(self.padding_mask))
        if self.source_path is not None:
            object.__setattr__(self, "source_path", Path(self.source_path))

    @property
    def default_window(self) -> WindowPreset | None:
        return self.window_presets[0] if self.window_presets else None


@dataclass(frozen=True)
class Image:
    """A single-frame greyscale mammogram. Pixels are read-only, H x W."""

    pixels: np.ndarray
    meta: ImageMeta = field(default_factory=ImageMeta)

    def __post_init__(self) -> None:
        pixels = np.asarray(self.pixels)
        if pixels.ndim != 2:
            raise ValueError(f"Image pixels must be 2-D (H x W), got shape {pixels.shape}")
        if pixels.dtype not in SUPPORTED_DTYPES:
            raise ValueError(f"Image pixels must be uint8, uint16 or float32, got {pixels.dtype}")
        mask = self.meta.padding_mask
        if mask is not None and mask.shape != pixels.shape:
            raise ValueError(f"padding mask {mask.shape} does not match pixels {pixels.shape}")
        object.__setattr__(self, "pixels", _frozen(pixels))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["pixels"] = shared_pixels.export(self.pixels)  # a decoding worker's pixels travel by shared memory
        return state

    def __setstate__(self, state: dict) -> None:
        # Unpickled pixels (from a loader process) are a fresh array that nobody else holds: marking
        # them read-only keeps them frozen without the 12 MP copy that _frozen would make at every
        # later Image(...) of the same pixels.
        pixels = shared_pixels.take(state["pixels"])
        if isinstance(pixels, np.ndarray):
            pixels.flags.writeable = False
        self.__dict__.update(state, pixels=pixels)

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        return self.pixels.dtype

    @property
    def max_value(self) -> float:
        """Largest value the stored bit depth can hold (1.0 for float images)."""
        if self.dtype == np.float32:
            return 1.0
        return float(2 ** self.meta.bits_stored - 1)

    @cached_property
    def pixel_hash(self) -> str:
        """sha256 of shape, dtype and pixel bytes: identifies identical images across files."""
        digest = hashlib.sha256(f"{self.shape}|{self.dtype.str}|".encode())
        digest.update(np.ascontiguousarray(self.pixels).tobytes())
        return digest.hexdigest()

    def with_meta(self, **changes: Any) -> "Image":
        return Image(self.pixels, replace(self.meta, **changes))
