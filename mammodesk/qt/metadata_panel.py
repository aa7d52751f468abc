"""What MammoDesk read from the active image, then its DICOM tags.
Identifying tags (names, dates, IDs, UIDs, private tags) are not shown, and
not even read, until the user asks to reveal them for this image."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from mammodesk.state.viewer import Document


class MetadataPanel(QtWidgets.QWidget):
    reveal_requested = QtCore.Signal(str)  # source path

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QtWidgets.QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Field", "Value"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setWordWrap(False)
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

    def show_document(self, document: Document | None) -> None:
        if document is not self.document:
            self._identifying = {}
            with QtCore.QSignalBlocker(self.reveal):
                self.reveal.setChecked(False)
        self.document = document
        self._fill()

    def set_identifying(self, path: str, tags: dict[str, str]) -> None:
        document = self.document
        if document is not None and str(document.image.meta.source_path) == path and self.reveal.isChecked():
            self._identifying = tags or {"(none)": "this file holds no identifying tags"}
            self._fill()

    def rows(self) -> list[tuple[str, str]]:
        document = self.document
        if document is None:
            return []
        meta = document.image.meta
        rows = [("File", document.name), ("Format", meta.format),
                ("Size", f"{document.image.shape[1]} x {document.image.shape[0]} ({document.image.dtype})"),
                ("Bits stored", str(meta.bits_stored)), ("Photometric", meta.photometric_interpretation),
                ("Laterality", meta.laterality or "unknown"), ("View", meta.view or "unknown"),
                ("Pixel spacing", f"{meta.pixel_spacing_mm[0]:.4f} x {meta.pixel_spacing_mm[1]:.4f} mm"
                 if meta.pixel_spacing_mm else "unknown"),
                ("Windows", ", ".join(p.label for p in meta.window_presets) or "none (automatic)")]
        rows += [("Warning", w) for w in meta.warnings]
        rows += sorted(meta.tags.items())
        rows += [(f"[identifying] {k}", v) for k, v in sorted(self._identifying.items())]
        return rows

    def _fill(self) -> None:
        rows = self.rows()
        self.table.setRowCount(len(rows))
        for index, (name, value) in enumerate(rows):
            self.table.setItem(index, 0, QtWidgets.QTableWidgetItem(name))
            self.table.setItem(index, 1, QtWidgets.QTableWidgetItem(value))
        self.table.resizeColumnToContents(0)
        self.table.setColumnWidth(0, min(self.table.columnWidth(0), 160))
        self.reveal.setEnabled(self.document is not None and self.document.image.meta.format.startswith("DICOM"))

    def _on_reveal(self, checked: bool) -> None:
        document = self.document
        if checked and document is not None and document.image.meta.source_path is not None:
            self.reveal_requested.emit(str(document.image.meta.source_path))
        else:
            self._identifying = {}
            self._fill()
