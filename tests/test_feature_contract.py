"""The recipe for a new panel (docs/ARCHITECTURE.md): one module with a `Feature`, and one line that hands
it to the window. Here a small real one, a grey-level summary of the active view with a marker layer on every
canvas, plugs in through `MainWindow(features=...)` alone and gets its dock, its menu entries and shortcut, the
loaded images, a layer on the canvases, Esc and the close."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.qt.actions import ActionSpec
from mammodesk.qt.app import MainWindow
from mammodesk.qt.feature import Feature, Panel


class CentreMarks:
    """A dot at the centre of each image shown: the smallest canvas layer."""

    def __init__(self) -> None:
        self.items: dict[object, QtWidgets.QGraphicsEllipseItem] = {}
        self.refreshed = 0

    def attach(self, canvas) -> None:
        item = QtWidgets.QGraphicsEllipseItem(-3, -3, 6, 6)
        item.hide()
        canvas.view_box.addItem(item)
        self.items[canvas] = item

    def refresh(self) -> None:
        self.refreshed += 1
        for canvas, item in self.items.items():
            document = canvas.document if canvas.isVisible() else None
            item.setVisible(document is not None)
            if document is not None:
                rows, cols = document.image.shape
                item.setPos(cols / 2, rows / 2)


class GreyLevels(Feature):
    """The active view's grey-level summary in a panel of its own."""

    menu_actions = (ActionSpec("copy_grey_levels", "Copy Grey Levels", "Ctrl+Alt+G", "Copy the summary", "Image"),)

    def __init__(self, host) -> None:
        self.host, self.label, self.layer = host, QtWidgets.QLabel("no image"), CentreMarks()
        self.loaded, self.cancelled, self.closed = [], 0, False
        host.viewer.active_changed.connect(self.show)

    def panels(self) -> list[Panel]:
        return [Panel("grey", "Grey Levels", self.label, "left", "Ctrl+9", "Show or hide the grey levels",
                      tab_with="metadata")]

    def canvas_layer(self) -> CentreMarks:
        return self.layer

    def connect_actions(self, actions, area) -> None:
        actions["copy_grey_levels"].triggered.connect(
            lambda: QtGui.QGuiApplication.clipboard().setText(self.label.text()))

    def on_loaded(self, document, loaded) -> None:
        self.loaded.append(document.name)

    def show(self, document) -> None:
        if document is None:
            self.label.setText("no image")
            return
        pixels = document.image.pixels
        low, median, high = np.percentile(pixels, [1, 50, 99])
        self.label.setText(f"{document.name}: p1 {low:.0f} · median {median:.0f} · p99 {high:.0f}")

    def cancel(self) -> bool:
        self.cancelled += 1
        return False  # nothing of its own to drop: the others still hear Esc

    def shutdown(self) -> None:
        self.closed = True


def test_a_new_panel_plugs_in_through_the_feature_contract_alone(qtbot, tmp_path, mias_images):
    made: list[GreyLevels] = []
    window = MainWindow(QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat),
                        features=[lambda host: made.append(GreyLevels(host)) or made[-1]])
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)
    (feature,) = made
    dock = window.docks["grey"]
    assert dock.widget() is feature.label and window.dockWidgetArea(dock) == QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
    assert dock in window.tabifiedDockWidgets(window.docks["metadata"])
    toggle = window.actions_["panel_grey"]
    assert toggle.shortcut().toString() == "Ctrl+9" and "Ctrl+9" in [s.shortcut for s in window.action_specs]
    assert "copy_grey_levels" in window.actions_ and set(feature.layer.items) == set(window.area.canvases)

    first = next(p for p in mias_images if p.name == "mdb001.pgm")
    window.open_paths([str(first)])
    qtbot.waitUntil(lambda: feature.loaded == ["mdb001.pgm"], timeout=60_000)
    assert feature.label.text().startswith("mdb001.pgm: p1 ")
    canvas = window.area.active_canvas()
    assert feature.layer.items[canvas].isVisible()
    rows, cols = canvas.document.image.shape
    assert feature.layer.items[canvas].pos() == QtCore.QPointF(cols / 2, rows / 2)
    refreshed = feature.layer.refreshed
    window.actions_["layout"].trigger()  # a relayout refreshes every layer
    assert feature.layer.refreshed > refreshed

    window.actions_["copy_grey_levels"].trigger()
    assert QtGui.QGuiApplication.clipboard().text() == feature.label.text()
    for _ in range(2):  # its Panels entry closes and opens it, the check mark following
        was_hidden = dock.isHidden()
        toggle.trigger()
        assert dock.isHidden() != was_hidden and toggle.isChecked() == was_hidden
    window.actions_["stop"].trigger()
    assert feature.cancelled == 1

    window.close()
    assert feature.closed
