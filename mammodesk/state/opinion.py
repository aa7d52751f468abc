"""The second opinion: which models exist, what they answered for which image
and region, which answer is shown and how its heat map is drawn. Qt-free;
the model panel renders it and the inference worker fills it."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from mammodesk.annotations.model import Finding, FindingKind, Pathology, Rect
from mammodesk.inference import ModelEntry, ModelLibrary, Prediction, SourceMap
from mammodesk.inference.bilateral import Bilateral
from mammodesk.inference.exam import (ExamAnswer, ViewAnswer, answer_text, combine, exam_key, patient_of, study_of,
                                      view_caveat)
from mammodesk.inference.scan import ScanResult
from mammodesk.inference.spacing import with_assumed_spacing
from mammodesk.io import Image
from mammodesk.state.events import Signal
from mammodesk.state.viewer import Document

TargetKind = Literal["whole", "roi", "scan"]
COLOUR_MAPS = ("inferno", "viridis", "CET-L17", "turbo")
Box = tuple[float, float, float, float]
_ids = itertools.count(1)


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    box: Box | None = None  # source x0, y0, x1, y1 for "roi"

    def describe(self) -> str:
        if self.kind == "roi" and self.box is not None:
            x0, y0, x1, y1 = self.box
            return f"ROI at ({(x0 + x1) / 2:.0f}, {(y0 + y1) / 2:.0f})"
        return {"whole": "whole image", "scan": "breast scan", "roi": "ROI"}[self.kind]


@dataclass(eq=False)
class Opinion:
    """One model's answer for one image and target (or why there is none)."""

    document: Document
    entry: ModelEntry
    target: Target
    prediction: Prediction | None = None  # for a scan: the most positive window
    scan: ScanResult | None = None
    reconstruction: np.ndarray | None = None  # VAE models: (model input, reconstruction), model space
    view: ViewAnswer | None = None  # image readers: side, view, p(abnormal) and where, for the exam line
    error: str | None = None
    accepted: bool = False
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def model_name(self) -> str:
        return self.entry.name

    @property
    def box(self) -> Box | None:
        if self.prediction is not None and self.prediction.roi_box is not None:
            return tuple(float(v) for v in self.prediction.roi_box)  # type: ignore[return-value]
        return self.target.box

    @property
    def marks_a_place(self) -> bool:
        """Whether its box is drawn: the region analysed, or a reader's location once the view is flagged and
        inside the training data (a marker on a view called normal, or on one it cannot read, points at
        nothing)."""
        return self.view.flagged if self.view is not None else True

    @property
    def view_name(self) -> str:
        """Which view and file the answer is about: 'R CC · mdb001.pgm'."""
        return f"{self.document.anatomy.label} · {self.document.name}"

    def summary(self) -> str:
        if self.error:
            return f"failed: {self.error}"
        assert self.prediction is not None
        p = self.prediction
        text = f"{p.predicted_label} {p.probabilities[p.predicted_index]:.2f}"
        if p.votes is not None:
            text += f" ({int(p.votes[p.predicted_index])}/{int(p.votes.sum())} patches)"
        if self.scan is not None:
            text = f"most {p.labels[self.scan.positive]}: {p.probabilities[self.scan.positive]:.2f} " \
                   f"({len(self.scan.boxes)} windows)"
        if not p.clear:
            text = f"{p.verdict()}; {text}"
        return text

    def map_names(self) -> tuple[str, ...]:
        names: tuple[str, ...] = ()
        if self.scan is not None:
            names += ("scan",)
        if self.prediction is not None and self.prediction.heatmaps is not None:
            names += self.prediction.heatmaps.names
        if self.prediction is not None and self.prediction.vote_maps is not None:
            names += ("votes",)
        return names


DEFAULT_MAP_THRESHOLD = 0.3
READER_MAP_RAMP = 0.05


@dataclass(frozen=True)
class OverlaySettings:
    visible: bool = True
    opacity: float = 0.45
    colour_map: str = "inferno"
    threshold: float | None = None  # map values below are transparent (maps are 0..1); None: the map's own
    ramp: float = 0.3  # above the threshold, opacity rises over this much of the map's scale
    class_index: int | None = None  # None: the predicted class
    map_name: str | None = None  # None: the first the opinion has ("scan", "combined", ...)


def cache_key(document: Document, entry: ModelEntry, target: Target, assumed_spacing: float | None) -> tuple:
    """An answer depends on the image, the model file's weights and spec, and the
    region: a changed model file (new hash or spec) or another image misses."""
    card = entry.card
    assert card is not None
    spacing = None if document.image.meta.pixel_spacing_mm else assumed_spacing
    return document.id, str(entry.path), card.weights_sha256, card.spec.to_json(indent=None), target, spacing


@dataclass(frozen=True)
class Job:
    """One model asked about one region of one image."""
    entry: ModelEntry
    document: Document
    image: Image
    target: Target


class OpinionState:
    def __init__(self, library: ModelLibrary | None = None) -> None:
        self.library = library or ModelLibrary(verify_now=False)  # digests: verify_models, in a worker
        self.opinions: list[Opinion] = []
        self.selected: Opinion | None = None
        self.overlay = OverlaySettings()
        self.open_documents: Callable[[], list[Document]] = lambda: []  # the viewer's, for exam answers
        self.rois: dict[int, list[Box]] = {}  # document id -> ROIs placed for the models
        self.accepted: dict[int, list[Finding]] = {}  # document id -> findings accepted from models
        self.assumed_spacing_mm: float | None = None  # used only for images without a pixel spacing
        self.active: Document | None = None  # the active view: only its answers are shown (follow_active)
        self._cache: dict[tuple, Opinion] = {}
        self.models_changed = Signal()  # ()
        self.opinions_changed = Signal()  # ()
        self.selected_changed = Signal()  # (Opinion | None)
        self.overlay_changed = Signal()  # (OverlaySettings)
        self.rois_changed = Signal()  # (Document)
        self.finding_accepted = Signal()  # (Document, Finding)
        self.active_changed = Signal()  # (Document | None), after the shown answer followed it

    # --- models ---------------------------------------------------------------------------
    @property
    def models(self) -> list[ModelEntry]:
        return self.library.entries

    def add_model_folder(self, folder: str) -> None:
        self.library.add_folder(folder)
        self.models_changed.emit()

    def verify_models(self) -> bool:
        """Check the weights digests not yet checked (slow: call from a worker); True when the
        list changed, so `models_changed` is due on the UI thread."""
        return self.library.verify_pending()

    def targets_for(self, entry: ModelEntry, document: Document, mode: str = "auto",
                    scan_when_no_roi: bool = True) -> list[Target]:
        """What "run" means for this model on this image. Whole-image models run on the
        image. ROI models: "auto"/"rois" = every placed ROI, "last_roi" = the latest one,
        both falling back to a scan of the breast when none is placed (unless
        scan_when_no_roi is off: "Run all", where the image's answer is the reader's);
        "scan"; "whole" = the whole image as the ROI."""
        if entry.card is None:
            return []
        if entry.card.reads_whole_image:
            return [Target("whole")]
        rois = self.rois.get(document.id, [])
        if mode in ("auto", "rois", "last_roi") and not rois:
            return [Target("scan")] if scan_when_no_roi else []
        if mode == "scan":
            return [Target("scan")]
        if mode == "last_roi":
            return [Target("roi", rois[-1])]
        if mode == "whole":
            rows, cols = document.image.shape
            return [Target("roi", (0.0, 0.0, float(cols), float(rows)))]
        return [Target("roi", box) for box in rois]

    def image_for_models(self, document: Document) -> Image:
        """The image as the models see it: with the assumed spacing when it has none."""
        return with_assumed_spacing(document.image, self.assumed_spacing_mm)

    def plan_run(self, entry: ModelEntry | None, documents: list[Document], mode: str = "auto") -> list["Job"]:
        """What a run asks, the user action behind Run (Qt only carries the jobs to a worker): `entry`, or every
        usable model, on `documents`. Answers already cached for the same image, model and region are shown
        again here, without a job. "Run all" (no `entry`) asks ROI models only about ROIs placed: the image's
        answer is the whole-image reader's, and a breast scan by an ROI model is asked for by name or by the
        "scan" mode. Whole-image models come first: their answers are quick."""
        entries = [entry] if entry is not None else [e for e in self.models if e.card is not None]
        entries.sort(key=lambda e: e.card is not None and not e.card.reads_whole_image)
        jobs = []
        for model in (e for e in entries if e.card is not None):
            for document in documents:
                for target in self.targets_for(model, document, mode, scan_when_no_roi=entry is not None):
                    cached = self.cached(document, model, target)
                    if cached is not None:
                        self.add(cached)
                    else:
                        jobs.append(Job(model, document, self.image_for_models(document), target))
        return jobs

    # --- results --------------------------------------------------------------------------
    def cached(self, document: Document, entry: ModelEntry, target: Target) -> Opinion | None:
        return self._cache.get(cache_key(document, entry, target, self.assumed_spacing_mm))

    def add(self, opinion: Opinion) -> None:
        """Record a finished answer (UI thread). Errors are listed but never cached."""
        key = cache_key(opinion.document, opinion.entry, opinion.target, self.assumed_spacing_mm)
        previous = self._cache.get(key)
        if previous is not None and previous in self.opinions:
            self.opinions.remove(previous)
        if opinion.error is None:
            self._cache[key] = opinion
        self.opinions.append(opinion)
        self.opinions_changed.emit()
        if self.active is None or opinion.document is self.active:  # another view's answer waits in the list
            self.select(opinion)

    def for_document(self, document: Document | None) -> list[Opinion]:
        return [o for o in self.opinions if o.document is document]

    def select(self, opinion: Opinion | None) -> None:
        if opinion is not self.selected:
            self.selected = opinion
            self.overlay = dataclasses.replace(self.overlay, class_index=None, map_name=None)
            self.selected_changed.emit(opinion)
            self.overlay_changed.emit(self.overlay)

    def shown_for(self, document: Document) -> Opinion | None:
        """The opinion whose map a view of `document` draws: the selected one when it
        is about this image, else this image's latest answer from the same model."""
        selected = self.selected
        if selected is not None and selected.document is document:
            return selected if selected.error is None else None
        mine = [o for o in self.for_document(document) if o.error is None]
        if selected is not None:
            same_model = [o for o in mine if o.entry.path == selected.entry.path]
            return same_model[-1] if same_model else None
        return None

    def best_for(self, document: Document | None) -> Opinion | None:
        """This image's default answer: a whole-mammogram reader's (it answers the reader's question about the
        image), else the model with the highest cross-validated AUC."""
        def rank(opinion: Opinion) -> tuple[bool, float]:
            card = opinion.entry.card
            metric = card.metrics.get("auc") if card else None
            auc = float(metric["mean"]) if isinstance(metric, dict) and "mean" in metric else 0.0
            return (card is not None and card.mode.whole_mammogram, auc)

        answers = [o for o in self.for_document(document) if o.error is None]
        return max(answers, key=rank) if answers else None

    def exam(self, documents: list[Document], around: Document | None = None) -> ExamAnswer | None:
        """The exam-level answer for the active view's exam (or `around`'s: its patient's images; one study
        of them when the patient's studies hold several images each, so a prior never mixes in) from the
        image reader shown now (else the first that answered): per breast and for the study. None before
        any answer."""
        around = around or self.active
        active = around if around in documents else None
        if active is not None:
            documents = exam_documents(active, documents)
        readers = [o for o in self.opinions if o.error is None and o.view is not None and o.document in documents]
        if not readers:
            return None
        selected = self.selected
        model = selected.entry.path if selected in readers else readers[0].entry.path
        latest: dict[int, Opinion] = {}
        for opinion in readers:
            if opinion.entry.path == model:
                latest[opinion.document.id] = opinion
        card = next(iter(latest.values())).entry.card
        unread = [unread_view(o) for o in self.opinions if o.entry.path == model and o.document in documents
                  and o.error is not None and o.error != "stopped" and o.document.id not in latest]
        return combine([*(o.view for o in latest.values()), *unread],  # type: ignore[misc]
                       card.level_rules, Bilateral.from_card(card.bilateral))  # type: ignore[union-attr, arg-type]

    def as_read(self, opinion: Opinion, documents: list[Document] | None = None) -> tuple[ViewAnswer, str] | None:
        """A reader's view as its exam reads it (read against the other breast when it can be; its p then the
        breast's one number) and its breast's caveat; None for other answers."""
        if opinion.view is None:
            return None
        exam = self.exam(self.open_documents() if documents is None else documents, around=opinion.document)
        for breast in exam.breasts if exam else ():
            for view in breast.views:
                if view.name == opinion.view.name:
                    return view, breast.caveat
        return opinion.view, opinion.view.caveat

    def summary(self, opinion: Opinion) -> str:
        """The findings list's line: a reader's view as read in its exam ('abnormal · score 8/10'), else the
        answer's own summary."""
        read = self.as_read(opinion) if opinion.error is None else None
        if read is None:
            return opinion.summary()
        view, caveat = read
        return answer_text(view.answer, view.score, view_caveat(view, caveat), view.flagged)

    def marks_a_place(self, opinion: Opinion, documents: list[Document],
                      read: tuple[ViewAnswer, str] | None = None) -> bool:
        """Whether the answer's box is drawn (`Opinion.marks_a_place`); for a reader's view, as its exam reads
        it (read against the other breast, and never on a breast without an answer), so the marker agrees
        with the exam line. `read`: `as_read`'s answer when the caller has it already."""
        read = read or self.as_read(opinion, documents)
        if read is None:
            return opinion.marks_a_place
        view, caveat = read
        return view.flagged and not caveat

    def follow_active(self, document: Document | None) -> None:
        """The answer shown always belongs to the active view: when another view becomes active, show
        its answer from the model shown now (else its best one), or none - never another image's."""
        self.active = document
        selected = self.selected
        if document is not None and (selected is None or selected.document is not document):
            mine = [o for o in self.for_document(document) if o.error is None]
            same_model = [o for o in mine if selected is not None and o.entry.path == selected.entry.path]
            self.select(same_model[-1] if same_model else self.best_for(document))
        self.active_changed.emit(document)

    def forget_document(self, document: Document) -> None:
        self.opinions = [o for o in self.opinions if o.document is not document]
        self._cache = {k: v for k, v in self._cache.items() if v.document is not document}
        self.rois.pop(document.id, None)
        if self.selected is not None and self.selected.document is document:
            self.select(None)
        self.opinions_changed.emit()

    def accept(self, opinion: Opinion) -> Finding:
        """The answer as an annotation of its image, linked to the model and its weights."""
        if opinion.prediction is None:
            raise ValueError("a failed run has nothing to accept")
        finding = finding_from(opinion)
        self.accepted.setdefault(opinion.document.id, []).append(finding)
        opinion.accepted = True
        self.opinions_changed.emit()
        self.finding_accepted.emit(opinion.document, finding)
        return finding

    # --- ROIs -----------------------------------------------------------------------------
    def add_roi(self, document: Document, box: Box) -> None:
        self.rois.setdefault(document.id, []).append(tuple(float(v) for v in box))  # type: ignore[arg-type]
        self.rois_changed.emit(document)

    def clear_rois(self, document: Document) -> None:
        self.rois.pop(document.id, None)
        self.rois_changed.emit(document)

    # --- overlay --------------------------------------------------------------------------
    def set_overlay(self, **changes) -> None:
        if "colour_map" in changes and changes["colour_map"] not in COLOUR_MAPS:
            raise ValueError(f"unknown colour map {changes['colour_map']!r}; choose one of {COLOUR_MAPS}")
        for name in ("opacity", "threshold"):
            if changes.get(name) is not None and not 0.0 <= changes[name] <= 1.0:
                raise ValueError(f"{name} must lie in 0..1, got {changes[name]}")
        self.overlay = dataclasses.replace(self.overlay, **changes)
        self.overlay_changed.emit(self.overlay)

    def overlay_for(self, opinion: Opinion | None) -> OverlaySettings:
        """The settings a view draws `opinion`'s map with: a threshold left to the map is a reader's view
        operating point (its patch map is on the answer's scale, so a flagged view's marked region is
        coloured at default settings), else DEFAULT_MAP_THRESHOLD."""
        if self.overlay.threshold is not None:
            return self.overlay
        prediction = opinion.prediction if opinion is not None else None
        level = prediction.level if prediction is not None and prediction.from_image_reader else None
        if level is None:
            return dataclasses.replace(self.overlay, threshold=DEFAULT_MAP_THRESHOLD)
        # a reader's cells sit within a few hundredths of its operating point: full colour soon above it
        return dataclasses.replace(self.overlay, threshold=level.flag, ramp=READER_MAP_RAMP)

    def toggle_overlay(self) -> None:
        self.set_overlay(visible=not self.overlay.visible)

    def overlay_map(self, opinion: Opinion) -> tuple[SourceMap, str, int] | None:
        """(map in source pixels, its name, class index) for the current settings."""
        names = opinion.map_names()
        if opinion.prediction is None or not names:
            return None
        name = self.overlay.map_name if self.overlay.map_name in names else names[0]
        prediction = opinion.prediction
        if name == "scan":
            assert opinion.scan is not None
            return opinion.scan.map, name, opinion.scan.positive
        index = self.overlay.class_index
        if index is None or not 0 <= index < len(prediction.labels):
            index = prediction.map_class(name)
        maps = prediction.vote_maps if name == "votes" else prediction.heatmaps
        assert maps is not None
        return maps.source(index, name), name, index


def unread_view(opinion: Opinion) -> ViewAnswer:
    """A view of the exam the reader could not read: it might have been the deciding one, so its breast and
    the exam answer 'no clear answer'."""
    anatomy = opinion.document.anatomy
    return ViewAnswer(opinion.view_name, anatomy.laterality, anatomy.view, float("nan"),
                      caveat=f"could not be read: {opinion.error}")


def exam_documents(active: Document, documents: list[Document]) -> list[Document]:
    """The open images of the active image's exam (`exam_key`: the same patient, and the same study unless
    each of the patient's studies holds a single image of its own view, as CBIS-DDSM stores them)."""
    patient = patient_of(active.image.meta)
    mine = [d for d in documents if patient_of(d.image.meta) == patient]
    images = [(study_of(d.image.meta), (d.anatomy.laterality, d.anatomy.family)) for d in mine]
    keys = [exam_key(study, patient, images) for study, _ in images]
    return [d for d, key in zip(mine, keys) if key == keys[mine.index(active)]]


def finding_from(opinion: Opinion) -> Finding:
    """Model labels become the annotation's kind and pathology where they say so;
    the label, probability, model and weights hash are kept as attributes."""
    prediction = opinion.prediction
    assert prediction is not None
    label = prediction.predicted_label
    kind = FindingKind.NORMAL if label == "normal" else FindingKind.OTHER
    pathology = {"benign": Pathology.BENIGN, "malignant": Pathology.MALIGNANT}.get(label, Pathology.UNKNOWN)
    box = opinion.box
    attributes = {"model_label": label, "probability": f"{prediction.probabilities[prediction.predicted_index]:.4f}",
                  "calibrated": "yes" if prediction.calibrated else "no",
                  "domain": prediction.domain.text() if prediction.domain is not None else "not checked",
                  "answer": prediction.verdict(),
                  "model": opinion.model_name, "weights_sha256": prediction.weights_sha256,
                  "target": opinion.target.describe()}
    return Finding(kind=kind, pathology=pathology, shape=Rect(*box) if box is not None else None,
                   attributes=attributes, source=f"model:{opinion.model_name}@{prediction.weights_sha256[:12]}")
