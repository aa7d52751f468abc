"""The reader's question, answered at every level: per view (one image reader's
answer), per breast (its CC and MLO together) and per study (both breasts),
each with where the most suspicious finding is, in words a radiologist uses.

- A breast's p(abnormal) is its most suspicious view's, and the breast is called
  suspicious when any of its views is (a finding seen on one view only is still
  recalled). The threshold is the per-image operating point: breast-level
  sensitivity was never measured (MIAS has one view per breast).
- A breast's call is borderline when it rests on views within half of
  `CLEAR_MARGIN` of their operating point, the band where a view's own answer
  reads "no clear answer (near the decision threshold)": suspicious only by
  views that close above it, or no finding with a view that close below it.
- A study's p is its most suspicious breast's.
- With the card's `bilateral` weights, a view is first read against the same
  view of the other breast (`compare_sides`): its p and operating point are
  then the comparison's.
- Where: an MLO view tells upper from lower (above or below the nipple's row),
  a CC view outer from inner (stored with the lateral side up, DICOM's and
  ACR's convention: above the nipple's row is outer). With both, a quadrant.

Qt-free and model-agnostic: it reads `ViewAnswer`s, whatever made them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from mammodesk.anatomy import Anatomy, read_anatomy
from mammodesk.inference.bilateral import Bilateral, image_logit
from mammodesk.inference.results import CLEAR_MARGIN, Prediction
from mammodesk.io import Image, ImageMeta
from mammodesk.io.naming import infer_from_name
from mammodesk.io.views import VIEW_FAMILY
from mammodesk.preprocessing.spatial import outline_breast

SIDE_NAMES = {"L": "L breast", "R": "R breast", None: "breast of unknown side"}


@dataclass(frozen=True)
class ViewAnswer:
    name: str  # what the reader sees it as: "R CC · 1-282.dcm"
    laterality: str | None  # "L", "R", None
    view: str | None  # the view code (CC, MLO, ML ...)
    probability: float  # calibrated p(abnormal)
    above_nipple: bool | None = None  # where the peak is: above the nipple's row (None: not known)
    box: tuple[int, int, int, int] | None = None  # the peak's box, source pixels
    caveat: str = ""  # why the view's own answer is not clear-cut (outside training data ...), "" when it is
    logit: float | None = None  # the reader's raw image logit (before calibration)
    threshold: float | None = None  # its own operating point, when it differs from the exam's (compared views)
    compared_with: str = ""  # the other breast's view it was read against ("" : read alone)

    def operating_point(self, threshold: float) -> float:
        """Its own operating point when it has one (a compared view), else the exam's."""
        return self.threshold if self.threshold is not None else threshold

    def suspicious(self, threshold: float) -> bool:
        return self.probability >= self.operating_point(threshold)

    def near_threshold(self, threshold: float) -> bool:
        """Within the band where its own answer is 'no clear answer (near the decision threshold)'."""
        return 2 * abs(self.probability - self.operating_point(threshold)) < CLEAR_MARGIN

    @property
    def family(self) -> str | None:
        return VIEW_FAMILY.get((self.view or "").upper())

    @property
    def where(self) -> str:
        if self.above_nipple is None or self.family is None:
            return ""
        if self.family == "MLO":
            return "upper" if self.above_nipple else "lower"
        return "outer" if self.above_nipple else "inner"


@dataclass(frozen=True)
class BreastAnswer:
    laterality: str | None
    probability: float
    views: tuple[ViewAnswer, ...]
    suspicious: bool
    borderline: bool = False  # the call rests on views near their operating point (see the module's notes)
    threshold: float | None = None  # the operating point the call was made at (the line names it when borderline)

    @property
    def name(self) -> str:
        return SIDE_NAMES.get(self.laterality, SIDE_NAMES[None])

    @property
    def where(self) -> str:
        """'upper outer', 'lower', 'inner' ... from the most suspicious view of each kind."""
        by_family: dict[str, ViewAnswer] = {}
        for view in sorted(self.views, key=lambda v: -v.probability):
            if view.family and view.where:
                by_family.setdefault(view.family, view)
        parts = [by_family[f].where for f in ("MLO", "CC") if f in by_family]
        return " ".join(parts)

    @property
    def caveats(self) -> list[str]:
        return [f"{v.name}: {v.caveat}" for v in self.views if v.caveat]

    def line(self) -> str:
        """'R breast: suspicious 0.81, upper outer' or 'L breast: no finding 0.07 (1 view outside training data)'."""
        verdict = "suspicious" if self.suspicious else "no finding"
        where = f", {self.where}" if self.suspicious and self.where else ""
        outside = sum("outside training data" in v.caveat for v in self.views)
        notes = [f"near the threshold, {self.threshold:.2f}" if self.borderline and self.threshold is not None
                 else "near the threshold" if self.borderline else "",
                 f"{outside} view{'s' if outside > 1 else ''} outside training data" if outside else ""]
        note = "; ".join(filter(None, notes))
        return f"{self.name}: {verdict} {self.probability:.2f}{where}" + (f" ({note})" if note else "")


@dataclass(frozen=True)
class StudyAnswer:
    breasts: tuple[BreastAnswer, ...]
    threshold: float

    @property
    def probability(self) -> float:
        return max((b.probability for b in self.breasts), default=float("nan"))

    @property
    def suspicious(self) -> bool:
        return any(b.suspicious for b in self.breasts)

    @property
    def borderline(self) -> bool:
        """The study's call rests on borderline breasts only (suspicious), or a breast is borderline (no finding)."""
        calling = [b for b in self.breasts if b.suspicious]
        return all(b.borderline for b in calling) if calling else any(b.borderline for b in self.breasts)

    @property
    def compared(self) -> bool:
        """Whether any view was read against the other breast."""
        return any(v.compared_with for b in self.breasts for v in b.views)

    def line(self) -> str:
        return "; ".join(b.line() for b in self.breasts)


def combine(views: Sequence[ViewAnswer], threshold: float, bilateral: Bilateral | None = None) -> StudyAnswer:
    """Views of one study into breasts (R first, then L, then unknown sides) and the study; with
    `bilateral`, each view first read against the other breast (`compare_sides`)."""
    if bilateral is not None:
        views = compare_sides(views, bilateral)
    groups = [tuple(v for v in views if v.laterality == side) for side in ("R", "L")]
    groups += [(v,) for v in views if v.laterality not in ("R", "L")]  # unknown sides are never pooled
    return StudyAnswer(tuple(breast_answer(mine, threshold) for mine in groups if mine), threshold)


def breast_answer(views: tuple[ViewAnswer, ...], threshold: float) -> BreastAnswer:
    """One breast from its views: the most suspicious view's p; suspicious when any view is; borderline when
    the call rests only on views near their operating point."""
    calling = [v for v in views if v.suspicious(threshold)]
    borderline = all(v.near_threshold(threshold) for v in calling) if calling else \
        any(v.near_threshold(threshold) for v in views)
    deciding = max(calling or views, key=lambda v: v.probability)
    side = views[0].laterality if views[0].laterality in ("R", "L") else None
    return BreastAnswer(side, float(max(v.probability for v in views)), views, bool(calling),
                        borderline, deciding.operating_point(threshold))


def compare_sides(views: Sequence[ViewAnswer], bilateral: Bilateral) -> list[ViewAnswer]:
    """Each view of a known side read against the other breast's views of its family (their most
    suspicious one) in the same exam; a view without one keeps its own answer."""
    out = []
    for view in views:
        other_side = {"R": "L", "L": "R"}.get(view.laterality or "")
        others = [o for o in views if other_side is not None and o.laterality == other_side
                  and view.family is not None and o.family == view.family and o.logit is not None]
        if view.logit is None or not others:
            out.append(view)
            continue
        other = max(others, key=lambda o: o.logit)
        out.append(replace(view, probability=bilateral.probability(view.logit, other.logit),
                           threshold=bilateral.threshold, compared_with=other.name))
    return out


def study_of(meta: ImageMeta) -> str:
    """The study an image belongs to, as a non-identifying key: the hashed DICOM study, else the hashed
    patient (MIAS pairs, CBIS-DDSM ids, from tags or names), else the file itself (never a folder: a
    folder may hold many women)."""
    hints = infer_from_name(meta.source_path.name) if meta.source_path else None
    key = meta.study_key or meta.patient_key or (hints.patient_key if hints else None)
    return str(key or (f"file:{meta.source_path.name}" if meta.source_path else "image"))


def patient_of(meta: ImageMeta) -> str:
    """The hashed patient key (from tags or names), else the image's study."""
    hints = infer_from_name(meta.source_path.name) if meta.source_path else None
    return str(meta.patient_key or (hints.patient_key if hints else None) or study_of(meta))


Slot = tuple[str | None, str | None]  # (laterality, view family)


def exam_key(study: str, patient: str, patients_images: list[tuple[str, Slot]]) -> str:
    """The exam an image belongs to: its study, except where an archive gives each view of one patient a
    study of its own (CBIS-DDSM does): when every study of the patient (`patients_images`: each image's
    study and slot) holds one image and no view repeats (no second R CC), they are one exam, keyed by the
    patient. The batch rows and the panel's exam line both ask here."""
    studies = [s for s, _ in patients_images]
    slots = [slot for _, slot in patients_images]
    if len(set(studies)) == len(studies) > 1 and len(set(slots)) == len(slots) and all(f for _, f in slots):
        return patient
    return study


def above_nipple(mask: np.ndarray, chest_wall: str, row: float) -> bool | None:
    """Whether row `row` (in the mask's rows) lies above the nipple's row: the breast mask's row reaching furthest
    from the chest wall (the median of the rows within 2 % of that reach). None without a breast."""
    if not mask.any():
        return None
    oriented = mask if chest_wall == "left" else mask[:, ::-1]
    reach = np.where(oriented.any(axis=1), oriented.shape[1] - 1 - np.argmax(oriented[:, ::-1], axis=1), -1)
    far = np.flatnonzero(reach >= reach.max() - 0.02 * oriented.shape[1])
    return bool(row < float(np.median(far)))


def view_answer(image: Image, prediction: Prediction, name: str, anatomy: Anatomy | None = None) -> ViewAnswer:
    """What a reader's answer says about this view: side, view, p(positive) and where its peak is (the
    image's anatomy when known, e.g. a document's from its load; found here otherwise)."""
    outline = outline_breast(image)
    anatomy = anatomy or read_anatomy(image, outline)
    above = None
    if prediction.roi_box is not None:
        peak_row = (prediction.roi_box[1] + prediction.roi_box[3]) / 2 * outline.mask.shape[0] / image.shape[0]
        above = above_nipple(outline.mask, anatomy.chest_wall, peak_row)
    caveat = prediction.domain.text() if prediction.domain is not None and not prediction.domain.in_domain else ""
    raw = prediction.raw_probabilities
    return ViewAnswer(f"{anatomy.label} · {name}", anatomy.laterality, anatomy.view,
                      float(prediction.probabilities[-1]), above, prediction.roi_box, caveat,
                      image_logit(raw[-1]) if raw is not None else None)
