"""The study browser: every candidate file of a folder with its thumbnail,
side/view, size, or the reason it could not be read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.services.loading import FileSummary, LabelStatus

THUMB = 72
CELL = QtCore.QSize(THUMB + 20, THUMB + 58)  # thumbnail plus three lines of text: two columns in a 200-pixel panel
PATH_ROLE = QtCore.Qt.ItemDataRole.UserRole


class StudyBrowser(QtWidgets.QListWidget):
    """The study as a worklist: each file with whether it is labelled (and by whom, from its sidecar, so the
    progress survives a restart), "n of N labelled", and a filter to the unlabelled ones."""

    open_requested = QtCore.Signal(str)
    progress_changed = QtCore.Signal(str)  # "12 of 60 labelled"

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
        self.setTextElideMode(QtCore.Qt.TextElideMode.ElideLeft)  # the end tells files apart (sample_A3, sample_B3)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.itemDoubleClicked.connect(lambda item: self.open_requested.emit(item.data(PATH_ROLE)))
        self._items: dict[str, QtWidgets.QListWidgetItem] = {}
        self._summaries: dict[str, FileSummary] = {}
        self._labels: dict[str, LabelStatus] = {}
        self._names: dict[str, str] = {}
        self.unlabelled_only = False

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
        self._summaries.clear()
        self._labels.clear()
        self._report_progress()

    def add_entries(self, paths: list[str]) -> None:
        """List files (once each), the first new one scrolled into sight; their rows fill in as summaries
        arrive."""
        new = [path for path in dict.fromkeys(paths) if path not in self._items]
        for path in new:
            item = QtWidgets.QListWidgetItem()
            item.setSizeHint(CELL)
            item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignTop)
            item.setData(PATH_ROLE, path)
            item.setToolTip(path)
            self.addItem(item)
            self._items[path] = item
        if new:
            self._refresh_names()  # a new file may share a name with a listed one
            self.scrollToItem(self._items[new[0]])
            self._report_progress()

    def set_summary(self, summary: FileSummary) -> None:
        if summary.path not in self._items:
            return
        self._summaries[summary.path] = summary
        if summary.labels is not None and summary.path not in self._labels:  # the app's own saves win
            self._labels[summary.path] = summary.labels
        self._show(summary.path)
        self._report_progress()

    def set_labels(self, path: str, status: LabelStatus) -> None:
        """An image's labels changed in the app (saved to its sidecar)."""
        if path in self._items:
            self._labels[path] = status
            self._show(path)
            self._report_progress()

    def set_unlabelled_only(self, on: bool) -> None:
        self.unlabelled_only = on
        for path in self._items:
            self._show(path)

    def is_labelled(self, path: str) -> bool:
        status = self._labels.get(path)
        return status is not None and status.labelled

    def progress(self) -> tuple[int, int]:
        return sum(self.is_labelled(p) for p in self._items), len(self._items)

    def paths(self) -> list[str]:
        """The files listed, in the order shown."""
        return [self.item(i).data(QtCore.Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def entry_text(self, path: str) -> str:
        item = self._items.get(path)
        return item.text() if item is not None else ""

    def _refresh_names(self) -> None:
        """Each file by its name, or 'folder/name' where another listed file has the same name."""
        counts: dict[str, int] = {}
        for path in self._items:
            counts[Path(path).name] = counts.get(Path(path).name, 0) + 1
        self._names = {p: f"{Path(p).parent.name}/{Path(p).name}" if counts[Path(p).name] > 1 else Path(p).name
                       for p in self._items}
        for path in self._items:
            self._show(path)

    def _show(self, path: str) -> None:
        item = self._items[path]
        name = self._names.get(path, Path(path).name)
        summary = self._summaries.get(path)
        status = self._labels.get(path)
        mark = "" if status is None else \
            (f"✓ {status.findings}" + (f" · {', '.join(status.authors)}" if status.authors else "")
             if status.labelled else "unlabelled")
        item.setHidden(self.unlabelled_only and self.is_labelled(path))
        if summary is None:
            item.setText(f"{name}\nreading...")
            return
        if summary.error:
            item.setText(f"{name}\ncannot open: {summary.error}")
            item.setForeground(QtGui.QColor("#e06060"))
            item.setIcon(self.style().standardIcon(QtWidgets.QStyle.StandardPixmap.SP_MessageBoxWarning))
            item.setToolTip(f"{summary.path}\n{summary.error}")
            return
        rows, cols = summary.size or (0, 0)
        item.setText(f"{name}\n{summary.anatomy.label if summary.anatomy else '? ?'}  {cols}x{rows}\n{mark}".rstrip())
        item.setForeground(QtGui.QColor("#60c060") if self.is_labelled(path) else QtGui.QBrush())
        item.setToolTip(f"{summary.path}\n{mark}" if mark else summary.path)
        if summary.thumbnail is not None and item.icon().isNull():
            item.setIcon(QtGui.QIcon(QtGui.QPixmap.fromImage(_grey_qimage(summary.thumbnail))))

    def _report_progress(self) -> None:
        done, total = self.progress()
        self.progress_changed.emit(f"{done} of {total} labelled" if total else "")


class StudyPanel(QtWidgets.QWidget):
    """The browser under its progress line ("12 of 60 labelled") and the unlabelled-only filter."""

    def __init__(self, browser: StudyBrowser, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.browser = browser
        self.progress = QtWidgets.QLabel("")
        self.unlabelled = QtWidgets.QCheckBox("Unlabelled only")
        self.unlabelled.setToolTip("Hide the images that already have labels (from their sidecars)")
        header = QtWidgets.QHBoxLayout()
        header.setContentsMargins(4, 2, 4, 2)
        header.addWidget(self.progress, 1)
        header.addWidget(self.unlabelled)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(browser)
        browser.progress_changed.connect(self.progress.setText)
        self.unlabelled.toggled.connect(browser.set_unlabelled_only)


def _grey_qimage(pixels: np.ndarray) -> QtGui.QImage:
    data = np.ascontiguousarray(pixels)
    image = QtGui.QImage(data.data, data.shape[1], data.shape[0], data.strides[0], QtGui.QImage.Format.Format_Grayscale8)
    return image.copy()  # own the bytes: `data` goes away
