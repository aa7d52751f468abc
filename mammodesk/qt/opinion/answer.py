"""How an answer reads in the Models panel: the verdict, the domain check, the
calibrated probabilities, the model's evaluation headline and card, and what
a heat map's values mean."""

from __future__ import annotations

import re

from PySide6 import QtCore, QtWidgets

from mammodesk.inference.exam import answer_text, view_caveat
from mammodesk.inference.results import PATCH_MAP
from mammodesk.inference import ModelEntry
from mammodesk.inference.library import FamilyInfo
from mammodesk.state.opinion import Opinion


def model_card_markdown(entry: ModelEntry) -> str:
    """The model card shipped beside the file, else one built from its metadata."""
    markdown = entry.path.with_suffix(".md")
    if markdown.is_file():
        return panel_headings(markdown.read_text(encoding="utf-8", errors="replace"))
    if entry.card is None:
        return f"# {entry.path.name}\n\n**Cannot be used:** {entry.error}"
    card = entry.card
    lines = [f"# {card.name}", "", card.description, "", f"- family: {card.family}", f"- task: {card.task}",
             f"- labels: {', '.join(card.labels)}", f"- input: {card.input.width}x{card.input.height}",
             f"- region: {card.roi.mode}", f"- trained on: {card.training.get('dataset', 'not stated')}",
             f"- evaluated: {card.metrics.get('how', 'not stated')}"]
    for name, value in card.metrics.items():
        if isinstance(value, dict) and "mean" in value:
            lines.append(f"- {name}: {value['mean']:.3f} ± {value.get('sd', float('nan')):.3f}")
    return "\n".join(lines)


def panel_headings(markdown: str) -> str:
    """A card's headings two levels smaller: in a side panel a level-1 title takes half its height."""
    return re.sub(r"^(#{1,4}) ", lambda m: "#" * min(6, len(m.group(1)) + 2) + " ", markdown, flags=re.M)


WEAK_AUC = 0.6


def model_purpose(entry: ModelEntry, catalogue: dict[tuple[str, str], FamilyInfo]) -> str:
    """What a model answers: its family and task's purpose from the catalogue, else its region and classes."""
    card = entry.card
    if card is None:
        return "Cannot be used"
    if (card.family, card.task) in catalogue:
        return catalogue[(card.family, card.task)].purpose
    return f"{card.mode.words}: {' vs '.join(card.labels)}"


def short_figures(entry: ModelEntry) -> str:
    """"CV AUC 0.70, baseline 0.54" (or the AUC alone) for the model list; '' without figures."""
    auc = entry.card.metrics.get("auc") if entry.card else None
    if not isinstance(auc, dict) or "mean" not in auc:
        return ""
    base = entry.card.metrics.get("baseline")
    if isinstance(base, dict) and isinstance(base.get("baseline"), dict):
        return f"CV AUC {auc['mean']:.2f}, baseline {base['baseline']['mean']:.2f}"
    return f"CV AUC {auc['mean']:.2f} ± {auc.get('sd', float('nan')):.2f}"


def evaluation_headline(entry: ModelEntry | None) -> tuple[str, bool]:
    """("CV AUC 0.73 ± 0.06 ...", weak?) from the model's own metrics; weak = mean AUC below 0.6."""
    if entry is None or entry.card is None:
        return "", False
    auc = entry.card.metrics.get("auc")
    if not isinstance(auc, dict) or "mean" not in auc:
        return "No cross-validated AUC in this model's metadata.", False
    text = f"Cross-validated AUC {auc['mean']:.2f} ± {auc.get('sd', float('nan')):.2f} (development data)"
    if auc["mean"] < WEAK_AUC:
        return text + " - no better than chance: treat its answers as noise.", True
    base = entry.card.metrics.get("baseline")
    if isinstance(base, dict) and isinstance(base.get("baseline"), dict):
        text = (f"CV AUC {auc['mean']:.2f} vs {base['baseline']['mean']:.2f} plain baseline "
                f"({base['difference']['mean']:+.2f} paired, development data)")
        if not base.get("beats_baseline"):
            return text + " - does not beat simple intensity statistics: treat its answers with caution.", True
    return text + ".", False


class ProbabilityBars(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._grid = QtWidgets.QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self.bars: list[QtWidgets.QProgressBar] = []

    def show_opinion(self, opinion: Opinion | None, read=None) -> None:
        """`read`: a reader's view as its exam reads it (`OpinionState.as_read`): its answer, score and the one
        number of its breast replace the view-alone figures, which stay in the tooltip."""
        while self._grid.count():
            widget = self._grid.takeAt(0).widget()
            if widget is not None:
                widget.hide()  # deleted later: until then it must not paint under the new answer
                widget.deleteLater()
        self.bars = []
        if opinion is None or opinion.prediction is None:
            return
        p = opinion.prediction
        verdict = QtWidgets.QLabel()
        verdict.setWordWrap(True)
        view, caveat = read if read is not None else (None, "")
        if view is not None:
            text = answer_text(view.answer, view.score, view_caveat(view, caveat), view.flagged)
            clear = view.answer != "no clear answer"
            verdict.setText(f"Answer: <b>{text}</b>" if clear else f"<b>{text[0].upper() + text[1:]}</b>")
            if not clear:  # amber in the band; grey where it has no answer at all (never an amber word then)
                verdict.setStyleSheet("color: #909090;" if view_caveat(view, caveat) else "color: #f0a030;")
        elif p.clear:
            verdict.setText(f"Answer: <b>{p.verdict()}</b>")
        else:
            verdict.setText(f"<b>{p.verdict().capitalize()}</b>")
            verdict.setStyleSheet("color: #f0a030;")
        self._grid.addWidget(verdict, 0, 0, 1, 3)
        domain = QtWidgets.QLabel(domain_text(p))
        domain.setWordWrap(True)
        domain.setStyleSheet("color: #ffffff; background: #b3261e; padding: 3px; font-weight: bold;"
                             if p.domain is not None and not p.domain.in_domain else "color: #4caf50;")
        self._grid.addWidget(domain, 1, 0, 1, 3)
        values = p.probabilities if view is None else [1.0 - view.probability, view.probability]
        if view is not None and view_caveat(view, caveat):  # no answer: no numbers that read like one
            return
        for row, (label, value) in enumerate(zip(p.labels, values), start=2):
            name = QtWidgets.QLabel(f"<b>{label}</b>" if row - 2 == p.predicted_index and p.clear and view is None
                                    else label)
            bar = QtWidgets.QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(int(round(float(value) * 1000)))
            bar.setFormat(f"{float(value) * 100:.1f} %")
            bar.setTextVisible(False)  # the style draws it over the bar's end, unreadable at this height
            bar.setMaximumHeight(16)
            percent = QtWidgets.QLabel(bar.format())
            percent.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            percent.setMinimumWidth(percent.fontMetrics().horizontalAdvance("100.0 %") + 4)
            self._grid.addWidget(name, row, 0)
            self._grid.addWidget(bar, row, 1)
            self._grid.addWidget(percent, row, 2)
            self.bars.append(bar)
        compared = view is not None and view.compared_with
        scored = view is not None and view.score is not None
        caption = QtWidgets.QLabel(bars_caption(p, view.compared_with if compared else None, scored))
        if compared:
            caption.setToolTip(f"this view alone: p(abnormal) {view.alone:.2f}")
        caption.setWordWrap(True)
        caption.setStyleSheet("color: #909090;")
        self._grid.addWidget(caption, len(p.labels) + 2, 0, 1, 3)


def bars_caption(prediction, compared_with: str | None, scored: bool) -> str:
    """What the bars are. With a score, why p(abnormal) under a half can answer 'abnormal': the p is in the
    development data's mix, the answer places it among the normal cases."""
    if not prediction.calibrated:
        what = "uncalibrated probabilities (this model carries no calibration)"
    else:
        what = "calibrated probabilities" + (" in the development data's mix of normal and abnormal cases"
                                             if scored else "")
    how = f", read against {compared_with}" if compared_with else \
        ", this view alone" if prediction.from_image_reader else ""
    return what + how + ("; the answer and score place this p among the normal cases" if scored else "")


def legend_caption(map_name: str, label: str) -> str:
    """What the heat map's 0..1 means, for the map shown."""
    if map_name == "scan":
        return f"mean p({label}) of the windows covering each point (calibrated where the model is)"
    if map_name == "votes":
        return f"share of the patch votes for {label} at each point"
    if map_name == PATCH_MAP:
        return (f"p({label}) of each patch of the breast (one map cell), on the image answer's calibrated scale: "
                "the answer pools the most suspicious patches")
    return f"Grad-CAM evidence for {label} ({map_name}), relative: 1 = the strongest point of this map"


def domain_text(prediction) -> str:
    if prediction.domain is None:
        return "Domain: not checked"
    if prediction.domain.in_domain:
        return f"In domain ({', '.join(prediction.domain.checked)} like the training images)"
    return "⚠ Outside training data: " + "; ".join(prediction.domain.reasons)
