"""The labelling panel: tools, the labels of the active image, its findings
list (synced with the canvas selection), the selected finding's editor, and
the save status. Every edit goes through `LabellingState`, so undo covers it."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.annotations.geometry import area
from mammodesk.annotations.model import Finding, Pathology
from mammodesk.annotations.taxonomy import BIRADS, DENSITY, finding_type
from mammodesk.qt.compact import compact_combo
from mammodesk.qt.labelling.roi_layer import COLOURS
from mammodesk.state.labelling import LabellingState

NONE = "—"
PATHOLOGIES = [p.value for p in Pathology]


class LabelsPanel(QtWidgets.QWidget):
    def __init__(self, labelling: LabellingState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.labelling = labelling
        self.key: int | None = None
        self.spacing_mm: float | None = None
        self._updating = False
        layout = QtWidgets.QVBoxLayout(self)
        self.tools = QtWidgets.QGridLayout()
        self.tools.setSpacing(2)
        layout.addLayout(self.tools)
        defaults = QtWidgets.QFormLayout()
        defaults.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)  # narrow docks: field below
        self.next_type = compact_combo()
        self.next_pathology = compact_combo(PATHOLOGIES)
        pair = QtWidgets.QHBoxLayout()
        pair.addWidget(self.next_type, 3)
        pair.addWidget(self.next_pathology, 2)
        defaults.addRow("New ROIs", pair)
        layout.addLayout(defaults)

        image_box = QtWidgets.QGroupBox("Image")
        image_form = QtWidgets.QFormLayout(image_box)
        image_form.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)
        self.density = compact_combo([NONE, *DENSITY])
        self.image_birads = compact_combo([NONE, *map(str, BIRADS)])
        self.image_note = QtWidgets.QLineEdit()
        self.image_note.setPlaceholderText("note on the whole image")
        image_form.addRow("Breast density", self.density)
        image_form.addRow("BI-RADS", self.image_birads)
        image_form.addRow("Note", self.image_note)
        layout.addWidget(image_box)

        self.table = QtWidgets.QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["#", "Finding", "Pathology", "BR", "Shape, size"])
        self.table.horizontalHeaderItem(3).setToolTip("BI-RADS assessment")
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        for column in range(4):  # the short columns as wide as their text; shape and size takes the rest, elided
            header.setSectionResizeMode(column, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(20)
        self.table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setWordWrap(True)
        rows = self.table.fontMetrics().height() + 10
        self.table.setMinimumHeight(3 * rows + 28)  # a few findings in sight; the list scrolls, the panel need not
        self.table.setMaximumHeight(7 * rows + 28)
        self.table.setMinimumWidth(120)

        self.editor = QtWidgets.QGroupBox("Selected finding")
        self.form = QtWidgets.QFormLayout(self.editor)
        self.form.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)
        self.type_combo = compact_combo()
        self.pathology = compact_combo(PATHOLOGIES)
        self.birads = compact_combo([NONE, *map(str, BIRADS)])
        self.note = QtWidgets.QLineEdit()
        self.stamps = QtWidgets.QLabel()
        self.stamps.setStyleSheet("color: #888;")
        self.stamps.setWordWrap(True)
        self.form.addRow("Finding", self.type_combo)
        self.form.addRow("Pathology", self.pathology)
        self.form.addRow("BI-RADS", self.birads)
        self.attribute_combos: dict[str, QtWidgets.QComboBox] = {}
        self.form.addRow("Note", self.note)
        self.form.addRow(self.stamps)
        # where the labels are saved, and Undo/Redo/Delete, above the list: in sight at 1366x768
        self.buttons = QtWidgets.QHBoxLayout()
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        layout.addWidget(self.status)
        layout.addLayout(self.buttons)
        layout.addWidget(self.table)
        layout.addWidget(self.editor)
        layout.addStretch(1)
        self._build_taxonomy()
        self._connect()
        self.refresh()

    def add_tool_actions(self, actions: list[QtGui.QAction], row: QtWidgets.QHBoxLayout | None = None,
                         columns: int = 3) -> None:
        """Buttons for actions: in the tool grid, or in `row`."""
        for index, action in enumerate(actions):
            button = QtWidgets.QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            if row is None:
                self.tools.addWidget(button, index // columns, index % columns)
            else:
                row.addWidget(button)

    # --- wiring ----------------------------------------------------------------------------------
    def _connect(self) -> None:
        state = self.labelling
        state.changed.connect(lambda key: key == self.key and self.refresh())
        state.selection_changed.connect(lambda key, _uid: key == self.key and self.refresh())
        state.save_status_changed.connect(lambda key: key == self.key and self._show_status())
        state.tool_changed.connect(lambda _tool: self._show_defaults())
        state.taxonomy_changed.connect(lambda _t: (self._build_taxonomy(), self.refresh()))
        self.table.itemSelectionChanged.connect(self._on_table_selection)
        self.next_type.activated.connect(lambda _i: setattr(state, "next_type", self.next_type.currentText()))
        self.next_pathology.activated.connect(
            lambda _i: setattr(state, "next_pathology", Pathology(self.next_pathology.currentText())))
        self.density.activated.connect(lambda _i: self._set_image(density=_value(self.density)))
        self.image_birads.activated.connect(lambda _i: self._set_image(birads=_int(self.image_birads)))
        self.image_note.editingFinished.connect(lambda: self._set_image(note=self.image_note.text()))
        self.type_combo.activated.connect(lambda _i: self._edit(type=self.type_combo.currentText()))
        self.pathology.activated.connect(lambda _i: self._edit(pathology=Pathology(self.pathology.currentText())))
        self.birads.activated.connect(lambda _i: self._edit(birads=_int(self.birads)))
        self.note.editingFinished.connect(lambda: self._edit(note=self.note.text()))

    def _build_taxonomy(self) -> None:
        taxonomy = self.labelling.taxonomy
        for combo in (self.next_type, self.type_combo):
            combo.clear()
            combo.addItems(list(taxonomy.finding_types))
        for name, combo in self.attribute_combos.items():
            self.form.removeRow(combo)
        self.attribute_combos = {}
        for index, (name, values) in enumerate(taxonomy.attributes.items()):
            combo = compact_combo()
            combo.setEditable(True)  # a value outside the list is kept (imports carry their own words)
            combo.addItems(["", *values])
            combo.textActivated.connect(lambda text, n=name: self._edit(attributes={n: text or None}))
            self.form.insertRow(3 + index, name.capitalize(), combo)
            self.attribute_combos[name] = combo
        self._show_defaults()

    def set_key(self, key: int | None, spacing_mm: float | None = None) -> None:
        self.key, self.spacing_mm = key, spacing_mm
        self.refresh()

    # --- state -> widgets -------------------------------------------------------------------------
    def refresh(self) -> None:
        self._updating = True
        try:
            sheet = self.labelling.sheet(self.key) if self.key is not None else None
            self.setEnabled(sheet is not None)
            findings = sheet.labels.findings if sheet is not None else ()
            self.table.setRowCount(len(findings))
            for row, finding in enumerate(findings):
                for column, text in enumerate(self._row(row + 1, finding)):
                    item = QtWidgets.QTableWidgetItem(text)
                    if column == 1:
                        item.setForeground(QtGui.QColor(COLOURS.get(finding.kind, "#e8e8e8")))
                    self.table.setItem(row, column, item)
            self.table.resizeRowsToContents()  # the columns size themselves; a long shape wraps in its row
            selected = sheet.selected if sheet is not None else None
            uids = [f.uid for f in findings]
            self.table.clearSelection()
            if selected in uids:
                self.table.selectRow(uids.index(selected))
            labels = sheet.labels if sheet is not None else None
            _set_combo(self.density, (labels.density if labels else None) or NONE)
            _set_combo(self.image_birads, NONE if labels is None or labels.birads is None else str(labels.birads))
            if not self.image_note.hasFocus():
                self.image_note.setText(labels.note if labels else "")
            self._show_finding(sheet.finding(selected) if selected in uids else None)
        finally:
            self._updating = False
        self._show_status()

    def _row(self, index: int, finding: Finding) -> list[str]:
        shape = finding.shape
        size = ""
        if shape is not None and shape.bbox() is not None:
            x0, y0, x1, y1 = shape.bbox()
            if self.spacing_mm:
                size = f"{(x1 - x0) * self.spacing_mm:.1f}x{(y1 - y0) * self.spacing_mm:.1f} mm"
            else:
                size = f"{x1 - x0:.0f}x{y1 - y0:.0f} px, {area(shape):.0f} px²"
        kind = type(shape).__name__.lower() if shape is not None else "no location"
        return [str(index), finding_type(finding.kind, finding.attributes).replace("_", " "),
                finding.pathology.value, "" if finding.birads is None else str(finding.birads),
                f"{kind} {size}".strip()]

    def _show_finding(self, finding: Finding | None) -> None:
        self.editor.setEnabled(finding is not None)
        if finding is None:  # blank, never another image's finding greyed out
            for combo in (self.type_combo, self.pathology, self.birads, *self.attribute_combos.values()):
                with QtCore.QSignalBlocker(combo):
                    combo.setCurrentIndex(-1)
                    if combo.isEditable():
                        combo.setEditText("")
            with QtCore.QSignalBlocker(self.note):
                self.note.setText("")
            self.stamps.setText("Select an ROI on the image or in the list")
            return
        name = finding_type(finding.kind, finding.attributes)
        _set_combo(self.type_combo, name)
        _set_combo(self.pathology, finding.pathology.value)
        _set_combo(self.birads, NONE if finding.birads is None else str(finding.birads))
        applicable = set(self.labelling.taxonomy.attributes_for(name))
        for attribute, combo in self.attribute_combos.items():
            show = attribute in applicable or attribute in finding.attributes
            self.form.setRowVisible(combo, show)
            combo.setEditText(finding.attributes.get(attribute, ""))
        if not self.note.hasFocus():
            self.note.setText(finding.note)
        source = f"; from {finding.source}" if finding.source else ""
        modified = f"; modified {finding.modified} by {finding.modified_by}" if finding.modified_by else ""
        self.stamps.setText(f"Created {finding.created or '?'} by {finding.author or '?'}{modified}{source}")

    def _show_defaults(self) -> None:
        _set_combo(self.next_type, self.labelling.next_type)
        _set_combo(self.next_pathology, self.labelling.next_pathology.value)

    def _show_status(self) -> None:
        sheet = self.labelling.sheet(self.key) if self.key is not None else None
        if sheet is None:
            self.status.setText("Open an image to label it")
            self.status.setStyleSheet("")
            return
        lines = [f"<span style='color:#e06060'>Not saved: {sheet.save_error}</span>"] if sheet.save_error else []
        lines += [f"<span style='color:#e0a040'>{problem}</span>" for problem in sheet.problems]
        if not sheet.save_error:
            if sheet.revision == 0 and sheet.saved_revision == 0 and not sheet.labels.findings:
                lines.append(f"No labels yet: the first one will be saved to {sheet.sidecar.name}")
            else:
                state = "saved" if sheet.saved else "saving..."
                lines.append(f"{len(sheet.labels.findings)} finding(s), {state} to {sheet.sidecar.name}")
        self.status.setText("<br>".join(lines))
        self.status.setToolTip(str(sheet.sidecar))

    # --- widgets -> state ----------------------------------------------------------------------------
    def _on_table_selection(self) -> None:
        if self._updating or self.key is None:
            return
        rows = {index.row() for index in self.table.selectedIndexes()}
        sheet = self.labelling.sheet(self.key)
        if sheet is not None and rows:
            self.labelling.select(self.key, sheet.labels.findings[min(rows)].uid)

    def _edit(self, **changes) -> None:
        sheet = self.labelling.sheet(self.key) if self.key is not None else None
        if self._updating or sheet is None or sheet.selected is None:
            return
        self.labelling.update_finding(self.key, sheet.selected, "Relabel", **changes)

    def _set_image(self, **changes) -> None:
        if not self._updating and self.key is not None and self.key in self.labelling.sheets:
            self.labelling.set_image(self.key, **changes)


def _set_combo(combo: QtWidgets.QComboBox, text: str) -> None:
    with QtCore.QSignalBlocker(combo):
        index = combo.findText(text)
        if index < 0:  # an imported value outside the taxonomy: show it, do not lose it
            combo.addItem(text)
            index = combo.count() - 1
        combo.setCurrentIndex(index)


def _value(combo: QtWidgets.QComboBox) -> str | None:
    text = combo.currentText()
    return None if text == NONE else text


def _int(combo: QtWidgets.QComboBox) -> int | None:
    text = _value(combo)
    return None if text is None else int(text)
