"""The model panel: the models and their cards, what runs where (CPU or CUDA,
as onnxruntime really reports it), run controls, the findings the models
returned, their class probabilities, and the heat-map overlay controls."""

from __future__ import annotations


import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.inference import ModelEntry
from mammodesk.inference.device import probe_device
from mammodesk.qt.compact import compact_combo
from mammodesk.inference.library import family_catalogue
from mammodesk.qt.opinion.answer import (ProbabilityBars, evaluation_headline, legend_caption, model_card_markdown,
                                        model_purpose, short_figures)
from mammodesk.qt.opinion.overlay import ColourLegend
from mammodesk.qt.workers import WorkerPools, emit_from_worker
from mammodesk.state.opinion import COLOUR_MAPS, Opinion, OpinionState

TARGETS = (("auto", "Auto", "the ROIs placed, else a scan of the breast"),
           ("whole", "Whole image", "the whole image as one ROI"),
           ("last_roi", "Last ROI", "the ROI placed last"), ("rois", "Every ROI", "every ROI placed"),
           ("scan", "Scan breast", "windows over the whole breast, the most suspicious one answering"))


class ModelPanel(QtWidgets.QWidget):
    run_requested = QtCore.Signal(object, str, bool)  # ModelEntry | None (= all), target mode, all images
    stop_requested = QtCore.Signal()
    add_folder_requested = QtCore.Signal()
    device_found = QtCore.Signal(str)

    def __init__(self, state: OpinionState, workers: WorkerPools, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = QtWidgets.QVBoxLayout(self)
        self.models = QtWidgets.QListWidget()
        self.models.setWordWrap(True)  # whole model names, on two lines if need be
        self.models.setTextElideMode(QtCore.Qt.TextElideMode.ElideNone)
        self.card = QtWidgets.QTextBrowser()  # in its own window: in the panel it pushed the answer's
        self.card.setOpenLinks(False)         # controls below the fold at 1366x768
        self.card_dialog = QtWidgets.QDialog(self)
        self.card_dialog.setWindowTitle("Model card")
        self.card_dialog.resize(620, 640)
        QtWidgets.QVBoxLayout(self.card_dialog).addWidget(self.card)
        self.card_button = QtWidgets.QPushButton("Model card...")
        self.card_button.setToolTip("What the selected model was trained on, how it was evaluated, and against "
                                    "which baseline")
        self.card_button.clicked.connect(self.card_dialog.show)
        self.device = QtWidgets.QLabel("Runs on: checking for a GPU...")
        self.device.setWordWrap(True)
        self.device_found.connect(lambda text: self.device.setText(f"Runs on: {text}"))
        workers.submit("device", self._report_device)  # a real session, off the UI thread
        self.headline = QtWidgets.QLabel()
        self.headline.setWordWrap(True)
        self.findings = QtWidgets.QTreeWidget()
        self.findings.setHeaderLabels(["answer"])  # one wrapped column: readable however narrow the panel
        self.findings.setHeaderHidden(True)
        self.findings.setWordWrap(True)
        self.findings.setRootIsDecorated(False)
        self.findings.setTextElideMode(QtCore.Qt.TextElideMode.ElideNone)
        self.accept_button = QtWidgets.QPushButton("Accept as annotation")
        self.accept_button.setToolTip("Keep the selected answer as a finding of its image (linked to the model "
                                      "name and weights hash)")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.exam = QtWidgets.QLabel()  # the exam-level answer (image readers): per breast, above the views
        self.exam.setWordWrap(True)
        self.exam.setStyleSheet("font-weight: bold; font-size: 115%;")
        self.exam.setToolTip("The whole-mammogram reader's answer for the exam and each breast, each on its own "
                             "level's scale; the views' answers follow below")
        self.exam.hide()
        self.about = QtWidgets.QLabel()  # which view and file the answer below belongs to
        self.about.setWordWrap(True)
        self.about.setStyleSheet("font-weight: bold;")
        self.bars = ProbabilityBars()
        self.reconstruction = QtWidgets.QLabel()
        self.reconstruction.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.reconstruction.setToolTip("VAE models: the model input (left) and the VAE's reconstruction (right)")
        self.reconstruction.hide()
        # What a reader acts on comes first and fits 1366x768 unscrolled: the model, run, the answer with its
        # domain verdict, the answers list and Accept; then the heat-map controls; the card on request.
        layout.addWidget(self.exam)  # the answer to the reader's question first, never scrolled away
        layout.addWidget(self.models)
        layout.addWidget(self.headline)
        layout.addLayout(self._run_controls())
        layout.addLayout(self._roi_controls())
        layout.addWidget(self.progress)
        layout.addWidget(self.about)
        layout.addWidget(self.bars)
        layout.addWidget(self.findings)
        layout.addWidget(self.accept_button)
        layout.addWidget(self._overlay_controls())
        layout.addWidget(self.reconstruction)
        layout.addWidget(self.device)
        self.models.currentRowChanged.connect(self._on_model_changed)
        self.findings.currentItemChanged.connect(self._on_finding_selected)
        self.accept_button.clicked.connect(self._on_accept)
        state.models_changed.connect(self.refresh_models)
        state.opinions_changed.connect(self.refresh_findings)
        state.opinions_changed.connect(self._show_bars)  # another view's answer changes how its exam reads this one
        state.selected_changed.connect(self._on_selected)
        state.active_changed.connect(lambda _document: self.show_about(self.state.selected))
        state.overlay_changed.connect(self._sync_overlay_controls)
        self.refresh_models()

    def _report_device(self) -> None:
        emit_from_worker(self.device_found, probe_device())

    # --- construction -----------------------------------------------------------------------
    def _run_controls(self) -> QtWidgets.QLayout:
        grid = QtWidgets.QGridLayout()
        self.target = compact_combo()
        for index, (key, text, meaning) in enumerate(TARGETS):  # short names: the panel is narrow
            self.target.addItem(text, key)
            self.target.setItemData(index, f"{text}: {meaning}", QtCore.Qt.ItemDataRole.ToolTipRole)
        self.target.setToolTip("What a run analyses: " + "; ".join(f"{t}: {m}" for _, t, m in TARGETS))
        self.run_button = QtWidgets.QPushButton("Run (Ctrl+R)")
        self.run_button.setToolTip("Run the selected model on the active image")
        self.run_all_button = QtWidgets.QPushButton("Run all models")
        self.run_all_button.setToolTip("Every usable model on every image shown; ROI models answer only the ROIs "
                                       "placed (a breast scan by an ROI model: select it and Run)")
        self.stop_button = QtWidgets.QPushButton("Stop")
        add = QtWidgets.QPushButton("Add models...")
        add.setToolTip("Add a folder of exported .onnx models")
        grid.addWidget(QtWidgets.QLabel("Region"), 0, 0)
        grid.addWidget(self.target, 0, 1)
        grid.addWidget(self.run_button, 1, 0)
        grid.addWidget(self.run_all_button, 1, 1)
        grid.addWidget(self.stop_button, 2, 0)
        grid.addWidget(add, 2, 1)
        grid.addWidget(self.card_button, 3, 0, 1, 2)
        self.run_button.clicked.connect(lambda: self.run_requested.emit(self.current_entry(), self.target_mode(),
                                                                        False))
        self.run_all_button.clicked.connect(lambda: self.run_requested.emit(None, self.target_mode(), True))
        self.stop_button.clicked.connect(self.stop_requested)
        add.clicked.connect(self.add_folder_requested)
        return grid

    def _roi_controls(self) -> QtWidgets.QLayout:
        grid = QtWidgets.QGridLayout()
        self.place_roi = QtWidgets.QPushButton("Place ROI")
        self.place_roi.setCheckable(True)
        self.place_roi.setToolTip("Then each click on the image places an ROI of the selected model's size")
        self.clear_rois = QtWidgets.QPushButton("Clear ROIs")
        self.assume_spacing = QtWidgets.QCheckBox("No spacing: assume")
        self.assume_spacing.setToolTip("Scanned film without a spacing tag (CBIS-DDSM: 0.05 mm); ROI models "
                                       "need it to cut ROIs of the physical size they were trained on")
        self.spacing = QtWidgets.QDoubleSpinBox()
        self.spacing.setRange(0.01, 1.0)
        self.spacing.setDecimals(3)
        self.spacing.setSingleStep(0.005)
        self.spacing.setValue(0.05)
        self.spacing.setSuffix(" mm")
        grid.addWidget(self.place_roi, 0, 0)
        grid.addWidget(self.clear_rois, 0, 1)
        grid.addWidget(self.assume_spacing, 1, 0)
        grid.addWidget(self.spacing, 1, 1)
        self.assume_spacing.toggled.connect(self._on_spacing)
        self.spacing.valueChanged.connect(self._on_spacing)
        return grid

    def _overlay_controls(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Heat map")
        form = QtWidgets.QFormLayout(box)
        self.overlay_visible = QtWidgets.QCheckBox("Show (H)")
        self.map_combo, self.class_combo, self.colour_combo = (compact_combo() for _ in range(3))
        self.colour_combo.addItems(list(COLOUR_MAPS))
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.threshold = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        for slider in (self.opacity, self.threshold):
            slider.setRange(0, 100)
        form.addRow(self.overlay_visible)
        form.addRow("Map", self.map_combo)
        form.addRow("Class", self.class_combo)
        form.addRow("Colours", self.colour_combo)
        form.addRow("Opacity", self.opacity)
        form.addRow("Threshold", self.threshold)
        self.legend = ColourLegend()
        self.legend_caption = QtWidgets.QLabel()
        self.legend_caption.setWordWrap(True)
        self.legend_caption.setStyleSheet("color: #a0a0a0;")
        form.addRow("Scale", self.legend)
        form.addRow(self.legend_caption)
        s = self.state
        self.overlay_visible.toggled.connect(lambda on: s.set_overlay(visible=on))
        self.opacity.valueChanged.connect(lambda v: s.set_overlay(opacity=v / 100))
        self.threshold.valueChanged.connect(lambda v: s.set_overlay(threshold=v / 100))
        self.colour_combo.currentTextChanged.connect(lambda name: name and s.set_overlay(colour_map=name))
        self.map_combo.currentTextChanged.connect(lambda name: name and s.set_overlay(map_name=name))
        self.class_combo.currentIndexChanged.connect(
            lambda i: i >= 0 and s.set_overlay(class_index=self.class_combo.itemData(i)))
        self._sync_overlay_controls()
        return box

    # --- reading the controls ---------------------------------------------------------------------
    def current_entry(self) -> ModelEntry | None:
        row = self.models.currentRow()
        models = self.state.models
        return models[row] if 0 <= row < len(models) else None

    def target_mode(self) -> str:
        return str(self.target.currentData())

    def default_model(self) -> str | None:
        """The whole-mammogram reader: Run and Ctrl+R ask it first, as `predict` does without --model."""
        try:
            return self.state.library.default_reader().name
        except KeyError:
            return None

    def select_model(self, name: str) -> None:
        for row, entry in enumerate(self.state.models):
            if entry.name == name:
                self.models.setCurrentRow(row)

    # --- state -> widgets ---------------------------------------------------------------------
    def refresh_models(self) -> None:
        current = self.current_entry()
        catalogue = {(info.family, info.task): info for info in family_catalogue()}
        with QtCore.QSignalBlocker(self.models):
            self.models.clear()
            for entry in self.state.models:
                if entry.card is None:
                    item = QtWidgets.QListWidgetItem(f"{entry.path.name}  (unusable)")
                    item.setForeground(QtGui.QColor("#c05050"))
                    item.setToolTip(entry.error or "")
                else:
                    checking = "" if entry.verified else "  (checking its weights...)"
                    figures = short_figures(entry)
                    item = QtWidgets.QListWidgetItem(f"{model_purpose(entry, catalogue)}\n{entry.name}"
                                                     f"{'  ·  ' + figures if figures else ''}{checking}")
                    info = catalogue.get((entry.card.family, entry.card.task))
                    item.setToolTip(f"{info.detail if info else entry.card.family + ' family'}\n\n"
                                    f"{entry.card.description}")
                self.models.addItem(item)
            present = {(e.card.family, e.card.task) for e in self.state.models if e.card is not None}
            for key, info in catalogue.items():  # every family is listed: without a model, with the reason why
                if key not in present:
                    item = QtWidgets.QListWidgetItem(f"{info.purpose}\n{info.family}: "
                                                     f"{info.not_bundled or 'no model in the model folders'}")
                    item.setToolTip(f"{info.detail}\n\n{info.why}".strip())
                    item.setFlags(QtCore.Qt.ItemFlag.NoItemFlags)  # shown, never selected or run
                    self.models.addItem(item)
        self._fit_model_list()
        names = [e.name for e in self.state.models]
        row = names.index(current.name) if current is not None and current.name in names else \
            names.index(self.default_model()) if self.default_model() in names else 0
        self.models.setCurrentRow(row if names else -1)
        self._on_model_changed(self.models.currentRow())

    def _fit_model_list(self) -> None:
        """As tall as its rows (up to six): one bundled model should not take a third of the panel."""
        rows = sum(self.models.sizeHintForRow(i) for i in range(min(self.models.count(), 6)))
        self.models.setFixedHeight(max(rows, self.models.fontMetrics().height() * 2) + 2 * self.models.frameWidth() + 4)

    def refresh_findings(self) -> None:
        with QtCore.QSignalBlocker(self.findings):
            self.findings.clear()
            for opinion in self.state.opinions:
                answer = ("✓ " if opinion.accepted else "") + self.state.summary(opinion)
                # the view first: however narrow the panel, a row never hides which image it is about
                lines = [opinion.view_name, *answer.split("; "), f"{opinion.model_name} · {opinion.target.describe()}"]
                item = QtWidgets.QTreeWidgetItem(["\n".join(lines)])
                item.setToolTip(0, item.text(0))
                item.setData(0, QtCore.Qt.ItemDataRole.UserRole, opinion.id)
                if opinion.error:
                    item.setForeground(0, QtGui.QColor("#d06060"))
                    item.setToolTip(0, opinion.error)
                self.findings.addTopLevelItem(item)
                if opinion is self.state.selected:
                    self.findings.setCurrentItem(item)
        self._fit_findings()

    def _fit_findings(self) -> None:
        """As tall as its rows, up to about two answers (more scroll inside): Accept stays in sight at
        1366x768."""
        rows = [self.findings.sizeHintForIndex(self.findings.model().index(i, 0)).height()
                for i in range(self.findings.topLevelItemCount())]
        shown = sum(rows[:2]) + (rows[2] // 2 if len(rows) > 2 else 0)  # half a third row: "there is more"
        self.findings.setFixedHeight(max(shown, 70) + 2 * self.findings.frameWidth() + 4)


    def set_progress(self, text: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        short = text.split(" on ")[0]  # the model; the whole line is in the tooltip (it never wraps out of the bar)
        self.progress.setFormat(f"{short}: {done}/{total}" if total > 1 else short)
        self.progress.setToolTip(text)

    def set_idle(self, message: str = "idle") -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(message)

    def _on_model_changed(self, row: int) -> None:
        entry = self.current_entry()
        self.card.setMarkdown(model_card_markdown(entry) if entry is not None else "No models found.")
        text, weak = evaluation_headline(entry)
        self.headline.setText(text)
        self.headline.setStyleSheet("color: #e07050; font-weight: bold;" if weak else "")
        usable = entry is not None and entry.card is not None
        self.run_button.setEnabled(usable)
        self.place_roi.setEnabled(usable and not entry.card.reads_whole_image)  # type: ignore[union-attr]

    def _on_finding_selected(self, current: QtWidgets.QTreeWidgetItem | None, _previous=None) -> None:
        if current is None:
            return
        wanted = current.data(0, QtCore.Qt.ItemDataRole.UserRole)
        for opinion in self.state.opinions:
            if opinion.id == wanted:
                self.state.select(opinion)

    def _on_selected(self, opinion: Opinion | None) -> None:
        self.refresh_findings()  # the highlighted row follows a selection made elsewhere (e.g. the demo)
        if opinion is not None:
            self.select_model(opinion.model_name)
        self.show_about(opinion)
        self._show_bars()
        self.accept_button.setEnabled(opinion is not None and opinion.prediction is not None and not opinion.accepted)
        if opinion is not None and opinion.prediction is not None:
            provider = opinion.prediction.provider.replace("ExecutionProvider", "")
            note = "; ".join(opinion.prediction.notes)
            self.device.setText(f"Last run: {opinion.model_name} on {provider}"
                                + (f"\nNote: {note}" if note else ""))
        elif opinion is not None:
            self.device.setText(f"{opinion.model_name} failed: {opinion.error}")
        self._show_reconstruction(opinion)
        self._sync_overlay_controls()

    def _show_bars(self, *_args) -> None:
        opinion = self.state.selected
        self.bars.show_opinion(opinion, self.state.as_read(opinion) if opinion is not None else None)

    def show_exam(self, exam, running: bool = False) -> None:
        """The exam line on top ('Exam: abnormal — R breast, lower · score 8/10'), then one line per breast,
        then what the model was trained for and on whom. Answers still running say so."""
        if exam is None:
            self.exam.hide()
            return
        colour = "#7f8c8d" if running else exam_colour(exam)  # a partial answer never looks final
        head = f'<span style="color:{colour}; font-size: 110%;">{exam.line()}</span>'
        lines = [head + (' <span style="color:#888; font-weight: normal;">(still reading; not final)</span>'
                         if running else "")]
        lines += [f'<span style="color:{exam_colour(b)}; font-weight: normal;">{b.line()}</span>'
                  for b in exam.breasts]
        lines.append(f'<span style="font-weight: normal; font-size: 85%;">{trained_for(exam)}</span>')
        self.exam.setText("<br>".join(lines))
        self.exam.setToolTip("\n".join(exam_details(exam)))
        self.exam.show()

    def show_about(self, opinion: Opinion | None) -> None:
        active = self.state.active
        if opinion is not None:
            self.about.setText(f"{opinion.view_name} — {opinion.target.describe()}")
        elif active is not None:
            self.about.setText(f"{active.anatomy.label} · {active.name}: no answer yet (Run, Ctrl+R)")
        else:
            self.about.setText("")

    def _on_accept(self) -> None:
        opinion = self.state.selected
        if opinion is not None and opinion.prediction is not None and not opinion.accepted:
            self.state.accept(opinion)
            self.accept_button.setEnabled(False)

    def _on_spacing(self, *_args) -> None:
        self.state.assumed_spacing_mm = self.spacing.value() if self.assume_spacing.isChecked() else None

    def _sync_overlay_controls(self, *_args) -> None:
        opinion = self.state.selected
        settings = self.state.overlay_for(opinion)
        widgets = (self.overlay_visible, self.opacity, self.threshold, self.colour_combo, self.map_combo,
                   self.class_combo)
        blockers = [QtCore.QSignalBlocker(w) for w in widgets]
        self.overlay_visible.setChecked(settings.visible)
        self.opacity.setValue(round(settings.opacity * 100))
        self.threshold.setValue(round(settings.threshold * 100))
        self.colour_combo.setCurrentText(settings.colour_map)
        self.map_combo.clear()
        self.class_combo.clear()
        shown = self.state.overlay_map(opinion) if opinion is not None else None
        if opinion is not None and opinion.prediction is not None and shown is not None:
            self.map_combo.addItems(list(opinion.map_names()))
            self.map_combo.setCurrentText(shown[1])
            for index, label in enumerate(opinion.prediction.labels):
                self.class_combo.addItem(label, index)
            self.class_combo.setCurrentIndex(shown[2])
            self.class_combo.setEnabled(shown[1] != "scan")
        caption = legend_caption(shown[1], opinion.prediction.labels[shown[2]]) if shown is not None else \
            "no heat map for the answer shown"
        self.legend.show_scale(settings.colour_map, settings.threshold, caption)
        self.legend_caption.setText(caption)
        del blockers

    def _show_reconstruction(self, opinion: Opinion | None) -> None:
        pair = None if opinion is None else opinion.reconstruction
        if pair is None:
            self.reconstruction.hide()
            return
        row = np.concatenate([pair[0], np.full((pair.shape[1], 4), np.nan, np.float32), pair[1]], axis=1)
        finite = row[np.isfinite(row)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        grey = np.ascontiguousarray((np.clip((np.nan_to_num(row, nan=hi) - lo) / max(hi - lo, 1e-6), 0, 1)
                                     * 255).astype(np.uint8))
        image = QtGui.QImage(grey.data, grey.shape[1], grey.shape[0], grey.strides[0],
                             QtGui.QImage.Format.Format_Grayscale8).copy()
        width = max(160, self.width() - 20)
        self.reconstruction.setPixmap(QtGui.QPixmap.fromImage(image).scaledToWidth(
            width, QtCore.Qt.TransformationMode.SmoothTransformation))
        self.reconstruction.show()


def exam_colour(answer) -> str:
    """Red for a flagged clear 'abnormal', amber for a flagged answer in the band, grey for no answer, green
    for a clear 'normal'."""
    if answer.caveat:
        return "#7f8c8d"
    if answer.flagged:
        return "#c0392b" if answer.answer == "abnormal" else "#b9770e"
    return "#1e8449" if answer.answer == "normal" else "#7f8c8d"


def trained_for(exam) -> str:
    """What the answer means, in words: what was learnt, on whom (in full in the tooltip), what a score is."""
    source = (exam.levels.population or "its development data").split(":")[0]
    return (f"Finds any abnormality (benign included), not cancer. Score n/10: above n-1 tenths of normal cases of "
            f"{source} (film, enriched; not a screening population).")


def exam_details(exam) -> list[str]:
    """The tooltip: each level's operating point and its out-of-fold figures, each view's numbers."""
    out = [exam.levels.population, "trained to tell normal from any abnormality: masses, calcifications, "
           "architectural distortion, asymmetry, benign included"]
    for name in ("view", "breast", "exam"):
        level = getattr(exam.levels, name)
        if level is None:
            continue
        figures = level.figures or {}
        measured = (f"; out of fold: sensitivity {figures['sensitivity']:.2f}, specificity "
                    f"{figures['specificity']:.2f}, {figures['band_share']:.0%} no clear answer"
                    if figures else "")
        out.append(f"{name}: flagged at p >= {level.flag:.2f}, clearly abnormal above {level.clear:.2f}{measured}")
    for breast in exam.breasts:
        for view in breast.views:
            alone = f" (this view alone: {view.alone:.2f})" if view.alone is not None else ""
            compared = f" vs {view.compared_with}" if view.compared_with else ""
            out.append(f"{view.name}{compared}: p {view.probability:.2f}{alone}")
    return out
