"""Pixels across a process boundary without holding the GIL. A 12 MP mammogram
pickled back from a decoding worker is 24 MB that the app's receiving thread
copies several times with the GIL held: measured on 2 cores, 20-25 ms of frozen
window per image. Instead the worker writes the pixels once into a POSIX
shared-memory segment and pickles only its name; the app copies them out with
numpy, which releases the GIL while it copies, and removes the segment.

Only a process that opts in (`share_from_this_process`, the decoding workers)
ships this way, because the receiver must take each segment exactly once.
Whatever goes wrong on the way out (no /dev/shm, too little room in it, not
POSIX) falls back to pickling the pixels as before."""

from __future__ import annotations

import os
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

SHARE_FROM_BYTES = 1 << 20  # smaller arrays pickle faster than a segment is made
_sharing = False


def share_from_this_process() -> None:
    global _sharing
    _sharing = os.name == "posix"  # a Windows segment vanishes with its last handle, before the app opens it


@dataclass(frozen=True)
class SharedPixels:
    """The pickled stand-in for an array left in a shared-memory segment."""

    name: str
    shape: tuple[int, ...]
    dtype: str


def export(array: np.ndarray) -> np.ndarray | SharedPixels:
    """What to pickle for `array`: a segment's name where this process shares, else the array."""
    if not _sharing or array.nbytes < SHARE_FROM_BYTES:
        return array
    try:
        segment = shared_memory.SharedMemory(create=True, size=array.nbytes)
    except OSError:
        return array
    try:
        descriptor = getattr(segment, "_fd", -1)
        if descriptor >= 0 and hasattr(os, "posix_fallocate"):
            # A full /dev/shm then fails here, as an error, rather than as SIGBUS while the pixels are written.
            os.posix_fallocate(descriptor, 0, array.nbytes)
        np.copyto(np.ndarray(array.shape, array.dtype, buffer=segment.buf), array)
    except OSError:
        segment.close()
        segment.unlink()
        return array
    segment.close()
    return SharedPixels(segment.name, tuple(array.shape), array.dtype.str)


def take(value: np.ndarray | SharedPixels) -> np.ndarray:
    """The array `export` shipped; a segment is copied out and removed."""
    if not isinstance(value, SharedPixels):
        return value
    segment = shared_memory.SharedMemory(name=value.name)
    try:
        shared = np.ndarray(value.shape, np.dtype(value.dtype), buffer=segment.buf)
        pixels = shared.copy()
        del shared  # the segment's buffer must have no views left before it closes
    finally:
        segment.close()
        segment.unlink()
    return pixels
