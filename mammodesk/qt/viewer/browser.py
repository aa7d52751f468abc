"""The study browser: every candidate file of a folder with its thumbnail,
side/view, size, or the reason it could not be read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.state.loading import FileSummary

THUMB = 72
CELL = QtCore.QSize(THUMB + 20, THUMB + 44)  # thumbnail plus two lines of text: two columns in a 200-pixel panel
PATH_ROLE = QtCore.Qt.ItemDataRole.UserRole


class StudyBrowser(QtWidgets.QListWidget):
    open_requested = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIconSize(QtCore.QSize(THUMB, THUMB))
        # a grid that wraps into as many columns as the panel is wide (a 50-file folder is not a long column)
        self.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.setFlow(QtWidgets.QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        self.setMovement(QtWidgets.QListView.Movement.Static)
        self.setGridSize(CELL)
        self.setWordWrap(True)
        self.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.itemDoubleClicked.connect(lambda item: self.open_requested.emit(item.data(PATH_ROLE)))
        self._items: dict[str, QtWidgets.QListWidgetItem] = {}

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802 - Qt naming
        if event.key() in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter):
            for item in self.selectedItems() or ([self.currentItem()] if self.currentItem() else []):
                self.open_requested.emit(item.data(PATH_ROLE))
            return
        super().keyPressEvent(event)

    def clear_entries(self) -> None:
        """Close All: the study list empties with the views."""
        self.clear()
        self._items.clear()

    def add_entries(self, paths: list[str]) -> None:
        """List files (once each), the first new one scrolled into sight; their rows fill in as summaries
        arrive."""
        new = [path for path in dict.fromkeys(paths) if path not in self._items]
        for path in new:
            item = QtWidgets.QListWidgetItem(f"{Path(path).name}\nreading...")
            item.setSizeHint(CELL)
            item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignTop)
            item.setData(PATH_ROLE, path)
            item.setToolTip(path)
            self.addItem(item)
            self._items[path] = item
        if new:
            self.scrollToItem(self._items[new[0]])

    def set_summary(self, summary: FileSummary) -> None:
        item = self._items.get(summary.path)
        if item is None:
            return
        name = Path(summary.path).name
        if summary.error:
            item.setText(f"{name}\ncannot open: {summary.error}")
            item.setForeground(QtGui.QColor("#e06060"))
            item.setIcon(self.style().standardIcon(QtWidgets.QStyle.StandardPixmap.SP_MessageBoxWarning))
            item.setToolTip(f"{summary.path}\n{summary.error}")
            return
        rows, cols = summary.size or (0, 0)
        item.setText(f"{name}\n{summary.anatomy.label if summary.anatomy else '? ?'}  {cols}x{rows}")
        if summary.thumbnail is not None:
            item.setIcon(QtGui.QIcon(QtGui.QPixmap.fromImage(_grey_qimage(summary.thumbnail))))

    def paths(self) -> list[str]:
        """The files listed, in the order shown."""
        return [self.item(i).data(QtCore.Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def entry_text(self, path: str) -> str:
        item = self._items.get(path)
        return item.text() if item is not None else ""


def _grey_qimage(pixels: np.ndarray) -> QtGui.QImage:
    data = np.ascontiguousarray(pixels)
    image = QtGui.QImage(data.data, data.shape[1], data.shape[0], data.strides[0], QtGui.QImage.Format.Format_Grayscale8)
    return image.copy()  # own the bytes: `data` goes away
