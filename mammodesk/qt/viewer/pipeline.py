"""The live-preprocessing panel: edits the `PipelineEditor` (add, remove,
reorder, toggle steps; a slider and a field per numeric parameter, generated
from the ops' `Param` declarations), picks what the canvas shows, and loads
or saves specs, including the one embedded in a model file."""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtWidgets

from mammodesk.preprocessing import Param
from mammodesk.qt.compact import compact_combo
from mammodesk.state.pipeline_editor import PipelineEditor
from mammodesk.state.viewer import SHOW_MODES, ViewerState

SLIDER_STEPS = 1000
SHOW_LABELS = {"original": "Original", "processed": "Processed", "side_by_side": "Side by side"}


class PipelinePanel(QtWidgets.QWidget):
    stop_requested = QtCore.Signal()
    load_requested = QtCore.Signal()
    save_requested = QtCore.Signal()
    model_requested = QtCore.Signal()

    def __init__(self, state: ViewerState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.editor: PipelineEditor = state.pipeline
        self.show_mode = compact_combo()
        for mode in SHOW_MODES:
            self.show_mode.addItem(SHOW_LABELS[mode], mode)
        self.show_mode.currentIndexChanged.connect(lambda i: state.set_show(self.show_mode.itemData(i)))
        self.source = QtWidgets.QLabel()
        self.steps = QtWidgets.QListWidget()
        self.steps.currentRowChanged.connect(self._on_row_changed)
        self.steps.itemChanged.connect(self._on_item_changed)
        add_menu = QtWidgets.QMenu(self)
        for name, (doc, _) in PipelineEditor.catalog().items():
            action = add_menu.addAction(name)
            action.setToolTip(doc)
            action.triggered.connect(lambda _=False, n=name: self._add(n))
        self.add_button = _tool("Add", "Add a step after the selected one")
        self.add_button.setMenu(add_menu)
        self.add_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.add_button)
        for text, tip, slot in (("Remove", "Remove the selected step", self._remove),
                                ("Up", "Move the selected step earlier", lambda: self._move(-1)),
                                ("Down", "Move the selected step later", lambda: self._move(+1))):
            button = _tool(text, tip)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        files = QtWidgets.QHBoxLayout()
        for text, tip, signal in (("Load...", "Load a spec (JSON)", self.load_requested),
                                  ("Save...", "Save this spec as JSON", self.save_requested),
                                  ("From model...", "Load the spec embedded in an ONNX model", self.model_requested),
                                  ("Stop", "Stop the running computation (Esc)", self.stop_requested)):
            button = _tool(text, tip)
            button.clicked.connect(signal.emit)
            files.addWidget(button)
        self.params_box = QtWidgets.QGroupBox("Parameters")
        self.params_form = QtWidgets.QFormLayout(self.params_box)
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.error = QtWidgets.QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e06060;")
        layout = QtWidgets.QVBoxLayout(self)
        show_row = QtWidgets.QHBoxLayout()
        show_row.addWidget(QtWidgets.QLabel("Show"))
        show_row.addWidget(self.show_mode, 1)
        layout.addLayout(show_row)
        layout.addWidget(self.source)
        layout.addWidget(self.steps, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.params_box, 2)
        layout.addLayout(files)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        self.param_widgets: dict[str, QtWidgets.QWidget] = {}
        self._editing_param = False  # a form edit must not rebuild the form under the user's mouse
        self.editor.changed.connect(lambda _: self._refresh())
        self.editor.error.connect(self.error.setText)
        state.show_changed.connect(self._on_show_changed)
        self._refresh()

    # --- list of steps ------------------------------------------------------------
    def _refresh(self) -> None:
        self.error.clear()
        if self._editing_param:
            return
        row = self.steps.currentRow()
        with QtCore.QSignalBlocker(self.steps):
            self.steps.clear()
            for step in self.editor.steps:
                item = QtWidgets.QListWidgetItem(step.op)
                item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(QtCore.Qt.CheckState.Checked if step.enabled else QtCore.Qt.CheckState.Unchecked)
                self.steps.addItem(item)
            if self.steps.count():
                self.steps.setCurrentRow(min(max(row, 0), self.steps.count() - 1))
        self.source.setText(f"Spec: {self.editor.source} ({len(self.editor.steps)} step(s))")
        self._build_form(self.steps.currentRow())

    def _on_row_changed(self, row: int) -> None:
        self._build_form(row)

    def _on_item_changed(self, item: QtWidgets.QListWidgetItem) -> None:
        row = self.steps.row(item)
        enabled = item.checkState() == QtCore.Qt.CheckState.Checked
        if 0 <= row < len(self.editor.steps) and enabled != self.editor.steps[row].enabled:
            self.editor.set_enabled(row, enabled)

    def _on_show_changed(self, mode: str) -> None:
        with QtCore.QSignalBlocker(self.show_mode):
            self.show_mode.setCurrentIndex(SHOW_MODES.index(mode))

    def _add(self, op: str) -> None:
        row = self.steps.currentRow()
        index = row + 1 if row >= 0 else None
        if self.editor.add(op, index):
            self.steps.setCurrentRow(len(self.editor.steps) - 1 if index is None else index)
        if self.state.show == "original":
            self.state.set_show("side_by_side" if self.state.layout == "single" else "processed")

    def _remove(self) -> None:
        row = self.steps.currentRow()
        if row >= 0:
            self.editor.remove(row)

    def _move(self, offset: int) -> None:
        row = self.steps.currentRow()
        if row >= 0 and self.editor.move(row, row + offset):
            self.steps.setCurrentRow(row + offset)

    # --- parameter form ---------------------------------------------------------------
    def _build_form(self, row: int) -> None:
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self.param_widgets.clear()
        if not 0 <= row < len(self.editor.steps):
            self.params_box.setTitle("Parameters")
            return
        step = self.editor.steps[row]
        doc, params = PipelineEditor.catalog()[step.op]
        self.params_box.setTitle(step.op)
        self.params_box.setToolTip(doc)
        values = self.editor.values(row)
        for param in params:
            widget = _param_widget(param, values[param.name], lambda v, n=param.name: self._set(row, n, v))
            widget.setToolTip(param.doc)
            self.param_widgets[param.name] = widget
            self.params_form.addRow(param.name, widget)

    def _set(self, row: int, name: str, value: Any) -> None:
        if row < len(self.editor.steps) and self.editor.values(row).get(name) != value:
            self._editing_param = True
            try:
                self.editor.set_param(row, name, value)
            finally:
                self._editing_param = False


def _tool(text: str, tip: str) -> QtWidgets.QToolButton:
    button = QtWidgets.QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    return button


def _param_widget(param: Param, value: Any, commit) -> QtWidgets.QWidget:
    if param.kind is bool:
        box = QtWidgets.QCheckBox()
        box.setChecked(bool(value))
        box.toggled.connect(commit)
        return box
    if param.choices is not None:
        combo = compact_combo()
        for choice in param.choices:
            combo.addItem(str(choice), choice)
        combo.setCurrentIndex(list(param.choices).index(value) if value in param.choices else 0)
        combo.currentIndexChanged.connect(lambda i: commit(combo.itemData(i)))
        return combo
    if param.kind in (int, float) and param.minimum is not None and param.maximum is not None:
        return NumberSlider(param, value, commit)
    field = QtWidgets.QLineEdit("" if value is None else _text(value))
    field.setPlaceholderText("automatic" if param.optional else "")
    field.editingFinished.connect(lambda: commit(_parse(param, field.text())))
    return field


class NumberSlider(QtWidgets.QWidget):
    """A slider and a spin box bound to one numeric parameter. Dragging edits
    live (each step supersedes the previous computation); odd-only sizes
    skip even values."""

    def __init__(self, param: Param, value: Any, commit) -> None:
        super().__init__()
        self.param, self._commit = param, commit
        lo, hi = float(param.minimum), float(param.maximum)  # type: ignore[arg-type]
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        if param.kind is int:
            self.spin: QtWidgets.QAbstractSpinBox = QtWidgets.QSpinBox()
            self.spin.setRange(int(lo), int(min(hi, 2**31 - 1)))
            self.spin.setSingleStep(2 if param.odd else 1)
            self.slider.setRange(int(lo), int(min(hi, lo + 4096)))
            self.slider.setSingleStep(2 if param.odd else 1)
        else:
            self.spin = QtWidgets.QDoubleSpinBox()
            self.spin.setDecimals(4)
            self.spin.setRange(lo, hi)
            self.spin.setSingleStep((hi - lo) / 100)
            self.slider.setRange(0, SLIDER_STEPS)
        self._set_widgets(value)
        self.slider.valueChanged.connect(self._on_slider)
        self.spin.valueChanged.connect(self._on_spin)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 2)
        layout.addWidget(self.spin, 1)

    def _to_slider(self, value: float) -> int:
        if self.param.kind is int:
            return int(value)
        lo, hi = float(self.param.minimum), float(self.param.maximum)  # type: ignore[arg-type]
        return int(round((value - lo) / (hi - lo) * SLIDER_STEPS))

    def _from_slider(self, position: int) -> float | int:
        if self.param.kind is int:
            return position + 1 if self.param.odd and position % 2 == 0 else position
        lo, hi = float(self.param.minimum), float(self.param.maximum)  # type: ignore[arg-type]
        return lo + (hi - lo) * position / SLIDER_STEPS

    def _set_widgets(self, value: Any) -> None:
        with QtCore.QSignalBlocker(self.slider), QtCore.QSignalBlocker(self.spin):
            self.slider.setValue(self._to_slider(value))
            self.spin.setValue(value)

    def _on_slider(self, position: int) -> None:
        value = self._from_slider(position)
        self._set_widgets(value)
        self._commit(value)

    def _on_spin(self, value: float) -> None:
        if self.param.kind is int and self.param.odd and int(value) % 2 == 0:
            value = int(value) + 1
        self._set_widgets(value)
        self._commit(int(value) if self.param.kind is int else value)


def _text(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def _parse(param: Param, text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        if param.kind is tuple:
            return [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
        if param.kind is int:
            return int(text)
        if param.kind is float:
            return float(text)
    except ValueError:
        return text  # the op's own check names the problem
    return text
