"""The reader's per-image work, on disk: each image's trunk feature maps (float16 rows of one memory-mapped
file per reading), and the small things read with them (breast and tissue cells, the baseline's statistics,
the geometry from source pixels to the map, the acquisition).

A cache belongs to one way of reading (trunk, spec, spacing, flipped reading, this code's cache version); an
image's entry is keyed by the SHA-256 of its file's bytes and what the data list states about it (assumed
spacing, side, view). So a second run, with other head settings or other folds, reads no image twice, and a
killed run continues where it stopped: rows are appended and flushed before their entry is written, and a
partial row at the end of a file is cut off on the next open.

Nothing identifying is stored: file contents are named by their hash, never by path."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CACHE_VERSION = 1  # bump when what an entry holds, or how it is computed, changes


def image_key(path: Path, stated: dict) -> str:
    """The SHA-256 of the file's bytes and of what the data list states about it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(json.dumps(stated, sort_keys=True).encode())
    return digest.hexdigest()


def reading_key(about: dict) -> str:
    """The way of reading, with the code that reads: a new release of MammoDesk or torch reads afresh."""
    from mammodesk_train.app import APP_VERSION

    versions = {"cache_version": CACHE_VERSION, "mammodesk": APP_VERSION, "torch": torch.__version__}
    return hashlib.sha256(json.dumps({**about, **versions}, sort_keys=True).encode()).hexdigest()


@dataclass
class Entry:
    """One image's small results; its feature rows are `row` of each reading's file."""

    row: int
    breast: np.ndarray  # cells bool
    tissue: np.ndarray  # cells bool
    base: np.ndarray  # the plain baseline's features
    stats: np.ndarray  # mean and sd of the processed input's breast pixels
    side: str
    family: str
    matrix: np.ndarray  # 3x3, source pixels -> processed input
    input_shape: tuple[int, int]
    acquisition: dict  # format, bits_stored, pixel_spacing_mm, conversion: what the domain record needs


class FeatureCache:
    def __init__(self, root: Path, about: dict, readings: tuple[str, ...] = ("upright",)) -> None:
        self.folder = root / reading_key(about)[:20]
        self.entries = self.folder / "entries"
        self.entries.mkdir(parents=True, exist_ok=True)
        (self.folder / "about.json").write_text(json.dumps({**about, "cache_version": CACHE_VERSION}, indent=1))
        self.readings = readings
        self.shape: tuple[int, int] | None = None  # cells, channels: set by the first row written or found
        shape_file = self.folder / "shape.json"
        if shape_file.is_file():
            self.shape = tuple(json.loads(shape_file.read_text()))
            self._trim()

    def _file(self, reading: str) -> Path:
        return self.folder / f"{reading}.f16"

    def _row_bytes(self) -> int:
        return self.shape[0] * self.shape[1] * 2

    def _trim(self) -> None:
        """A killed run may have left half a row, or a row in one reading and not the next: cut every file back
        to the whole rows all readings hold."""
        rows = min(self._file(r).stat().st_size // self._row_bytes() if self._file(r).is_file() else 0
                   for r in self.readings)
        for reading in self.readings:
            path = self._file(reading)
            if path.is_file() and path.stat().st_size != rows * self._row_bytes():
                os.truncate(path, rows * self._row_bytes())

    def get(self, key: str) -> Entry | None:
        path = self.entries / f"{key[:32]}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                about = json.loads(str(stored["about"]))
                entry = Entry(int(about["row"]), stored["breast"], stored["tissue"], stored["base"], stored["stats"],
                              about["side"], about["family"], stored["matrix"], tuple(about["input_shape"]),
                              about["acquisition"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # damaged: read the image again
            return None
        rows = min(self._file(r).stat().st_size // self._row_bytes() if self._file(r).is_file() else 0
                   for r in self.readings) if self.shape else 0
        return entry if entry.row < rows else None

    def put(self, key: str, maps: dict[str, np.ndarray], entry: Entry) -> Entry:
        """Append the image's feature rows (cells x C, one per reading), flush them, then write its entry."""
        first = next(iter(maps.values()))
        if self.shape is None:
            self.shape = tuple(first.shape)
            (self.folder / "shape.json").write_text(json.dumps(list(self.shape)))
        if tuple(first.shape) != self.shape:
            raise ValueError(f"feature map of {first.shape} in a cache of {self.shape}")
        self._trim()
        rows = []
        for reading in self.readings:
            with open(self._file(reading), "ab") as handle:
                rows.append(handle.tell() // self._row_bytes())
                handle.write(np.ascontiguousarray(maps[reading], np.float16).tobytes())
                handle.flush()
                os.fsync(handle.fileno())
        if len(set(rows)) != 1:
            raise RuntimeError(f"the cache's readings are out of step at {self.folder}")
        entry.row = rows[0]
        about = {"row": entry.row, "side": entry.side, "family": entry.family, "input_shape": list(entry.input_shape),
                 "acquisition": entry.acquisition}
        partial = self.entries / f".{key[:32]}.{os.getpid()}.npz"
        np.savez(partial, breast=entry.breast, tissue=entry.tissue, base=entry.base, stats=entry.stats,
                 matrix=entry.matrix, about=np.array(json.dumps(about)))
        os.replace(partial, self.entries / f"{key[:32]}.npz")
        return entry

    def rows(self, reading: str, index: list[int]) -> "Rows":
        return Rows(self._file(reading), np.asarray(index, np.int64), self.shape)


class Rows:
    """N x cells x C feature maps in a float16 file, memory-mapped: indexing reads only the rows asked for and
    returns them as float32 tensors, so the whole set never has to fit in memory."""

    def __init__(self, path: Path, index: np.ndarray, shape: tuple[int, int]) -> None:
        self.path, self.index, self.cells, self.channels = path, index, int(shape[0]), int(shape[1])
        self._map = np.memmap(path, np.float16, "r", shape=(os.path.getsize(path) // (self.cells * self.channels * 2),
                                                           self.cells, self.channels))

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.index), self.cells, self.channels

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, which) -> torch.Tensor:
        rows = self.index[which.numpy() if isinstance(which, torch.Tensor) else which]
        out = torch.from_numpy(self._map[np.atleast_1d(rows)]).float()  # torch widens float16 twice as fast as numpy
        return out if np.ndim(rows) else out[0]  # one image: its cells x C (a copy, never the read-only mapping)
