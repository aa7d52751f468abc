"""What MammoDesk read from the active image, then its DICOM tags.
Identifying tags (names, dates, IDs, UIDs, private tags) are not shown, and
not even read, until the user asks to reveal them for this image."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.qt.timers import single_shot_timer
from mammodesk.qt.viewer.canvas import window_text
from mammodesk.state.viewer import Document

SOURCES = {"tag": "tags", "name": "file name", "pixels": "pixels"}


def _with_source(value: str | None, source: str | None) -> str:
    return "unknown (?)" if value is None else f"{value} (from {SOURCES.get(source or '', 'unknown')})"


class WrappingDelegate(QtWidgets.QStyledItemDelegate):
    """Cells that wrap at word boundaries, and inside a word too long for the column ("MONOCHROME2",
    "BodyPartExamined"), so a narrow panel shows whole values instead of "MONOCHROM...". Qt's own wrapping
    measures without the cell's margins and elides what it thought would fit."""

    MARGIN = 4
    CACHE = 4096  # measured cells kept: a study's tags repeat from file to file and from pass to pass

    def __init__(self, parent: QtWidgets.QAbstractItemView) -> None:
        super().__init__(parent)
        self._sizes: dict[tuple, QtCore.QSize] = {}

    def _layout(self, option: QtWidgets.QStyleOptionViewItem, index, width: int) -> tuple[int, str]:
        text = str(index.data() or "")
        metrics = option.fontMetrics
        flags = QtCore.Qt.TextFlag.TextWordWrap
        if any(metrics.horizontalAdvance(word) > width for word in text.split()):
            flags = QtCore.Qt.TextFlag.TextWrapAnywhere
        return int(flags), text

    def sizeHint(self, option, index) -> QtCore.QSize:  # noqa: N802 - Qt naming
        view = self.parent()
        width = max(20, view.columnWidth(index.column()) - 2 * self.MARGIN)
        key = (str(index.data() or ""), width, option.font.key())
        size = self._sizes.get(key)
        if size is None:
            flags, text = self._layout(option, index, width)
            rect = option.fontMetrics.boundingRect(QtCore.QRect(0, 0, width, 10_000), flags, text)
            size = QtCore.QSize(width + 2 * self.MARGIN, rect.height() + 2 * self.MARGIN)
            if len(self._sizes) >= self.CACHE:
                self._sizes.clear()
            self._sizes[key] = size
        return size

    def paint(self, painter, option, index) -> None:
        item = QtWidgets.QStyleOptionViewItem(option)
        self.initStyleOption(item, index)
        text, item.text = item.text, ""
        style = item.widget.style() if item.widget is not None else QtWidgets.QApplication.style()
        style.drawControl(QtWidgets.QStyle.ControlElement.CE_ItemViewItem, item, painter, item.widget)
        area = item.rect.adjusted(self.MARGIN, self.MARGIN // 2, -self.MARGIN, -self.MARGIN // 2)
        flags, _ = self._layout(item, index, area.width())
        selected = bool(item.state & QtWidgets.QStyle.StateFlag.State_Selected)
        painter.save()
        painter.setPen(item.palette.color(QtGui.QPalette.ColorRole.HighlightedText if selected
                                          else QtGui.QPalette.ColorRole.Text))
        painter.drawText(area, flags | int(QtCore.Qt.AlignmentFlag.AlignVCenter), text)
        painter.restore()


class MetadataPanel(QtWidgets.QWidget):
    reveal_requested = QtCore.Signal(str)  # source path

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QtWidgets.QTableWidget(0, 2)
        self._rows_timer = single_shot_timer(self, 0, self._resize_rows)  # after the stretched column's width
        self.table.setHorizontalHeaderLabels(["Field", "Value"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.sectionResized.connect(lambda *_: self._rows_due())  # re-wrap at any width
        self.table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setWordWrap(True)  # long values wrap instead of being cut ("2624 x 4736 (ui...")
        self.table.setItemDelegate(WrappingDelegate(self.table))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.reveal = QtWidgets.QCheckBox("Show identifying tags")
        self.reveal.setToolTip("Reads patient names, dates and IDs from the file for this view only; never logged or exported")
        self.reveal.toggled.connect(self._on_reveal)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.reveal)
        layout.addWidget(self.table)
        self.document: Document | None = None
        self._identifying: dict[str, str] = {}
        self._stale = False  # the document changed while the panel was hidden (a tab behind another)

    def show_document(self, document: Document | None) -> None:
        if document is not self.document:
            self._identifying = {}
            with QtCore.QSignalBlocker(self.reveal):
                self.reveal.setChecked(False)
        self.document = document
        self._fill_when_seen()

    def set_identifying(self, path: str, tags: dict[str, str]) -> None:
        document = self.document
        if document is not None and str(document.image.meta.source_path) == path and self.reveal.isChecked():
            self._identifying = tags or {"(none)": "this file holds no identifying tags"}
            self._fill_when_seen()

    def rows(self) -> list[tuple[str, str]]:
        document = self.document
        if document is None:
            return []
        meta, anatomy = document.image.meta, document.anatomy
        rows = [("File", document.name), ("Format", meta.format),
                ("Size", f"{document.image.shape[1]} x {document.image.shape[0]} ({document.image.dtype})"),
                ("Bits stored", str(meta.bits_stored)), ("Photometric", meta.photometric_interpretation),
                ("Laterality", _with_source(anatomy.laterality, anatomy.laterality_source)),
                ("View", _with_source(anatomy.view, anatomy.view_source)),
                ("Chest wall", f"{anatomy.chest_wall} edge (as stored)"),
                ("Pixel spacing", f"{meta.pixel_spacing_mm[0]:.4f} x {meta.pixel_spacing_mm[1]:.4f} mm"
                 if meta.pixel_spacing_mm else "unknown")]
        rows += [(f"Window preset {i + 1}", window_text(p)) for i, p in enumerate(meta.window_presets)]
        if not meta.window_presets:
            rows.append(("Window presets", "none in the file (an automatic window is used)"))
        rows.append(("Window shown", window_text(document.window)))
        rows += [("Warning", w) for w in meta.warnings]
        rows += sorted(meta.tags.items())
        rows += [(f"[identifying] {k}", v) for k, v in sorted(self._identifying.items())]
        return rows

    def _fill_when_seen(self) -> None:
        """Laying out a hundred wrapped rows costs tens of ms of the UI thread: a hidden panel waits until
        it is shown (opening a study fills it once, not once per file)."""
        self._stale = not self.isVisible()
        if not self._stale:
            self._fill()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self._fill()

    def _fill(self) -> None:
        rows = self.rows()
        self.table.setRowCount(len(rows))
        for index, (name, value) in enumerate(rows):
            for column, text in enumerate((name, value)):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(text)  # the whole value, however narrow the panel
                self.table.setItem(index, column, item)
        self.table.resizeColumnToContents(0)
        self._cap_name_column()
        self._rows_due()
        self.reveal.setEnabled(self.document is not None and self.document.image.meta.format.startswith("DICOM"))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        self._cap_name_column()
        self._rows_due()

    def _rows_due(self) -> None:
        """Wrapping every row is the panel's costly step: whatever asks for it (a fill, a column width, a
        resize) is coalesced into one pass after the event loop has given the stretched column its width."""
        self._rows_timer.start()  # restarting a pending pass keeps it one pass

    def _resize_rows(self) -> None:
        self.table.resizeRowsToContents()

    def _cap_name_column(self) -> None:
        self.table.setColumnWidth(0, min(self.table.columnWidth(0), max(80, self.table.viewport().width() * 2 // 5)))

    def _on_reveal(self, checked: bool) -> None:
        document = self.document
        if checked and document is not None and document.image.meta.source_path is not None:
            self.reveal_requested.emit(str(document.image.meta.source_path))
        else:
            self._identifying = {}
            self._fill()
