"""The reading room's main window. It only composes: the viewer area and its
controllers (opening, preprocessing), the second opinion, labelling and the
archive, each a feature subpackage whose work runs on the window's one
`WorkerPools`; the window docks their panels, wires the menu actions to them
and ends them, and every worker, on close."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk import __version__
from mammodesk.qt import window_settings
from mammodesk.qt.actions import ShortcutsDialog, build_actions
from mammodesk.qt.archive.controller import ArchiveController
from mammodesk.qt.compact import wheel_only_when_focused
from mammodesk.qt.host import WindowHost
from mammodesk.qt.labelling.controller import LabellingController
from mammodesk.qt.opinion.controller import SecondOpinion
from mammodesk.qt.viewer.browser import StudyBrowser, StudyPanel
from mammodesk.qt.viewer.metadata import MetadataPanel
from mammodesk.qt.viewer.opening import OpeningController
from mammodesk.qt.viewer.pipeline import PipelinePanel
from mammodesk.qt.viewer.processing import ProcessingController
from mammodesk.qt.viewer.area import ViewerArea
from mammodesk.qt.workers import WorkerPools
from mammodesk.services.archive_session import ArchiveSession
from mammodesk.state.opinion import OpinionState
from mammodesk.state.viewer import ViewerState

LEFT, RIGHT = QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, QtCore.Qt.DockWidgetArea.RightDockWidgetArea


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, settings: QtCore.QSettings | None = None, opinions: OpinionState | None = None) -> None:
        super().__init__()
        pg.setConfigOptions(imageAxisOrder="row-major")
        wheel_only_when_focused(QtWidgets.QApplication.instance())
        self.setWindowTitle(f"MammoDesk {__version__}")
        self.setAcceptDrops(True)
        self.settings = settings or window_settings.default_settings()
        self.state, self.opinions = ViewerState(), opinions or OpinionState()
        self.workers = WorkerPools()  # every worker thread and process of the window, stopped on close
        self.opinions.open_documents = lambda: list(self.state.documents)
        self.host = WindowHost(self)  # what the feature controllers may ask of the window
        author = self.settings.value("author", None) or None
        self.labelling = LabellingController(self.host, author=author)
        self.area = ViewerArea(self.state, self.opinions, self, labelling=self.labelling.state)
        self.setCentralWidget(self.area)
        self.browser, self.metadata, self.pipeline_panel = StudyBrowser(), MetadataPanel(), PipelinePanel(self.state)
        self.opening = OpeningController(self.host, self.browser, self.settings)
        self.labelling.labels_changed.connect(self.browser.set_labels)  # the worklist's marks follow the labels
        self.processing = ProcessingController(self.host, self.area, self.pipeline_panel)
        self.second_opinion = SecondOpinion(self.state, self.opinions, self, settings=self.settings,
                                            workers=self.workers)
        self.archive = ArchiveController(self.host, ArchiveSession(author=author), self.labelling.state)
        self.docks = {key: self._dock(title, widget, side) for key, title, widget, side in (
            ("pipeline", "Preprocessing", self.pipeline_panel, RIGHT), ("browser", "Study", StudyPanel(self.browser), LEFT),
            ("metadata", "Metadata", self.metadata, LEFT), ("models", "Models", _scrolling(self.second_opinion.panel),
                                                            RIGHT),
            ("labels", "Labels", _scrolling(self.labelling.panel), RIGHT),
            ("worklist", "Worklist", _scrolling(self.archive.panel), LEFT))}
        self.tabifyDockWidget(self.docks["browser"], self.docks["worklist"])
        self.docks["browser"].raise_()
        self.tabifyDockWidget(self.docks["pipeline"], self.docks["models"])
        self.tabifyDockWidget(self.docks["pipeline"], self.docks["labels"])
        self.actions_ = build_actions(self)
        self._recent_menu = self.menuBar().actions()[0].menu().addMenu("Open &Recent")
        self._cursor, self._busy = QtWidgets.QLabel(), QtWidgets.QProgressBar()
        self._busy.setRange(0, 0)
        self._busy.setMaximumWidth(120)
        self._busy.hide()
        self.statusBar().addPermanentWidget(self._cursor)
        self.statusBar().addPermanentWidget(self._busy)
        self._connect()
        self._docks_fitted = window_settings.restore(self, self.settings, self.state)  # else sized on first show
        self._rebuild_recent()
        self.actions_["loupe"].setChecked(self.settings.value("loupe", False, type=bool))
        self.statusBar().showMessage("Open a mammogram: File > Open (Ctrl+O), a folder (Ctrl+Shift+O), or drop files here")

    # --- what the window's parts are reached by --------------------------------------------------
    @property
    def loader(self):
        return self.opening.loader

    def open_paths(self, paths: list[str]) -> None:
        self.opening.open_paths(paths)

    def open_path(self, path: str) -> None:
        self.opening.open_path(path)

    def open_folder(self, folder: str) -> None:
        self.opening.open_folder(folder)

    def when_loads_finish(self, callback) -> None:
        self.opening.when_loads_finish(callback)

    def close_all(self) -> None:
        self.state.close_all()
        self.browser.clear_entries()

    def run_models_when_loaded(self, assumed_spacing_mm: float | None = None) -> None:
        """Once the images being opened are open (or failed), run every model on the images shown; the
        model panel comes to the front and shows the best answer for the active view."""
        self.docks["models"].raise_()
        self.opening.when_loads_finish(lambda: self.second_opinion.run_everything(assumed_spacing_mm))

    # --- construction ------------------------------------------------------------------------
    def _dock(self, title: str, widget: QtWidgets.QWidget, area) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        a, state, area, opinion = self.actions_, self.state, self.area, self.second_opinion
        commands = {"open": self.opening.ask_files, "open_folder": self.opening.ask_folder,
                    "close": lambda: state.active and state.close(state.active), "close_all": self.close_all,
                    "quit": self.close, "fit": area.fit, "one_to_one": area.one_to_one,
                    "zoom_in": lambda: area.zoom(0.8), "zoom_out": lambda: area.zoom(1.25), "show": state.cycle_show,
                    "priors": self._on_priors, "priors_page": state.cycle_priors_page, "stop": self._on_stop,
                    "next_image": lambda: state.step_active(+1), "prev_image": lambda: state.step_active(-1),
                    "invert": lambda: state.active and state.invert(state.active),
                    "next_preset": lambda: state.active and state.next_preset(state.active),
                    "reset": lambda: (state.active and state.reset(state.active), area.fit()),
                    "help": lambda: ShortcutsDialog(self).exec(), "run_models": opinion.panel.run_button.click,
                    "run_all_models": lambda: opinion.run(None, opinion.panel.target_mode(), True),
                    "servers": self.archive.servers_dialog, "save_to_server": self.archive.save_active}
        for name, command in commands.items():
            a[name].triggered.connect(lambda _=False, c=command: c())
        a["layout"].toggled.connect(lambda on: state.set_layout("2x2" if on else "single"))
        a["orientation"].toggled.connect(lambda on: state.standardised == on and state.toggle_orientation())
        a["loupe"].toggled.connect(area.set_loupe)
        a["overlay"].setChecked(self.opinions.overlay.visible)
        a["overlay"].toggled.connect(lambda on: self.opinions.set_overlay(visible=on))
        self.opinions.overlay_changed.connect(lambda s: _set_checked(a["overlay"], s.visible))
        a["place_roi"].toggled.connect(opinion.set_placing)
        opinion.panel.place_roi.toggled.connect(lambda on: _set_checked(a["place_roi"], on))
        area.clicked_at.connect(opinion.on_clicked)
        area.cursor_text.connect(self._cursor.setText)
        self.opinions.finding_accepted.connect(self.labelling.state.accept_model_finding)
        self.labelling.connect_actions(a, area)
        for key, dock in self.docks.items():
            action = a[f"panel_{key}"]
            action.triggered.connect(lambda _=False, k=key: self.toggle_panel(k))
            # checked = open, even while another tab covers it (Qt reports those as visible too)
            dock.visibilityChanged.connect(lambda _visible, act=action, d=dock: _set_checked(act, not d.isHidden()))
            _set_checked(action, not dock.isHidden())
        self.opening.loaded.connect(self.labelling.on_loaded)
        self.opening.loaded.connect(lambda document, _loaded: self.archive.on_loaded(document))
        self.opening.browse_requested.connect(lambda: self.toggle_panel("browser", front=True))
        self.opening.pending_changed.connect(self._show_busy)
        self.processing.busy_changed.connect(self._show_busy)
        self.loader.identifying.connect(self.metadata.set_identifying)
        self.metadata.reveal_requested.connect(self.loader.reveal)
        self.pipeline_panel.stop_requested.connect(self._on_stop)
        state.active_changed.connect(self.metadata.show_document)
        state.layout_changed.connect(lambda layout: (_set_checked(a["layout"], layout == "2x2"),
                                                     _set_checked(a["priors"], layout == "priors")))
        state.recent_changed.connect(self._rebuild_recent)

    # --- window behaviour ----------------------------------------------------------------------
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

    def toggle_panel(self, key: str, front: bool = False) -> None:
        """A panel's shortcut: open and raise it when closed or behind another tab; close it when in front."""
        dock = self.docks[key]
        if not front and not dock.isHidden() and not dock.visibleRegion().isEmpty():
            dock.hide()
        else:
            dock.show()
            dock.raise_()
        _set_checked(self.actions_[f"panel_{key}"], not dock.isHidden())

    def _show_busy(self, *_count) -> None:
        self._busy.setVisible(self.opening.pending > 0 or self.processing.busy > 0)

    def _on_stop(self) -> None:
        if not self.labelling.cancel_drawing():  # Esc first drops a polygon being placed
            self.processing.stop()

    def _on_priors(self) -> None:
        if not self.state.toggle_priors():
            _set_checked(self.actions_["priors"], False)
            self.statusBar().showMessage("No prior study open for this woman: open her earlier exam too (a folder "
                                         "per exam, or its DICOM study)", 4000)

    def _rebuild_recent(self) -> None:
        self._recent_menu.clear()
        for path in self.state.recent:
            self._recent_menu.addAction(path).triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        self._recent_menu.setEnabled(bool(self.state.recent))

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt naming
        unsaved = self.labelling.close()
        if unsaved:
            QtWidgets.QMessageBox.warning(self, "Annotations not saved",
                                          "These annotations could not be written: " + ", ".join(unsaved))
        window_settings.save(self, self.settings, self.state, self.actions_["loupe"].isChecked())
        for part in (self.processing, self.second_opinion, self.archive):
            part.shutdown()
        self.workers.shutdown()  # the loader's decoding processes too (LoaderBridge registers its stop)
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
