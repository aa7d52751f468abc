"""Nothing clipped: at 1366x768 and 1920x1080 every panel's widgets lie inside
the panel's visible width (a panel may scroll down, never hide its right side),
and the images keep most of the window."""

from __future__ import annotations

import pytest
from dicom_factory import make_dataset, phantom, write
from PySide6 import QtCore, QtWidgets

SIZES = [(1366, 768), (1920, 1080)]
CHECKED = (QtWidgets.QAbstractButton, QtWidgets.QComboBox, QtWidgets.QLineEdit, QtWidgets.QAbstractSpinBox,
           QtWidgets.QSlider, QtWidgets.QProgressBar, QtWidgets.QAbstractItemView)


@pytest.fixture
def window(qtbot, tmp_path, request):
    from mammodesk.qt.app import MainWindow

    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    width, height = request.param
    win.setGeometry(0, 0, width, height)
    win.show()
    path = write(make_dataset(phantom(300, 240, bits=12), bits_stored=12, PixelSpacing=[0.1, 0.1]), tmp_path / "a.dcm")
    win.open_paths([str(path)])
    qtbot.waitUntil(lambda: len(win.state.documents) == 1, timeout=30_000)
    return win


def visible_area(dock: QtWidgets.QDockWidget) -> QtWidgets.QWidget:
    """What the user sees of a panel: a scroll area's viewport, or the dock's own widget."""
    widget = dock.widget()
    return widget.viewport() if isinstance(widget, QtWidgets.QScrollArea) else widget


def clipped(dock: QtWidgets.QDockWidget) -> list[str]:
    area = visible_area(dock)
    width = area.width()
    problems = []
    if isinstance(dock.widget(), QtWidgets.QScrollArea) and dock.widget().horizontalScrollBar().isVisible():
        problems.append(f"the panel is {dock.widget().widget().minimumSizeHint().width()} wide in {width}: it scrolls "
                        "sideways")
    for child in dock.widget().findChildren(QtWidgets.QWidget):
        if not isinstance(child, CHECKED) or not child.isVisibleTo(dock) or child.width() <= 0:
            continue
        if isinstance(child.parentWidget(), (QtWidgets.QScrollBar, QtWidgets.QHeaderView)):
            continue
        left = child.mapTo(area, QtCore.QPoint(0, 0)).x()
        if left < -1 or left + child.width() > width + 1:
            label = getattr(child, "text", lambda: "")() if hasattr(child, "text") else ""
            problems.append(f"{type(child).__name__} {label!r} spans {left}..{left + child.width()} of {width}")
    return problems


@pytest.mark.parametrize("window", SIZES, indirect=True, ids=["1366x768", "1920x1080"])
def test_every_panel_fits_its_dock(window, qtbot):
    for key, dock in window.docks.items():
        dock.show()
        dock.raise_()
        qtbot.wait(30)
        assert not clipped(dock), f"{key} panel: {clipped(dock)}"
    canvas = window.area.visible_canvases()[0]
    assert canvas.width() >= 0.55 * window.width()  # the image keeps most of the window


@pytest.mark.parametrize("window", SIZES[:1], indirect=True, ids=["1366x768"])
def test_panel_shortcuts_raise_a_tab_behind_another(window, qtbot):
    labels, models = window.docks["labels"], window.docks["models"]
    models.show()
    models.raise_()
    qtbot.wait(20)
    assert labels.visibleRegion().isEmpty() and window.actions_["panel_labels"].isChecked()  # open, behind
    window.actions_["panel_labels"].trigger()
    qtbot.wait(20)
    assert not labels.visibleRegion().isEmpty() and window.actions_["panel_labels"].isChecked()  # raised
    window.actions_["panel_labels"].trigger()  # in front: the shortcut closes it
    qtbot.wait(20)
    assert labels.isHidden() and not window.actions_["panel_labels"].isChecked()
    window.actions_["panel_labels"].trigger()
    assert not labels.isHidden()


def test_the_first_window_fits_a_1366x768_screen(qtbot, tmp_path, monkeypatch):
    """No saved geometry: the first window is 1400 x 900 where the screen has room, else it fits the screen."""
    from mammodesk.qt import window_settings
    from mammodesk.qt.app import MainWindow

    class Screen:
        def __init__(self, width, height):
            self.rect = QtCore.QRect(0, 0, width, height)

        def availableGeometry(self):
            return self.rect

    for (width, height), expected in (((1366, 728), (1284, 684)), ((1920, 1040), (1400, 900))):
        monkeypatch.setattr(QtWidgets.QWidget, "screen", lambda self, s=Screen(width, height): s)
        settings = QtCore.QSettings(str(tmp_path / f"{width}.ini"), QtCore.QSettings.Format.IniFormat)
        win = MainWindow(settings)
        qtbot.addWidget(win)
        assert (win.width(), win.height()) == expected
        assert window_settings.first_size(win).width() <= width


def test_a_study_with_one_view_per_breast_hangs_one_by_two():
    from mammodesk.io.views import SLOTS
    from mammodesk.qt.viewer.area import hanging_slots

    assert hanging_slots({"RMLO": 1, "LMLO": 2}) == ("RMLO", "LMLO")  # MLOs only: R left, L right
    assert hanging_slots({"LMLO": 2}) == ("RMLO", "LMLO")
    assert hanging_slots({"RCC": 0, "LCC": 1}) == ("RCC", "LCC")
    assert hanging_slots({"RCC": 0, "LMLO": 1}) == SLOTS  # both families: the full 2x2
