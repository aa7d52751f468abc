"""Decoding off the UI process. Some decoders (OpenJPEG through pylibjpeg)
hold the GIL for the whole decode - 1.6 s for a 4096x3328 JPEG 2000 frame,
measured - so a thread would freeze the window; a worker process does not,
and a decoder that crashes takes only the worker down, not the app."""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mammodesk.annotations.sidecar import (
    SidecarRead, pixel_sha256, read_sidecar, remove_stale_temporaries, sidecar_path,
)
from mammodesk.errors import ImageReadError
from mammodesk.io import Image, WindowPreset, read_image, supported_suffixes
from mammodesk.anatomy import Anatomy, read_anatomy
from mammodesk.io import decoding, display
from mammodesk.preprocessing.spatial import BreastOutline, outline_breast



@dataclass(frozen=True)
class Loaded:
    """An image plus what the view needs first, computed in the worker."""

    image: Image
    auto: WindowPreset  # the automatic window on the breast
    anatomy: Anatomy
    summary: "FileSummary"
    sha256: str = ""
    annotations: SidecarRead | None = None  # the image's saved labels, read off the UI thread
    display: display.DisplayCopy | None = None  # what the view paints while the whole image is in sight
    outline: BreastOutline | None = None  # where the breast is, found once: inference reads it too


@dataclass(frozen=True)
class FileSummary:
    """One row of the study browser."""

    path: str
    thumbnail: np.ndarray | None = None
    anatomy: Anatomy | None = None
    size: tuple[int, int] | None = None
    error: str | None = None
    labels: "LabelStatus | None" = None  # what its sidecar holds (None: not read)


@dataclass(frozen=True)
class LabelStatus:
    """An image's labels as a worklist shows them, read from its sidecar: a restart keeps the progress."""

    findings: int = 0
    authors: tuple[str, ...] = ()
    image_labels: bool = False  # density, BI-RADS or a note on the image itself

    @property
    def labelled(self) -> bool:
        return self.findings > 0 or self.image_labels

    @classmethod
    def of(cls, labels) -> "LabelStatus":
        if labels is None:
            return cls()
        authors = tuple(dict.fromkeys(a for f in labels.findings for a in (f.author, f.modified_by) if a))
        return cls(len(labels.findings), authors, bool(labels.density or labels.birads is not None or labels.note))


@dataclass(frozen=True)
class LoadFailure:
    path: str
    message: str


def load(path: str) -> Loaded | LoadFailure:
    """Runs in a worker process: failures come back as values, with the reader's message."""
    try:
        image = read_image(path)
    except ImageReadError as exc:
        return LoadFailure(path, exc.cause)
    sha256 = pixel_sha256(image.pixels)
    sidecar = sidecar_path(Path(path), sha256)
    remove_stale_temporaries(sidecar)
    annotations = read_sidecar(sidecar, sha256, image.shape)
    outline = outline_breast(image)  # once per load: the anatomy and the automatic window read it
    anatomy = read_anatomy(image, outline)
    return Loaded(image, display.breast_window(image, outline.pixels, outline.mask), anatomy,
                  _summary(path, image, anatomy, LabelStatus.of(annotations.labels)), sha256, annotations,
                  display.display_copy(image.pixels), outline)


def summarise(path: str) -> FileSummary:
    try:
        image = read_image(path)
    except ImageReadError as exc:
        return FileSummary(path, error=exc.cause)
    sha256 = pixel_sha256(image.pixels)
    status = LabelStatus.of(read_sidecar(sidecar_path(Path(path), sha256), sha256, image.shape).labels)
    return _summary(path, image, read_anatomy(image), status)


def _summary(path: str, image: Image, anatomy: Anatomy, labels: LabelStatus | None = None) -> FileSummary:
    return FileSummary(path, display.thumbnail(image), anatomy, image.shape, labels=labels)


def read_identifying(path: str) -> dict[str, str]:
    """The identifying DICOM tags of a file, for the metadata panel's explicit
    'reveal' (header only; empty for formats that carry none)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from mammodesk.io.phi import split_tags

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return {}
    return split_tags(dataset)[1]


def folder_files(folder: str | Path) -> list[str]:
    """Candidate image files of a folder (not recursive), sorted by name.
    DICOM files often have no extension, so extension-less files are listed too;
    a file that is not an image shows up with its error."""
    root, suffixes = Path(folder), set(supported_suffixes())
    return sorted(str(p) for p in root.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes)


WORKER_NICENESS = 10  # decoders yield the cores to the window: on 2 cores they otherwise starve its paints


def yield_to_the_window() -> None:
    """Lowers the calling thread to WORKER_NICENESS (Linux schedules threads one by one, and the
    onnxruntime threads a session starts inherit the priority of the thread that creates it). The
    models' threads then leave the cores to the UI thread: at the same priority, creating the
    sessions while a study opened stalled the window for 50-100 ms on 2 cores."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
        except OSError:
            pass


def start_worker(parent_pid: int) -> None:
    """Runs first in every decoding process of the window (`decoding.start_worker`, at the window's niceness)."""
    decoding.start_worker(parent_pid, WORKER_NICENESS)


class ImageLoader:
    """A small process pool for decoding; restarts itself if a worker dies."""

    def __init__(self, workers: int = 2) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._pool: futures.ProcessPoolExecutor | None = None

    def submit(self, function: Callable[[str], object], path: str) -> futures.Future:
        with self._lock:
            if self._pool is None:
                self._pool = futures.ProcessPoolExecutor(
                    self._workers, mp_context=multiprocessing.get_context("spawn"), initializer=start_worker,
                    initargs=(os.getpid(),))
            pool = self._pool
        try:
            future = pool.submit(function, path)
        except futures.process.BrokenProcessPool:
            self._discard(pool)
            return self.submit(function, path)
        future.pool = pool  # type: ignore[attr-defined]  # which pool to drop if this one breaks
        return future

    def submit_isolated(self, function: Callable[[str], object], path: str) -> futures.Future:
        """Run in a process of its own, so a crash there blames this file alone
        (retries after a crash broke the shared pool use this)."""
        pool = futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=start_worker, initargs=(os.getpid(),))
        future = pool.submit(function, path)
        future.pool = pool  # type: ignore[attr-defined]  # what `stop_pool_of` stops
        future.add_done_callback(lambda _: pool.shutdown(wait=False))
        return future

    def notice_broken(self, future: futures.Future) -> None:
        """After a worker crash: drop that pool (only that one: a retry may
        already run in a fresh pool), so the next file gets a fresh one."""
        if isinstance(future.exception(), futures.process.BrokenProcessPool):
            self._discard(getattr(future, "pool", None))

    def stop_pool_of(self, future: futures.Future) -> None:
        """Kill the worker processes of the pool running `future` (one is stuck on its file): the pool breaks,
        its futures fail, and the next file gets a fresh pool. An executor cannot stop one worker alone, so its
        processes are killed through its (private, long stable) table of them."""
        pool = getattr(future, "pool", None)
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        self._discard(pool)

    def _discard(self, pool: futures.ProcessPoolExecutor | None) -> None:
        with self._lock:
            if pool is None or self._pool is not pool:
                return
            self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def check_worker_decoding() -> str:
    """For `mammodesk --self-test`: decode in a spawned worker process, which
    is how the window reads files (and what a frozen build must support)."""
    import tempfile

    from mammodesk.selftest import synthetic_mammogram, write_synthetic_dicom

    loader = ImageLoader(workers=1)
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = write_synthetic_dicom(Path(folder) / "worker.dcm")
            result = loader.submit(load, str(path)).result(timeout=120)
    finally:
        loader.shutdown()
    if isinstance(result, LoadFailure):
        raise ValueError(result.message)
    if not np.array_equal(result.image.pixels, synthetic_mammogram()):
        raise ValueError("pixels decoded in the worker differ from what was written")
    return f"{result.image.shape[1]}x{result.image.shape[0]} decoded in a worker process"
