"""Why a DICOM file is short, in numbers. A file cut after its header
(an interrupted copy or download) is the commonest damaged DICOM; pydicom
then either returns an empty dataset (encapsulated pixel data) or reports a
short read. This module measures what is there against what the header
promises: "pixel data truncated (N of M bytes)"."""

from __future__ import annotations

import struct
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian
ITEM, SEQUENCE_END = (0xFFFE, 0xE000), (0xFFFE, 0xE0DD)
UNDEFINED = 0xFFFFFFFF


def header_only(path: Path) -> Dataset | None:
    """The dataset up to its pixel data, or None when even that cannot be read."""
    try:
        return pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - a damaged header is reported by the caller
        return None


def expected_native_bytes(ds: Dataset) -> int | None:
    try:
        rows, cols, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return None
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return rows * cols * samples * frames * ((bits + 7) // 8)


def describe_truncation(path: Path, ds: Dataset | None = None) -> str | None:
    """'pixel data truncated (N of M bytes)' when the file ends inside its pixel data or before it,
    None when the file is not short (its damage is of another kind)."""
    ds = ds if ds is not None and "Rows" in ds else header_only(path)
    if ds is None or "Rows" not in ds:
        return None
    data = path.read_bytes()
    start = data.find(PIXEL_DATA_TAG)  # the first: compressed fragments may hold the same four bytes
    expected = expected_native_bytes(ds)
    if start < 0:
        return None  # no pixel data element at all: cut just before it, or an object without pixels
    explicit = data[start + 4:start + 6].isalpha()
    value_at = start + (12 if explicit else 8)
    if value_at > len(data):
        return f"pixel data truncated (0 of {expected} bytes)" if expected else "pixel data truncated"
    (length,) = struct.unpack("<I", data[value_at - 4:value_at])
    present = len(data) - value_at
    if length != UNDEFINED:
        return f"pixel data truncated ({present} of {length} bytes)" if present < length else None
    return _encapsulated(data, value_at)


def _encapsulated(data: bytes, offset: int) -> str | None:
    """Walk the fragments of encapsulated (compressed) pixel data; report where they run out."""
    present = len(data) - offset
    declared = 0
    while offset + 8 <= len(data):
        group, element, length = struct.unpack("<HHI", data[offset:offset + 8])
        if (group, element) == SEQUENCE_END:
            return None
        if (group, element) != ITEM:
            return None  # not a fragment: damaged some other way
        declared += 8 + length
        offset += 8 + length
        if offset > len(data):
            return f"pixel data truncated ({present} of at least {declared} bytes of compressed fragments)"
    return f"pixel data truncated ({present} bytes of compressed fragments; the end-of-fragments marker is missing)"
