"""Netpbm PGM reader (P2 plain and P5 raw), the MIAS format. 16-bit samples
are big-endian, as the Netpbm specification requires."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mammodesk.errors import CorruptFileError, UnsupportedImageError
from mammodesk.io.image import Image, ImageMeta
from mammodesk.io.naming import infer_from_name
from mammodesk.io.voi import auto_window
from mammodesk.io.registry import ImageFormat, register_format

_TOKEN = re.compile(rb"\s*(?:#[^\n]*\n\s*)*(\S+)")


def sniff_pgm(head: bytes) -> bool:
    return len(head) >= 3 and head[:2] in (b"P2", b"P5") and head[2:3].isspace()


def read_pgm(path: str | Path, *, keep_identifying: bool = False) -> Image:
    path = Path(path)
    data = path.read_bytes()
    magic, width, height, maxval, offset = _header(path, data)
    if not 0 < maxval < 65536:
        raise CorruptFileError(path, f"PGM maxval {maxval} is outside 1..65535")
    dtype = np.uint8 if maxval < 256 else np.uint16
    count = width * height
    if magic == b"P5":
        raw = data[offset + 1:]  # exactly one whitespace byte separates header and raster
        sample = np.dtype(">u2") if dtype == np.uint16 else np.dtype("u1")
        if len(raw) < count * sample.itemsize:
            raise CorruptFileError(
                path, f"PGM raster truncated: {len(raw)} bytes for {width}x{height} "
                f"{sample.itemsize * 8}-bit pixels ({count * sample.itemsize} needed)")
        pixels = np.frombuffer(raw, dtype=sample, count=count).astype(dtype)
    else:
        values = data[offset:].split()
        if len(values) < count:
            raise CorruptFileError(path, f"plain PGM has {len(values)} samples, {count} needed")
        try:
            pixels = np.array([int(v) for v in values[:count]], dtype=np.int64)
        except ValueError as exc:
            raise CorruptFileError(path, f"plain PGM sample is not an integer ({exc})") from exc
        if pixels.min() < 0 or pixels.max() > maxval:
            raise CorruptFileError(path, f"plain PGM samples exceed maxval {maxval}")
        pixels = pixels.astype(dtype)
    pixels = pixels.reshape(height, width)
    hints = infer_from_name(path.stem)
    meta = ImageMeta(
        source_path=path,
        format="PGM",
        laterality=hints.laterality,  # type: ignore[arg-type]
        view=hints.view,
        bits_stored=max(1, int(maxval).bit_length()),
        pixel_spacing_mm=(0.2, 0.2) if path.stem.lower().startswith("mdb") else None,
        window_presets=(auto_window(pixels),),
        patient_key=hints.patient_key,
    )
    return Image(pixels, meta)


def _header(path: Path, data: bytes) -> tuple[bytes, int, int, int, int]:
    magic = data[:2]
    if magic not in (b"P2", b"P5"):
        raise UnsupportedImageError(path, f"Netpbm type {magic!r} is not greyscale PGM")
    fields: list[int] = []
    position = 2
    while len(fields) < 3:
        match = _TOKEN.match(data, position)
        if match is None:
            raise CorruptFileError(path, "PGM header ends before width, height and maxval")
        try:
            fields.append(int(match.group(1)))
        except ValueError as exc:
            raise CorruptFileError(path, f"PGM header field {match.group(1)!r} is not a number") from exc
        position = match.end()
    width, height, maxval = fields
    if width <= 0 or height <= 0:
        raise CorruptFileError(path, f"PGM size {width}x{height} is invalid")
    return magic, width, height, maxval, position


register_format(ImageFormat("pgm", "Netpbm PGM", sniff_pgm, read_pgm, suffixes=(".pgm", ".pnm")))
