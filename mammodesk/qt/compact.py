"""Widgets that fit narrow docks: a combo box whose width does not grow with
its longest entry (a panel of them could not be narrower than its longest
label, and was cut off instead), and value widgets in a scrolling panel that
take the mouse wheel only when focused (a wheel passing over a slider on its
way down the panel used to change the heat-map threshold)."""

from __future__ import annotations

from typing import Iterable

from PySide6 import QtCore, QtWidgets


def compact_combo(items: Iterable[str] = ()) -> QtWidgets.QComboBox:
    box = QtWidgets.QComboBox()
    box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(6)
    box.addItems(list(items))
    return box


WHEEL_TAKERS = (QtWidgets.QAbstractSlider, QtWidgets.QComboBox, QtWidgets.QAbstractSpinBox)


class _WheelGuard(QtCore.QObject):
    """An unfocused value widget inside a scrolling panel passes the wheel to the panel's scroll bar
    instead of changing its value; click it (or Tab to it) first, then the wheel changes it."""

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 - Qt naming
        if event.type() != QtCore.QEvent.Type.Wheel or not isinstance(watched, WHEEL_TAKERS) \
                or isinstance(watched, QtWidgets.QScrollBar) or watched.hasFocus():
            return False
        parent = watched.parentWidget()
        while parent is not None and not isinstance(parent, QtWidgets.QAbstractScrollArea):
            parent = parent.parentWidget()
        if parent is None:
            return False  # not in a scrolling panel: nothing else would take the wheel
        QtWidgets.QApplication.sendEvent(parent.verticalScrollBar(), event)
        return True


def wheel_only_when_focused(app: QtWidgets.QApplication) -> None:
    """Once per application: every slider, combo box and spin box, including those made later."""
    if app.findChild(_WheelGuard) is None:
        app.installEventFilter(_WheelGuard(app))
