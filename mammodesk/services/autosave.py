"""Autosave of annotations on a background thread: the newest state of each
image is written a short debounce after its last change, atomically
(`annotations.sidecar.save_sidecar`, which merges what another writer saved
meanwhile). A failed write (disk full, folder gone
read-only) keeps the job and retries; the edits stay in memory meanwhile.

`on_done(job, error)` runs on the saver thread: a UI hands it to its own
thread (the Qt layer does so with a queued signal)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from mammodesk.annotations.model import ImageLabels
from mammodesk.annotations.sidecar import WriteOutcome, save_sidecar


MERGE_AGAIN = "merge-again"  # a base token no write has: the next save merges with what is on disk


@dataclass(frozen=True)
class SaveJob:
    key: int  # the image's key in the labelling state
    path: Path
    labels: ImageLabels
    file_name: str
    sha256: str
    shape: tuple[int, int]
    revision: int
    base_token: str | None = None  # the write this one follows (read at open, or this writer's last)
    base_labels: ImageLabels | None = None  # the labels of that write
    outcome: WriteOutcome | None = None  # filled in once written (the copy handed to on_done)

    def write(self) -> WriteOutcome:
        return save_sidecar(self.path, self.labels, base_token=self.base_token, base_labels=self.base_labels,
                            file_name=self.file_name, sha256=self.sha256, shape=self.shape, revision=self.revision)


class AutoSaver:
    def __init__(self, debounce_s: float = 0.3, retry_s: float = 5.0,
                 on_done: Callable[[SaveJob, Exception | None], None] | None = None) -> None:
        self.debounce_s = debounce_s
        self.retry_s = retry_s
        self.on_done = on_done
        self._pending: dict[int, tuple[float, SaveJob]] = {}  # key -> (due time, newest job)
        self._failed: dict[int, SaveJob] = {}
        self._written: dict[tuple[int, Path], tuple[str, ImageLabels]] = {}  # the base of the next save per image
        self._writing: int | None = None
        self._flushing = 0
        self._stopping = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="annotation-autosave", daemon=True)
        self._thread.start()

    def schedule(self, job: SaveJob, *, immediately: bool = False) -> None:
        with self._condition:
            self._failed.pop(job.key, None)
            self._pending[job.key] = (time.monotonic() + (0 if immediately else self.debounce_s), job)
            self._condition.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything scheduled now; True when nothing is left unwritten."""
        deadline = time.monotonic() + timeout
        with self._condition:
            self._flushing += 1
            self._condition.notify_all()
            try:
                while self._pending or self._writing is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._condition.wait(remaining)
                return not self._failed
            finally:
                self._flushing -= 1

    def unsaved(self) -> list[int]:
        with self._condition:
            keys = set(self._pending) | set(self._failed)
            if self._writing is not None:
                keys.add(self._writing)
            return sorted(keys)

    def close(self, timeout: float = 10.0) -> bool:
        saved = self.flush(timeout)
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._thread.join(timeout)
        return saved

    def _next_job(self) -> SaveJob | None:
        """Under the lock: the job to write now, waiting as long as needed."""
        while not self._stopping:
            now = time.monotonic()
            if self._pending:
                key, (due, job) = min(self._pending.items(), key=lambda item: item[1][0])
                if due <= now or self._flushing:
                    del self._pending[key]
                    self._writing = key
                    return job
                self._condition.wait(due - now)
            elif self._failed:  # a failed write comes back after a pause (or at a flush)
                self._condition.wait(self.retry_s)
                if not self._stopping and not self._pending:
                    self._pending = {key: (0.0, job) for key, job in self._failed.items()}
                    self._failed.clear()
            else:
                self._condition.wait()
        return None

    def _run(self) -> None:
        while True:
            with self._condition:
                job = self._next_job()
            if job is None:
                return
            error: Exception | None = None
            last = self._written.get((job.key, job.path))
            if last is not None:  # this saver wrote since the job was made: that write is its base
                job = replace(job, base_token=last[0], base_labels=last[1])
            try:
                outcome = job.write()
                if isinstance(outcome, WriteOutcome):
                    job = replace(job, outcome=outcome)
                    # After a merge that brought in another writer's work, jobs made before the window took it
                    # in must merge again (against what was sent), or they would write it away.
                    self._written[(job.key, job.path)] = (outcome.token, outcome.labels) \
                        if outcome.labels == job.labels else (MERGE_AGAIN, job.labels)
            except Exception as exc:  # reported to the UI; the job is retried
                error = exc
            with self._condition:
                self._writing = None
                if error is not None and job.key not in self._pending:
                    self._failed[job.key] = job
                self._condition.notify_all()
            if self.on_done is not None:
                self.on_done(job, error)
