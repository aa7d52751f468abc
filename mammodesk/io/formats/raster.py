"""PNG, TIFF and JPEG through OpenCV with IMREAD_UNCHANGED, so 16-bit PNG/TIFF
keep their depth. Colour files are converted to grey with a warning."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mammodesk.errors import CorruptFileError, UnsupportedImageError
from mammodesk.io.image import Image, ImageMeta
from mammodesk.io.naming import infer_from_name
from mammodesk.io.voi import auto_window
from mammodesk.io.registry import ImageFormat, register_format

_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"II+\x00": "TIFF",  # BigTIFF
    b"MM\x00+": "TIFF",
    b"\xff\xd8\xff": "JPEG",
}


def raster_format(head: bytes) -> str | None:
    for signature, name in _SIGNATURES.items():
        if head.startswith(signature):
            return name
    return None


def sniff_raster(head: bytes) -> bool:
    return raster_format(head) is not None


def read_raster(path: str | Path, *, keep_identifying: bool = False) -> Image:
    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8)  # imdecode handles non-ASCII paths everywhere
    fmt = raster_format(data[:8].tobytes()) or "raster"
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise CorruptFileError(path, f"{fmt} data could not be decoded (truncated or damaged)")
    warns: list[str] = []
    if pixels.ndim == 3:
        pixels = _to_grey(path, pixels, warns)
    if pixels.dtype == np.float64 or pixels.dtype == np.float16:
        pixels = pixels.astype(np.float32)
    elif pixels.dtype == np.int16 or pixels.dtype == np.int32:
        warns.append(f"signed {pixels.dtype} samples converted to float32")
        pixels = pixels.astype(np.float32)
    elif pixels.dtype not in (np.uint8, np.uint16, np.float32):
        raise UnsupportedImageError(path, f"{fmt} sample type {pixels.dtype} is not supported")
    hints = infer_from_name(path.stem)
    meta = ImageMeta(
        source_path=path,
        format=fmt,
        laterality=hints.laterality,  # type: ignore[arg-type]
        view=hints.view,
        bits_stored=pixels.dtype.itemsize * 8 if pixels.dtype != np.float32 else 32,
        window_presets=(auto_window(pixels),),
        patient_key=hints.patient_key,
        warnings=tuple(warns),
    )
    return Image(pixels, meta)


def _to_grey(path: Path, pixels: np.ndarray, warns: list[str]) -> np.ndarray:
    channels = pixels.shape[2]
    if channels == 4:
        pixels = pixels[:, :, :3]
    elif channels != 3:
        raise UnsupportedImageError(path, f"{channels}-channel images are not supported")
    if np.array_equal(pixels[:, :, 0], pixels[:, :, 1]) and np.array_equal(pixels[:, :, 1], pixels[:, :, 2]):
        return np.ascontiguousarray(pixels[:, :, 0])
    warns.append("colour image converted to grey (luma); mammograms are greyscale")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)


register_format(ImageFormat("raster", "PNG/TIFF/JPEG", sniff_raster, read_raster, suffixes=(".png", ".tif", ".tiff", ".jpg", ".jpeg")))
