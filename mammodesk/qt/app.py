"""The reading room's main window. It only composes: the viewer area and its
features (the viewer itself, preprocessing, the second opinion, labelling,
the archive), each a `Feature` whose work runs on the window's one
`WorkerPools`. The window docks the features' panels, builds the menus and
hands each feature its actions, gives the viewer their canvas layers, and
ends them, and every worker, on close."""

from __future__ import annotations

from typing import Callable, Sequence

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk import __version__
from mammodesk.qt import window_settings
from mammodesk.qt.actions import ShortcutsDialog, build_actions, window_actions
from mammodesk.qt.archive.controller import ArchiveController
from mammodesk.qt.compact import wheel_only_when_focused
from mammodesk.qt.feature import Feature, Panel, set_checked
from mammodesk.qt.host import Host, WindowHost
from mammodesk.qt.labelling.controller import LabellingController
from mammodesk.qt.opinion.controller import SecondOpinion
from mammodesk.qt.viewer.area import ViewerArea
from mammodesk.qt.viewer.feature import ViewerFeature
from mammodesk.qt.viewer.processing import ProcessingController
from mammodesk.qt.workers import WorkerPools
from mammodesk.state.opinion import OpinionState
from mammodesk.state.viewer import ViewerState

SIDES = {"left": QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, "right": QtCore.Qt.DockWidgetArea.RightDockWidgetArea}
# Features that need only the host: a new panel is its own module plus one line here.
EXTRA_FEATURES: tuple[Callable[[Host], Feature], ...] = ()


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, settings: QtCore.QSettings | None = None, opinions: OpinionState | None = None,
                 features: Sequence[Callable[[Host], Feature]] = ()) -> None:
        super().__init__()
        pg.setConfigOptions(imageAxisOrder="row-major")
        wheel_only_when_focused(QtWidgets.QApplication.instance())
        self.setWindowTitle(f"MammoDesk {__version__}")
        self.setAcceptDrops(True)
        self.settings = settings or window_settings.default_settings()
        self.state, self.opinions = ViewerState(), opinions or OpinionState()
        self.workers = WorkerPools()  # every worker thread and process of the window, stopped on close
        self.host = host = WindowHost(self)  # what the features may ask of the window
        self.area = ViewerArea(self.state, self)
        self.setCentralWidget(self.area)
        self.viewer = ViewerFeature(host, self.area, self.settings)
        self.processing = ProcessingController(host, self.area)
        self.second_opinion = SecondOpinion(host, self.opinions)
        self.labelling = LabellingController(host)
        self.archive = ArchiveController(host, self.labelling.state)
        self.features: list[Feature] = [self.viewer, self.processing, self.second_opinion, self.labelling,
                                        self.archive, *(make(host) for make in (*EXTRA_FEATURES, *features))]
        self.opening, self.browser, self.metadata = self.viewer.opening, self.viewer.browser, self.viewer.metadata
        self.pipeline_panel = self.processing.panel
        self._link_features()
        panels = [panel for feature in self.features for panel in feature.panels()]
        self.docks = {panel.key: self._dock(panel) for panel in panels}
        for panel in panels:
            if panel.tab_with is not None:
                self.tabifyDockWidget(self.docks[panel.tab_with], self.docks[panel.key])
        self.docks["browser"].raise_()
        toggles = sorted((panel.toggle() for panel in panels), key=lambda spec: (len(spec.shortcut), spec.shortcut))
        self.action_specs = window_actions([spec for feature in self.features for spec in feature.menu_actions] + toggles)
        self.actions_ = build_actions(self, self.action_specs)
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
        self.viewer.close_all()

    def run_models_when_loaded(self, assumed_spacing_mm: float | None = None) -> None:
        """Once the images being opened are open (or failed), run every model on the images shown; the
        model panel comes to the front and shows the best answer for the active view."""
        self.docks["models"].raise_()
        self.opening.when_loads_finish(lambda: self.second_opinion.run_everything(assumed_spacing_mm))

    # --- construction ------------------------------------------------------------------------
    def _link_features(self) -> None:
        """What one feature tells another: the window composes them, so it makes these few links."""
        self.labelling.labels_changed.connect(self.browser.set_labels)  # the worklist's marks follow the labels
        self.opinions.finding_accepted.connect(self.labelling.state.accept_model_finding)
        for feature in self.features:
            self.opening.loaded.connect(feature.on_loaded)
            layer = feature.canvas_layer()
            if layer is not None:
                self.area.add_layer(layer)

    def _dock(self, panel: Panel) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(panel.title, self)
        dock.setObjectName(f"dock-{panel.title.lower()}")
        dock.setWidget(_scrolling(panel.widget) if panel.scrolls else panel.widget)
        self.addDockWidget(SIDES[panel.side], dock)
        return dock

    def _connect(self) -> None:
        a = self.actions_
        for feature in self.features:
            feature.connect_actions(a, self.area)
        a["quit"].triggered.connect(lambda: self.close())
        a["help"].triggered.connect(lambda: ShortcutsDialog(self.action_specs, self).exec())
        a["stop"].triggered.connect(lambda: self.cancel())
        self.area.cursor_text.connect(self._cursor.setText)
        for key, dock in self.docks.items():
            action = a[f"panel_{key}"]
            action.triggered.connect(lambda _=False, k=key: self.toggle_panel(k))
            # checked = open, even while another tab covers it (Qt reports those as visible too)
            dock.visibilityChanged.connect(lambda _visible, act=action, d=dock: set_checked(act, not d.isHidden()))
            set_checked(action, not dock.isHidden())
        self.opening.pending_changed.connect(self._show_busy)
        self.processing.busy_changed.connect(self._show_busy)
        self.state.recent_changed.connect(self._rebuild_recent)

    def cancel(self) -> None:
        """Esc: the feature nearest the pointer first (labelling's unfinished polygon before the preprocessing)."""
        for feature in reversed(self.features):
            if feature.cancel():
                return

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
        set_checked(self.actions_[f"panel_{key}"], not dock.isHidden())

    def _show_busy(self, *_count) -> None:
        self._busy.setVisible(self.opening.pending > 0 or self.processing.busy > 0)

    def _rebuild_recent(self) -> None:
        self._recent_menu.clear()
        for path in self.state.recent:
            self._recent_menu.addAction(path).triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        self._recent_menu.setEnabled(bool(self.state.recent))

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt naming
        window_settings.save(self, self.settings, self.state, self.actions_["loupe"].isChecked())
        for feature in self.features:  # in the order composed: labelling's saves flush while the archive can still send
            feature.shutdown()
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
