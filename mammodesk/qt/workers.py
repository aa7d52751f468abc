"""The window's workers and the bridges from them to the UI thread. Every worker thread is made by one
`WorkerPools`, which stops them all when the window closes; results arrive as Qt signals (queued, because
they are emitted from pool threads), so state is only ever changed on the UI thread."""

from __future__ import annotations

import concurrent.futures as futures
import threading
import time

from PySide6 import QtCore

from mammodesk.preprocessing import PipelineSpec
from mammodesk.services.loading import ImageLoader, LoadFailure, load, read_identifying, summarise
from mammodesk.state.processing import Cancelled, FrameCache, Generations, process_for_display
from mammodesk.state.viewer import Document

CRASHED = "the decoder crashed on this file (its worker process died); other files are unaffected"
DECODE_TIMEOUT_S = 120.0  # as `mammodesk predict`
WATCH_EVERY_S = 0.5


def emit_from_worker(signal, *args) -> None:
    """Emit a result from a pool thread; a widget closed meanwhile just drops it."""
    try:
        signal.emit(*args)
    except RuntimeError:  # the receiving widget was deleted first
        pass


def attempt(work):
    """The result of `work()`, or the exception it raised: every failure is shown in the window,
    none takes it down."""
    try:
        return work()
    except Exception as exc:  # noqa: BLE001
        return exc


class WorkerPools:
    """Every worker thread of the window is made here and stopped here when it closes. A pool is named
    for its kind of job and has one thread, so jobs of one kind run in order and kinds run side by side;
    it starts with its first job. Parts that own threads or processes of another sort (the loader's
    decoding processes) give their stop to `on_shutdown`."""

    def __init__(self) -> None:
        self._pools: dict[str, futures.ThreadPoolExecutor] = {}
        self._stops: list = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, pool: str, function, *args, initializer=None) -> futures.Future:
        """Run `function(*args)` on the pool named `pool`; RuntimeError once the window is closing."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the window is closing: no new work")
            executor = self._pools.get(pool)
            if executor is None:
                executor = futures.ThreadPoolExecutor(1, thread_name_prefix=f"mammodesk-{pool}",
                                                      initializer=initializer)
                self._pools[pool] = executor
        return executor.submit(function, *args)

    def start_daemon(self, name: str, function) -> threading.Thread:
        """A loop that ends on its own (it watches a flag its owner's shutdown sets) and must never hold the
        interpreter at exit, as a pool's thread would; RuntimeError once the window is closing."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the window is closing: no new work")
            thread = threading.Thread(target=function, name=f"mammodesk-{name}", daemon=True)
        thread.start()
        return thread

    def close_pool(self, pool: str) -> None:
        """Stop one pool (its queued jobs dropped, a running one left to end): a dialog that closes."""
        with self._lock:
            executor = self._pools.pop(pool, None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def on_shutdown(self, stop) -> None:
        self._stops.append(stop)

    def shutdown(self) -> None:
        """Every queued job dropped, every pool and process stopped; running jobs end on their own (each checks
        that it is still wanted, and its result is dropped)."""
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for stop in self._stops:
            stop()
        for executor in pools:
            executor.shutdown(wait=False, cancel_futures=True)


class LoaderBridge(QtCore.QObject):
    loaded = QtCore.Signal(object)  # Loaded
    failed = QtCore.Signal(str, str)  # path, message
    summarised = QtCore.Signal(object)  # FileSummary
    identifying = QtCore.Signal(str, object)  # path, dict of identifying tags
    pending_changed = QtCore.Signal(int)

    def __init__(self, parent: QtCore.QObject | None = None, timeout_s: float = DECODE_TIMEOUT_S, *,
                 workers: WorkerPools | None = None) -> None:
        super().__init__(parent)
        self.workers = workers or WorkerPools()
        self.workers.on_shutdown(self.shutdown)
        self.loader = ImageLoader()
        self.timeout_s = timeout_s
        self._pending = 0
        self._lock = threading.Lock()
        self._timed_out: set[int] = set()  # ids of futures stopped for running past the limit
        self._running_since: dict[futures.Future, float | None] = {}  # watched files: when a worker took them
        self._watching = False
        self._closing = False

    @property
    def pending(self) -> int:
        return self._pending

    def open(self, path: str) -> None:
        self._submit(load, path, self._on_loaded)

    def summarise(self, path: str) -> None:
        self._submit(summarise, path, self.summarised.emit)

    def reveal(self, path: str) -> None:
        self._submit(read_identifying, path, lambda tags: self.identifying.emit(path, tags))

    def shutdown(self) -> None:
        with self._lock:
            self._closing = True
        self.loader.shutdown()

    def _submit(self, function, path: str, deliver, attempt: int = 0) -> None:
        self._count(+1)
        submit = self.loader.submit if attempt == 0 else self.loader.submit_isolated
        future = submit(function, path)
        self._watch(future)
        future.add_done_callback(lambda f: self._finish(f, function, path, deliver, attempt))

    def _watch(self, future: futures.Future) -> None:
        """Time the file from when the pool hands it on (at most one file ahead of a free worker), not from when
        it was asked for: files queued behind a large folder wait their turn without a clock running."""
        with self._lock:
            self._running_since[future] = None
            if self._watching or self._closing:
                return
            self._watching = True
        try:
            self.workers.start_daemon("decode-watch", self._watch_loop)
        except RuntimeError:  # the window is closing
            with self._lock:
                self._watching = False

    def _watch_loop(self) -> None:
        """Runs while files are being read; ends when none is (or the window closes), started again by the next."""
        while True:
            time.sleep(WATCH_EVERY_S)
            now = time.monotonic()
            with self._lock:
                if self._closing or not self._running_since:
                    self._watching = False
                    return
                for future, since in list(self._running_since.items()):
                    if future.done():
                        del self._running_since[future]
                    elif future.running() and since is None:
                        self._running_since[future] = now
                    elif since is not None and now - since > self.timeout_s:
                        del self._running_since[future]
                        self._timed_out.add(id(future))
                        stuck = future
                        break
                else:
                    continue
            self._stop(stuck)

    def _stop(self, future: futures.Future) -> None:
        """A file still decoding after the limit (a damaged stream can hang a decoder): its worker is stopped,
        the file fails with that reason, and the files that shared the worker's pool are read again."""
        self.loader.stop_pool_of(future)

    def _finish(self, future: futures.Future, function, path: str, deliver, attempt: int) -> None:
        try:
            if id(future) in self._timed_out:
                self._timed_out.discard(id(future))
                self.failed.emit(path, f"decoding took longer than {self.timeout_s:g} s and was stopped (a damaged "
                                       "pixel stream can hang a decoder); other files are unaffected")
                return
            if future.cancelled():  # its pool was stopped for another file before it started: read it again
                with self._lock:
                    closing = self._closing
                if not closing:
                    self._submit(function, path, deliver, attempt)
                return
            error = future.exception()
            if error is None:
                deliver(future.result())
            elif isinstance(error, futures.process.BrokenProcessPool):
                # A dying worker breaks the whole pool, so every file in flight fails with it.
                # Each gets one more try in a process of its own: only a file that crashes alone is blamed.
                self.loader.notice_broken(future)
                if attempt == 0:
                    self._submit(function, path, deliver, attempt=1)
                else:
                    self.failed.emit(path, CRASHED)
            else:
                self.failed.emit(path, f"unexpected {type(error).__name__}: {error}")
        finally:
            self._count(-1)

    def _on_loaded(self, result) -> None:
        if isinstance(result, LoadFailure):
            self.failed.emit(result.path, result.message)
        else:
            self.loaded.emit(result)

    def _count(self, step: int) -> None:
        with self._lock:
            self._pending += step
            pending = self._pending
        self.pending_changed.emit(pending)


class BusyCounter:
    """Jobs queued or running, counted from any thread and reported as `busy_changed`."""

    busy_changed: QtCore.SignalInstance

    def _init_busy(self) -> None:
        self._busy = 0
        self._busy_lock = threading.Lock()

    @property
    def busy(self) -> int:
        return self._busy

    def _count(self, step: int) -> None:
        with self._busy_lock:
            self._busy += step
            busy = self._busy
        self.busy_changed.emit(busy)


class ProcessingRunner(BusyCounter, QtCore.QObject):
    """Runs the spec per document: a view-resolution preview, then full
    resolution. Previews have their own thread, so a slider step never waits
    behind a long full-resolution pass; scheduling again for a document
    supersedes its queued and running jobs (they stop at the next op)."""

    result = QtCore.Signal(object, object, int)  # document, ProcessedView, generation
    failed = QtCore.Signal(object, str)  # document, message
    busy_changed = QtCore.Signal(int)  # jobs queued or running

    def __init__(self, parent: QtCore.QObject | None = None, *, workers: WorkerPools | None = None) -> None:
        super().__init__(parent)
        self.generations = Generations()
        self.frames = FrameCache()
        self.workers = workers or WorkerPools()
        self._init_busy()

    def schedule(self, document: Document, spec: PipelineSpec, preview_scale: float) -> int:
        generation = self.generations.start(document.id)
        if preview_scale < 0.999:
            self._submit("preview", document, spec, preview_scale, generation)
        else:
            self._submit("full", document, spec, 1.0, generation)
        return generation

    def is_current(self, document: Document, generation: int) -> bool:
        return self.generations.is_current(document.id, generation)

    def stop(self) -> None:
        """Supersede every job; running ones end at their next op boundary."""
        self.generations.cancel_all()

    def shutdown(self) -> None:
        self.stop()
        self.workers.close_pool("preview")
        self.workers.close_pool("full")

    def _submit(self, pool: str, document: Document, spec: PipelineSpec, scale: float, generation: int) -> None:
        self._count(+1)
        try:
            self.workers.submit(pool, self._run, document, spec, scale, generation)
        except RuntimeError:  # shut down while closing
            self._count(-1)

    def _run(self, document: Document, spec: PipelineSpec, scale: float, generation: int) -> None:
        def stale() -> bool:
            return not self.generations.is_current(document.id, generation)

        try:
            if stale():
                return
            view = process_for_display(document.image, spec, scale=scale, should_stop=stale, cache=self.frames)
            if stale():
                return
            self.result.emit(document, view, generation)
            if scale < 1.0:
                self._submit("full", document, spec, 1.0, generation)
        except Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - the worker boundary: report, never take the app down
            if not stale():
                self.failed.emit(document, f"{type(exc).__name__}: {exc}")
        finally:
            self._count(-1)
