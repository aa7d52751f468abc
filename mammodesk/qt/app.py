"""The reading room's main window: wires the Qt-free `ViewerState` to the
canvas area, the panels, the workers and the settings."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk import __version__
from mammodesk.annotations.geometry import translate
from mammodesk.qt.actions import ShortcutsDialog, build_actions
from mammodesk.qt.compact import wheel_only_when_focused
from mammodesk.qt.host import WindowHost
from mammodesk.qt.archive.controller import ArchiveController
from mammodesk.qt.labelling.controller import LabellingController
from mammodesk.qt.viewer.metadata import MetadataPanel
from mammodesk.qt.viewer.pipeline import PipelinePanel
from mammodesk.qt.opinion.controller import SecondOpinion
from mammodesk.qt.viewer.browser import StudyBrowser
from mammodesk.qt.viewer.views import ViewerArea
from mammodesk.qt.workers import LoaderBridge, ProcessingRunner
from mammodesk.resources import icon_path, resources_dir
from mammodesk.state.archive_session import ArchiveSession
from mammodesk.state.loading import FileSummary, Loaded, folder_files
from mammodesk.state.opinion import OpinionState
from mammodesk.state.processing import ProcessedView, preview_scale
from mammodesk.state.viewer import Document, ViewerState

AUTO_OPEN_LIMIT = 4  # a folder with at most this many files opens as a study
TRANSIENT_MS = 4000  # how long a passing status message (a timing, a count) stays
DEMO_SPACING_MM = 0.05  # CBIS-DDSM files carry no spacing; DDSM's digitisers sampled at 42-50 microns


def default_settings() -> QtCore.QSettings:
    return QtCore.QSettings(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                            "MammoDesk", "MammoDesk")


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, settings: QtCore.QSettings | None = None, opinions: OpinionState | None = None) -> None:
        super().__init__()
        pg.setConfigOptions(imageAxisOrder="row-major")
        wheel_only_when_focused(QtWidgets.QApplication.instance())
        self.setWindowTitle(f"MammoDesk {__version__}")
        self.setAcceptDrops(True)
        self.settings = settings or default_settings()
        self.state = ViewerState()
        self.loader = LoaderBridge(self)
        self.runner = ProcessingRunner(self)
        self.opinions = opinions or OpinionState()
        self.host = WindowHost(self)  # what the feature controllers may ask of the window
        self.labelling = LabellingController(self.host, author=self.settings.value("author", None))
        self.host.labelling = self.labelling.state
        self.area = ViewerArea(self.state, self.opinions, self, labelling=self.labelling.state)
        self.setCentralWidget(self.area)
        self.second_opinion = SecondOpinion(self.state, self.opinions, self)
        self.pipeline_panel = PipelinePanel(self.state)
        self.browser = StudyBrowser()
        self.metadata = MetadataPanel()
        reader = self.settings.value("author", None) or None
        self.archive = ArchiveController(self.host, ArchiveSession(reader=reader))
        self.docks = {
            "pipeline": self._dock("Preprocessing", self.pipeline_panel, QtCore.Qt.DockWidgetArea.RightDockWidgetArea),
            "browser": self._dock("Study", self.browser, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea),
            "metadata": self._dock("Metadata", self.metadata, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea),
            "models": self._dock("Models", _scrolling(self.second_opinion.panel),
                                 QtCore.Qt.DockWidgetArea.RightDockWidgetArea),
            "labels": self._dock("Labels", _scrolling(self.labelling.panel),
                                 QtCore.Qt.DockWidgetArea.RightDockWidgetArea),
            "worklist": self._dock("Worklist", _scrolling(self.archive.panel), QtCore.Qt.DockWidgetArea.LeftDockWidgetArea),
        }
        self.tabifyDockWidget(self.docks["browser"], self.docks["worklist"])
        self.docks["browser"].raise_()
        self.tabifyDockWidget(self.docks["pipeline"], self.docks["models"])
        self.tabifyDockWidget(self.docks["pipeline"], self.docks["labels"])
        self._docks_fitted = False  # first show: side panels sized to the screen (unless a saved state says)
        self.actions_ = build_actions(self)
        self._recent_menu = self.menuBar().actions()[0].menu().addMenu("Open &Recent")
        self._cursor = QtWidgets.QLabel()
        self._busy = QtWidgets.QProgressBar()
        self._busy.setRange(0, 0)
        self._busy.setMaximumWidth(120)
        self._busy.hide()
        self.statusBar().addPermanentWidget(self._cursor)
        self.statusBar().addPermanentWidget(self._busy)
        self.runner_busy = 0
        self._scheduled: dict[int, str] = {}  # document id -> spec JSON its processing was started for
        self._connect()
        self._restore_settings()
        self.statusBar().showMessage("Open a mammogram: File > Open (Ctrl+O), a folder (Ctrl+Shift+O), or drop files here")

    # --- construction ------------------------------------------------------------------
    def _dock(self, title: str, widget: QtWidgets.QWidget, area) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        a, state = self.actions_, self.state
        a["open"].triggered.connect(self._on_open)
        a["open_folder"].triggered.connect(self._on_open_folder)
        a["close"].triggered.connect(lambda: state.active and state.close(state.active))
        a["close_all"].triggered.connect(state.close_all)
        a["quit"].triggered.connect(self.close)
        a["fit"].triggered.connect(self.area.fit)
        a["one_to_one"].triggered.connect(self.area.one_to_one)
        a["zoom_in"].triggered.connect(lambda: self._zoom(0.8))
        a["zoom_out"].triggered.connect(lambda: self._zoom(1.25))
        a["layout"].toggled.connect(lambda on: state.set_layout("2x2" if on else "single"))
        a["show"].triggered.connect(state.cycle_show)
        a["priors"].triggered.connect(self._on_priors)
        a["priors_page"].triggered.connect(state.cycle_priors_page)
        a["orientation"].toggled.connect(lambda on: state.standardised == on and state.toggle_orientation())
        a["loupe"].toggled.connect(self.area.set_loupe)
        a["next_image"].triggered.connect(lambda: state.step_active(+1))
        a["prev_image"].triggered.connect(lambda: state.step_active(-1))
        a["invert"].triggered.connect(lambda: state.active and state.invert(state.active))
        a["next_preset"].triggered.connect(lambda: state.active and state.next_preset(state.active))
        a["reset"].triggered.connect(self._on_reset)
        a["stop"].triggered.connect(self._on_stop)
        a["help"].triggered.connect(lambda: ShortcutsDialog(self).exec())
        opinion = self.second_opinion
        a["run_models"].triggered.connect(lambda: opinion.panel.run_button.click())
        a["run_all_models"].triggered.connect(lambda: opinion.run(None, opinion.panel.target_mode(), True))
        a["overlay"].setChecked(self.opinions.overlay.visible)
        a["overlay"].toggled.connect(lambda on: self.opinions.set_overlay(visible=on))
        self.opinions.overlay_changed.connect(lambda s: _set_checked(a["overlay"], s.visible))
        a["place_roi"].toggled.connect(opinion.set_placing)
        opinion.panel.place_roi.toggled.connect(lambda on: _set_checked(a["place_roi"], on))
        self.area.clicked_at.connect(opinion.on_clicked)
        self.opinions.finding_accepted.connect(self._on_model_finding_accepted)
        self.labelling.connect_actions(a)
        for key in ("Backspace", "Return", "Enter"):  # while the image area has the focus
            shortcut = QtGui.QShortcut(QtGui.QKeySequence(key), self.area)
            shortcut.setContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self.labelling.delete_or_back if key == "Backspace"
                                       else self.labelling.finish_polygon)
        state.active_changed.connect(self.labelling.show_active)
        state.documents_changed.connect(self.labelling.on_documents_changed)
        for key, dock in self.docks.items():
            action = a[f"panel_{key}"]
            action.triggered.connect(lambda _=False, k=key: self.toggle_panel(k))
            # checked = open, even while another tab covers it (Qt reports those as visible too)
            dock.visibilityChanged.connect(lambda _visible, act=action, d=dock: _set_checked(act, not d.isHidden()))
            _set_checked(action, not dock.isHidden())
        a["servers"].triggered.connect(self.archive.servers_dialog)
        a["save_to_server"].triggered.connect(self.archive.save_active)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_failed)
        self.loader.summarised.connect(self.browser.set_summary)
        self.loader.identifying.connect(self.metadata.set_identifying)
        self._pending_seen, self._after_loads = 0, []
        self.loader.pending_changed.connect(self._on_pending)
        self.runner.result.connect(self._on_processed)
        self.runner.failed.connect(self._on_processing_failed)
        self.runner.busy_changed.connect(self._on_busy)
        self.browser.open_requested.connect(self.open_path)
        self.metadata.reveal_requested.connect(self.loader.reveal)
        self.area.cursor_text.connect(self._cursor.setText)
        self.pipeline_panel.stop_requested.connect(self._on_stop)
        self.pipeline_panel.load_requested.connect(self._on_load_spec)
        self.pipeline_panel.save_requested.connect(self._on_save_spec)
        self.pipeline_panel.model_requested.connect(self._on_spec_from_model)
        state.active_changed.connect(self.metadata.show_document)
        state.active_changed.connect(self._describe_active)  # no message about another image
        state.active_changed.connect(lambda *_: self._schedule_visible())
        state.documents_changed.connect(self._schedule_visible)
        state.layout_changed.connect(self._on_layout_changed)
        state.show_changed.connect(lambda *_: self._schedule_visible())
        state.recent_changed.connect(self._rebuild_recent)
        state.pipeline.changed.connect(lambda _: self._schedule_visible(respec=True))

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        if not self._docks_fitted:
            self._docks_fitted = True
            QtCore.QTimer.singleShot(0, self.fit_docks)

    def fit_docks(self) -> None:
        """Side panels take about a third of the width together (15 % left, 21 % right, with floors),
        so that the images keep the rest: at 1366 pixels that is 870 for the images."""
        width = self.width()
        self.resizeDocks([self.docks["browser"], self.docks["pipeline"]],
                         [max(190, int(width * 0.15)), max(280, int(width * 0.21))], QtCore.Qt.Orientation.Horizontal)

    def toggle_panel(self, key: str) -> None:
        """A panel's shortcut: open and raise it when closed or behind another tab; close it when in front."""
        dock = self.docks[key]
        in_front = not dock.isHidden() and not dock.visibleRegion().isEmpty()
        if in_front:
            dock.hide()
        else:
            dock.show()
            dock.raise_()
        _set_checked(self.actions_[f"panel_{key}"], not dock.isHidden())

    def when_loads_finish(self, callback) -> None:
        """Call `callback` once, when every file being opened has loaded (and been added) or failed."""
        self._after_loads.append(callback)
        QtCore.QTimer.singleShot(0, self._run_after_loads)  # nothing was pending: now

    def _run_after_loads(self) -> None:
        # The count as delivered to this thread: a worker's last "loaded" arrives before its count drops.
        if self._pending_seen:
            return
        callbacks, self._after_loads = self._after_loads, []
        for callback in callbacks:
            callback()

    def run_models_when_loaded(self, assumed_spacing_mm: float | None = None) -> None:
        """Once the images being opened are open (or failed), run every model on the images
        shown, whole-image models first; the model panel comes to the front."""
        panel = self.second_opinion.panel
        if assumed_spacing_mm:
            panel.spacing.setValue(assumed_spacing_mm)
            panel.assume_spacing.setChecked(True)
        self.docks["models"].raise_()

        def show_best() -> None:
            self.second_opinion.idle.disconnect(show_best)
            self.opinions.select(self.opinions.best_for(self.state.active))

        def run() -> None:
            self.second_opinion.idle.connect(show_best)
            self.second_opinion.run(None, "auto", all_images=True)

        self.when_loads_finish(run)

    # --- opening --------------------------------------------------------------------------
    def open_paths(self, paths: list[str]) -> None:
        for path in paths:
            if Path(path).is_dir():
                self.open_folder(path)
            else:
                self.open_path(path)

    def open_path(self, path: str) -> None:
        self.browser.add_entries([path])
        self.loader.open(path)

    def open_folder(self, folder: str) -> None:
        try:
            files = folder_files(folder)
        except OSError as exc:
            self.statusBar().showMessage(f"Could not list {folder}: {exc.strerror or exc}")
            return
        self.settings.setValue("last_folder", folder)
        self.browser.add_entries(files)
        if len(files) <= AUTO_OPEN_LIMIT:
            for path in files:
                self.loader.open(path)
            if len(files) > 1:
                self.state.set_layout("2x2")
        else:
            for path in files:
                self.loader.summarise(path)
            self.docks["browser"].show()
            self.docks["browser"].raise_()
            self.statusBar().showMessage(f"{len(files)} files listed in the study browser (left); double-click one "
                                         "to open it, or select several and press Enter")

    def _on_open(self) -> None:
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(
            self, "Open mammograms", str(self.settings.value("last_folder", "")),
            "Images (*.dcm *.dicom *.pgm *.png *.tif *.tiff);;All files (*)")
        if paths:
            self.settings.setValue("last_folder", str(Path(paths[0]).parent))
            self.open_paths(paths)

    def _on_open_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open study folder",
                                                            str(self.settings.value("last_folder", "")))
        if folder:
            self.open_folder(folder)

    def _on_loaded(self, loaded: Loaded) -> None:
        document = self.state.add_image(loaded.image, auto=loaded.auto, anatomy=loaded.anatomy, copy=loaded.display)
        self.labelling.on_loaded(document, loaded)
        self.archive.on_loaded(document)
        self.browser.set_summary(loaded.summary)
        self._describe_active()

    def _describe_active(self, *_args) -> None:
        """The status bar speaks of the active view, never of whichever file loaded last."""
        document = self.state.active
        if document is None:
            self.statusBar().clearMessage()
            return
        meta, (rows, cols) = document.image.meta, document.image.shape
        warnings = f"; {len(meta.warnings)} warning(s), see Metadata" if meta.warnings else ""
        self.statusBar().showMessage(f"{document.anatomy.label} · {document.name}: {cols}x{rows} {meta.format} "
                                     f"{meta.bits_stored}-bit{warnings}")

    def _on_failed(self, path: str, message: str) -> None:
        self.state.add_error(path, message)
        self.browser.set_summary(FileSummary(path, error=message))
        self.statusBar().showMessage(f"Could not open {Path(path).name}: {message}")

    def _on_pending(self, count: int) -> None:
        self._pending_seen = count
        if not count:
            self._run_after_loads()
        self._busy.setVisible(count > 0 or self.runner_busy > 0)
        if count:
            self.statusBar().showMessage(f"Reading {count} file(s)...")
        elif self.statusBar().currentMessage().startswith("Reading "):  # never leave a stale "Reading"
            failed = f", {len(self.state.errors)} could not be read" if self.state.errors else ""
            self.statusBar().showMessage(f"{len(self.state.documents)} image(s) open{failed}", TRANSIENT_MS)

    # --- processing -------------------------------------------------------------------------
    def _schedule_visible(self, respec: bool = False) -> None:
        """Start (or supersede) processing for the documents on screen whose
        result is missing or was computed for another spec."""
        spec = self.state.pipeline.spec
        key = spec.to_json(indent=None)
        if self.state.show == "original":  # nothing processed on screen: compute when it is shown
            if respec:
                self.runner.stop()
                self._scheduled.clear()
                for document in self.state.documents:
                    self.state.set_processed(document, None)
            return
        for canvas in self.area.visible_canvases():
            document = canvas.document
            if document is None or (self._scheduled.get(document.id) == key and not respec):
                continue
            self._scheduled[document.id] = key
            if not spec.ops:
                self.runner.generations.cancel(document.id)
                self.state.set_processed(document, None)
                continue
            ratio = canvas.devicePixelRatioF()
            scale = preview_scale(document.image.shape, (int(canvas.width() * ratio), int(canvas.height() * ratio)))
            self.runner.schedule(document, spec, scale)

    def _on_processed(self, document: Document, view: ProcessedView, generation: int) -> None:
        if self.runner.is_current(document, generation):
            self.state.set_processed(document, view)
            stage = "preview" if view.preview else "full resolution"
            self.statusBar().showMessage(f"{document.name}: {stage} in {view.elapsed_ms:.0f} ms", TRANSIENT_MS)

    def _on_processing_failed(self, document: Document, message: str) -> None:
        self._scheduled.pop(document.id, None)
        self.pipeline_panel.error.setText(f"{document.name}: {message}")

    def _on_busy(self, count: int) -> None:
        self.runner_busy = count
        self._busy.setVisible(count > 0 or self.loader.pending > 0)
        self.pipeline_panel.status.setText("Processing..." if count else "")

    def _on_stop(self) -> None:
        if self.labelling.cancel_drawing():  # Esc first drops a polygon being placed
            return
        self.runner.stop()
        self._scheduled.clear()  # the next edit or view change starts again
        self.statusBar().showMessage("Processing stopped")

    def _on_layout_changed(self, layout: str) -> None:
        _set_checked(self.actions_["layout"], layout == "2x2")
        _set_checked(self.actions_["priors"], layout == "priors")
        self._schedule_visible()

    def _on_priors(self) -> None:
        if not self.state.toggle_priors():
            _set_checked(self.actions_["priors"], False)
            self.statusBar().showMessage("No prior study open for this woman: open her earlier exam too (a folder "
                                         "per exam, or its DICOM study)", TRANSIENT_MS)

    def _on_load_spec(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load preprocessing spec", "", "Spec (*.json)")
        if path:
            self.state.pipeline.load(path)

    def _on_save_spec(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save preprocessing spec", "spec.json", "Spec (*.json)")
        if path:
            self.state.pipeline.save(path)

    def _on_spec_from_model(self) -> None:
        models = resources_dir() / "models"
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Spec of a model", str(models), "Models (*.onnx)")
        if path and self.state.pipeline.load_from_model(path):
            self.state.set_show("processed" if self.state.layout == "2x2" else "side_by_side")

    # --- view commands ----------------------------------------------------------------------
    def _zoom(self, factor: float) -> None:
        canvas = self.area.active_canvas()
        if canvas is not None:
            canvas.view_box.scaleBy((factor, factor))

    def _on_reset(self) -> None:
        if self.state.active is not None:
            self.state.reset(self.state.active)
        self.area.fit()

    # --- recent files, settings, drops ---------------------------------------------------------
    def _rebuild_recent(self) -> None:
        self._recent_menu.clear()
        for path in self.state.recent:
            action = self._recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        self._recent_menu.setEnabled(bool(self.state.recent))

    def _restore_settings(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1400, 900)
        state = self.settings.value("window_state")
        if state is not None and self.restoreState(state):
            self._docks_fitted = True  # the user's own panel sizes
        recent = self.settings.value("recent", [])
        self.state.recent = [str(p) for p in (recent if isinstance(recent, list) else [recent]) if p]
        self._rebuild_recent()
        self.actions_["loupe"].setChecked(self.settings.value("loupe", False, type=bool))

    def save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("recent", self.state.recent)
        self.settings.setValue("loupe", self.actions_["loupe"].isChecked())
        self.settings.sync()

    def _on_model_finding_accepted(self, document: Document, finding) -> None:
        if document.id in self.labelling.state.sheets:
            if finding.shape is not None:  # model boxes are in pixel edges, labels in pixel centres
                finding = dataclasses.replace(finding, shape=translate(finding.shape, -0.5, -0.5))
            self.labelling.state.add_existing(document.id, finding, f"Accept {finding.source}")

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt naming
        unsaved = self.labelling.close()
        if unsaved:
            QtWidgets.QMessageBox.warning(self, "Annotations not saved",
                                          "These annotations could not be written: " + ", ".join(unsaved))
        self.save_settings()
        self.runner.shutdown()
        self.second_opinion.shutdown()
        self.archive.shutdown()
        self.loader.shutdown()
        super().closeEvent(event)

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)


def _scrolling(panel: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
    """A tall panel in a scroll area, so it never sets the window's minimum height."""
    area = QtWidgets.QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)  # never cut off unreachable
    return area


def _set_checked(action: QtGui.QAction, checked: bool) -> None:
    with QtCore.QSignalBlocker(action):
        action.setChecked(checked)


def run_app(files: list[str], demo: bool = False) -> int:
    pg.setConfigOptions(imageAxisOrder="row-major")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("MammoDesk")
    app.setWindowIcon(QtGui.QIcon(str(icon_path())))
    window = MainWindow()
    if demo:  # maximised; the explicit size also holds where no window manager maximises (Xvfb)
        window.resize(app.primaryScreen().availableGeometry().size())
        window.showMaximized()
    else:
        window.show()
    window.open_paths(files)
    if len(files) > 1:
        window.state.set_layout("2x2")
    if demo:
        window.run_models_when_loaded(assumed_spacing_mm=DEMO_SPACING_MM)
    close_on_terminate(app, window)
    if os.environ.get("MAMMODESK_QUIT_WHEN_SHOWN"):  # start-up timing: leave once the window is on screen
        QtCore.QTimer.singleShot(0, app.quit)
    return app.exec()


def close_on_terminate(app: QtWidgets.QApplication, window: MainWindow) -> None:
    """SIGTERM (a logout, `kill`, a session manager) closes the window as the user would: labels are
    flushed and the workers shut down. Qt's loop runs in C++; a short timer lets Python see the signal."""
    if not hasattr(signal, "SIGTERM"):
        return
    signal.signal(signal.SIGTERM, lambda *_: QtCore.QTimer.singleShot(0, window.close))
    heartbeat = QtCore.QTimer(app)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(200)


def self_check() -> str:
    """For `mammodesk --self-test`: build the main window offscreen (proves the Qt plugins and pyqtgraph load)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["mammodesk-self-test"])
    window = MainWindow(QtCore.QSettings(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                                         "MammoDesk", "self-test"))
    window.close()
    return f"platform {app.platformName()}, Qt {QtCore.qVersion()}"
