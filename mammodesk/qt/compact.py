"""Widgets that fit narrow docks: a combo box whose width does not grow with
its longest entry (a panel of them could not be narrower than its longest
label, and was cut off instead)."""

from __future__ import annotations

from typing import Iterable

from PySide6 import QtWidgets


def compact_combo(items: Iterable[str] = ()) -> QtWidgets.QComboBox:
    box = QtWidgets.QComboBox()
    box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(6)
    box.addItems(list(items))
    return box
