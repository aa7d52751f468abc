"""Opening mammograms: files and folders are decoded in worker processes
(`LoaderBridge`); what arrives is added to the viewer, named in the study
browser, and announced (`loaded`) to the features that follow an image
(labels, the archive's reports). Callers can wait for the files being
opened (`when_loads_finish`).

Decoded images are added one per turn of the event loop: four views that
arrive together were otherwise added and painted in one batch of queued
events, at worst a 65-95 ms freeze on 2 cores (`tests/benchmarks/bench_first_paint.py`)."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Callable

from PySide6 import QtCore, QtWidgets

from mammodesk.io import supported_suffixes
from mammodesk.qt.host import Host
from mammodesk.qt.timers import single_shot_timer
from mammodesk.qt.viewer.browser import StudyBrowser
from mammodesk.qt.workers import LoaderBridge
from mammodesk.services.loading import FileSummary, Loaded, folder_files

AUTO_OPEN_LIMIT = 4  # a folder with at most this many files opens as a study
TRANSIENT_MS = 4000  # how long a passing status message (a count) stays


def file_filter() -> str:
    """The Open dialog's filter: every registered format's suffixes."""
    return f"Images ({' '.join('*' + s for s in supported_suffixes() if s)});;All files (*)"


class OpeningController(QtCore.QObject):
    loaded = QtCore.Signal(object, object)  # Document, Loaded: the image is in the viewer
    pending_changed = QtCore.Signal(int)  # files still being read
    browse_requested = QtCore.Signal()  # a large folder was listed: the study browser should come forward

    def __init__(self, host: Host, browser: StudyBrowser, settings: QtCore.QSettings) -> None:
        super().__init__(host.widget)
        self.host, self.browser, self.settings = host, browser, settings
        self.loader = LoaderBridge(self, workers=host.workers)
        self._reading, self._after_loads = 0, []  # files the workers are still reading
        self._opening: set[str] = set()  # those files, as `same_file_key`s
        self._arrivals: deque[Callable[[], None]] = deque()  # read, not yet added to the viewer
        self._arrival_timer = single_shot_timer(self, 0, self._take_arrival)  # after the window's queued events
        self.loader.loaded.connect(lambda loaded: self._arrive(lambda: self._on_loaded(loaded)))
        self.loader.failed.connect(lambda path, message: self._arrive(lambda: self._on_failed(path, message)))
        self.loader.summarised.connect(browser.set_summary)
        self.loader.pending_changed.connect(self._on_pending)
        browser.open_requested.connect(self.open_path)
        host.viewer.active_changed.connect(self.describe_active)  # no message about another image

    # --- opening ---------------------------------------------------------------------------------
    def open_paths(self, paths: list[str]) -> None:
        for path in paths:
            if Path(path).is_dir():
                self.open_folder(path)
            else:
                self.open_path(path)

    def open_path(self, path: str) -> None:
        """Open a file; one already open (or being read) is gone to, never opened twice: two copies of one
        image would show two label lists."""
        key = same_file_key(path)
        for document in self.host.viewer.documents:
            source = document.image.meta.source_path
            if source is not None and same_file_key(source) == key:
                self.host.viewer.set_active(document)
                self.host.status(f"{Path(path).name} is already open: showing it")
                return
        if key in self._opening:
            return
        self._opening.add(key)
        self.browser.add_entries([path])
        self.loader.open(path)

    def open_folder(self, folder: str) -> None:
        try:
            files = folder_files(folder)
        except OSError as exc:
            self.host.status(f"Could not list {folder}: {exc.strerror or exc}")
            return
        self.settings.setValue("last_folder", folder)
        if not files:  # say so, never open nothing in silence, and name what was passed over
            skipped = sorted(p.name for p in Path(folder).iterdir() if not p.name.startswith("."))
            shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            self.host.status(f"No image files in {folder} (looked for "
                             f"{', '.join(s for s in supported_suffixes() if s)} and files without an extension; "
                             "sub-folders are not opened)" + (f"; skipped: {shown}" if skipped else ""))
            return
        self.browser.add_entries(files)
        if len(files) <= AUTO_OPEN_LIMIT:
            for path in files:
                self.loader.open(path)
            if len(files) > 1:
                self.host.viewer.set_layout("2x2")
            return
        for path in files:
            self.loader.summarise(path)
        self.browse_requested.emit()
        self.host.status(f"{len(files)} files listed in the study browser (left); double-click one to open it, "
                         "or select several and press Enter")

    def ask_files(self) -> None:
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(self.host.widget, "Open mammograms",
                                                          str(self.settings.value("last_folder", "")), file_filter())
        if paths:
            self.settings.setValue("last_folder", str(Path(paths[0]).parent))
            self.open_paths(paths)

    def ask_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self.host.widget, "Open study folder",
                                                            str(self.settings.value("last_folder", "")))
        if folder:
            self.open_folder(folder)

    # --- waiting ---------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Files being read or read but not yet in the viewer."""
        return self._reading + len(self._arrivals)

    def when_loads_finish(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, when every file being opened has loaded (and been added) or failed."""
        self._after_loads.append(callback)
        QtCore.QTimer.singleShot(0, self._run_after_loads)  # nothing was pending: now

    def _run_after_loads(self) -> None:
        # The count as delivered to this thread: a worker's last "loaded" arrives before its count drops.
        if self.pending:
            return
        callbacks, self._after_loads = self._after_loads, []
        for callback in callbacks:
            callback()

    # --- results ---------------------------------------------------------------------------------
    def _arrive(self, add: Callable[[], None]) -> None:
        self._arrivals.append(add)
        self._arrival_timer.start()

    def _take_arrival(self) -> None:
        try:
            if self._arrivals:
                self._arrivals.popleft()()
        finally:  # one view that fails to add never strands the rest
            if self._arrivals:
                self._arrival_timer.start()  # the next one after the window has painted this one
            else:
                self._report_pending()

    def _on_loaded(self, loaded: Loaded) -> None:
        if loaded.image.meta.source_path is not None:
            self._opening.discard(same_file_key(loaded.image.meta.source_path))
        document = self.host.viewer.add_image(loaded.image, auto=loaded.auto, anatomy=loaded.anatomy,
                                              copy=loaded.display, outline=loaded.outline)
        self.loaded.emit(document, loaded)
        self.browser.set_summary(loaded.summary)
        self.describe_active()

    def describe_active(self, *_args) -> None:
        """The status bar speaks of the active view, never of whichever file loaded last."""
        document = self.host.viewer.active
        if document is None:
            self.host.status("")
            return
        meta, (rows, cols) = document.image.meta, document.image.shape
        warnings = f"; {len(meta.warnings)} warning(s), see Metadata" if meta.warnings else ""
        self.host.status(f"{document.anatomy.label} · {document.name}: {cols}x{rows} {meta.format} "
                         f"{meta.bits_stored}-bit{warnings}")

    def _on_failed(self, path: str, message: str) -> None:
        self._opening.discard(same_file_key(path))
        self.host.viewer.add_error(path, message)
        self.browser.set_summary(FileSummary(path, error=message))
        self.host.status(f"Could not open {Path(path).name}: {message}")

    def _on_pending(self, count: int) -> None:
        self._reading = count
        self._report_pending()

    def _report_pending(self) -> None:
        count = self.pending
        if not count:
            self._run_after_loads()
        self.pending_changed.emit(count)
        viewer = self.host.viewer
        if count:
            self.host.status(f"Reading {count} file(s)...")
        elif self.host.current_status().startswith("Reading "):  # never leave a stale "Reading"
            if viewer.errors:
                self.host.status(f"{len(viewer.documents)} image(s) open, {len(viewer.errors)} could not be read",
                                 TRANSIENT_MS)
            else:  # the last arrival may have described the active view while a count was still in flight
                self.describe_active()


def same_file_key(path) -> str:
    """One key per file, however it was named (relative, through a link)."""
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(Path(path).absolute())
