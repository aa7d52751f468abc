"""Runs models off the UI thread, one job at a time (onnxruntime already uses
every core for one job), and reports progress and answers as Qt signals."""

from __future__ import annotations

from PySide6 import QtCore

from mammodesk.inference import ModelEntry, ModelLibrary
from mammodesk.qt.workers import BusyCounter, WorkerPools
from mammodesk.state.opinion import Job, Opinion
from mammodesk.services.loading import yield_to_the_window
from mammodesk.state.opinion_jobs import run_opinion


class OpinionRunner(BusyCounter, QtCore.QObject):
    finished = QtCore.Signal(object)  # Opinion (an answer or an error)
    progress = QtCore.Signal(str, int, int)  # what is running, done, total
    busy_changed = QtCore.Signal(int)  # jobs queued or running

    def __init__(self, library: ModelLibrary, workers: WorkerPools, parent: QtCore.QObject | None = None, *,
                 prefer_gpu: bool = True) -> None:
        super().__init__(parent)
        self.library, self.workers = library, workers
        self.prefer_gpu = prefer_gpu
        self._init_busy()
        self._epoch = 0  # stop() moves it on: jobs from an older epoch end early and report nothing

    def warm(self, entries: list[ModelEntry]) -> None:
        """Create (and warm up) the models' sessions on a thread of their own, so that they are ready
        when the images have decoded: the first run costs no more than a warm one."""
        usable = [e for e in entries if e.card is not None]

        def create() -> None:
            for entry in usable:
                try:
                    self.library.runner(entry.path, prefer_gpu=self.prefer_gpu)
                except Exception:  # noqa: BLE001 - a model that cannot load says so when it is run
                    pass

        if usable:
            try:
                self.workers.submit("warm", create, initializer=yield_to_the_window)
            except RuntimeError:  # the window is closing
                pass

    def submit(self, job: Job) -> None:
        self._count(+1)
        epoch = self._epoch
        try:
            self.workers.submit("models", self._run, job, epoch, initializer=yield_to_the_window)
        except RuntimeError:  # shut down while closing
            self._count(-1)

    def stop(self) -> None:
        self._epoch += 1

    def shutdown(self) -> None:
        self.stop()
        self.workers.close_pool("models")
        self.workers.close_pool("warm")

    def _run(self, job: Job, epoch: int) -> None:
        def stale() -> bool:
            return epoch != self._epoch

        label = f"{job.entry.name} on {job.document.name} ({job.target.describe()})"
        try:
            if stale():
                return
            self.progress.emit(label, 0, 1)
            opinion = run_opinion(self.library, job.entry, job.document, job.image, job.target,
                                  prefer_gpu=self.prefer_gpu, should_stop=stale,
                                  progress=lambda done, total: self.progress.emit(label, done, total))
            if not stale():
                self.finished.emit(opinion)
        except Exception as exc:  # noqa: BLE001 - the worker boundary: report, never take the app down
            self.finished.emit(Opinion(job.document, job.entry, job.target, error=f"{type(exc).__name__}: {exc}"))
        finally:
            self._count(-1)
