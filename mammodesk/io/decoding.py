"""Decoding in worker processes, each file with a time limit. A damaged pixel stream can keep a decoder busy for
minutes (a JPEG-LS DICOM with a few bad bytes did); a worker that overruns its limit is killed and replaced,
that file fails alone with the reason, and the rest go on.

Workers are spawned (never forked: the parent may hold onnxruntime or torch threads), run at a lower priority,
exit when the parent is gone, and send pixels back through shared memory (`shared_pixels`)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Callable, Iterable, Iterator, TypeVar

from mammodesk.io import shared_pixels

WORKER_NICENESS = 5
AHEAD = 3  # files decoded ahead of the one the caller waits for, per worker (a stuck file holds the rest back)
T = TypeVar("T")


class DecodeFailed(Exception):
    """A worker's error, as one line (the worker's exception may not survive pickling)."""


class TimedOut(DecodeFailed):
    pass


def start_worker(parent_pid: int, niceness: int = WORKER_NICENESS) -> None:
    """Runs first in every decoding process: a lower priority, Ctrl+C left to the parent (which stops its
    workers, no traceback from each), and an exit when the parent is gone (killed or crashed), so no decoder
    outlives it. Linux asks the kernel; elsewhere a thread watches the parent.
    Decoded pixels go back through shared memory (`shared_pixels`)."""
    shared_pixels.share_from_this_process()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle: it stops its workers
    if hasattr(os, "nice"):
        try:
            os.nice(niceness)
        except OSError:
            pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), name="orphan-watch", daemon=True).start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def _serve(connection: Connection, parent_pid: int) -> None:
    start_worker(parent_pid)
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        function, argument = task
        try:
            result = (True, function(argument))
        except Exception as exc:  # noqa: BLE001 - every failure goes back as the file's reason
            result = (False, str(exc).strip() or type(exc).__name__)
        try:
            connection.send(result)
        except Exception as exc:  # noqa: BLE001 - a result that cannot be pickled fails its file alone
            connection.send((False, f"its result could not be returned ({exc})"))


class _Worker:
    def __init__(self, context) -> None:
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, os.getpid()), daemon=True)
        self.process.start()
        theirs.close()
        self.task: int | None = None  # the index it is working on
        self.since = 0.0

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(None)
            except OSError:
                pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


def decode_all(function: Callable[[T], object], items: Iterable[T], *, workers: int = 2,
               timeout_s: float = 120.0) -> Iterator[tuple[T, object | DecodeFailed]]:
    """(item, function(item)) in the items' order, each computed in a worker process within `timeout_s`, else
    (item, TimedOut); a worker's exception comes back as DecodeFailed with its message. `function` must be
    importable by name (a module-level function)."""
    context = multiprocessing.get_context("spawn")
    pending = deque(enumerate(items))
    pool = [_Worker(context) for _ in range(max(1, min(workers, len(pending) or 1)))]
    items_by_index: dict[int, T] = {}
    done: dict[int, object] = {}
    next_out = 0
    try:
        while pending or any(w.task is not None for w in pool) or next_out in done:
            for worker in pool:  # never far ahead of the file the caller waits for: results wait in memory
                if worker.task is None and pending and pending[0][0] - next_out < AHEAD * len(pool):
                    index, item = pending.popleft()
                    items_by_index[index] = item
                    worker.connection.send((function, item))
                    worker.task, worker.since = index, time.monotonic()
            while next_out in done:
                yield items_by_index.pop(next_out), done.pop(next_out)
                next_out += 1
            busy = [w for w in pool if w.task is not None]
            if not busy:
                continue
            deadline = min(w.since for w in busy) + timeout_s
            ready = wait([w.connection for w in busy], timeout=max(0.0, deadline - time.monotonic()))
            for worker in busy:
                if worker.connection in ready:
                    try:
                        ok, value = worker.connection.recv()
                    except (EOFError, OSError):  # the worker died (a crash in a decoder): replace it
                        ok, value = False, "the decoder crashed on this file"
                        pool[pool.index(worker)] = _replace(worker, context)
                    done[worker.task] = value if ok else DecodeFailed(value)
                    worker.task = None
                elif time.monotonic() - worker.since >= timeout_s:
                    done[worker.task] = TimedOut(f"decoding took longer than {timeout_s:g} s; stopped")
                    worker.task = None
                    pool[pool.index(worker)] = _replace(worker, context)
    finally:
        for worker in pool:
            worker.stop(kill=worker.task is not None)


def _replace(worker: _Worker, context) -> _Worker:
    worker.stop(kill=True)
    return _Worker(context)
