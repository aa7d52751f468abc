"""The reader's question, answered at every level: per view (one image reader's
answer), per breast (its views together) and per exam (both breasts), each
with one score on one scale, an answer sized by evidence (`levels.py`), and
where the most suspicious finding is, in words a radiologist uses.

- A view of a known side with the same view of the other breast is read
  against it (`compare_sides`, the card's `bilateral`): its p is then on the
  breast scale, and that one number is the view's and its breast's; the view
  alone is kept (`alone`) for whoever asks.
- A breast is its most suspicious view (a finding seen on one view only is
  still recalled). Breast-level rules for several views per breast could not
  be fitted on MIAS (one view per breast): this is stated, not learnt.
- An exam with both breasts is the card's exam rule on the breasts' image
  logits (fitted out of fold at the exam level); its deciding breast is the one
  with the higher logit. With one breast, the exam is that breast's answer.
  The exam agrees with its breasts: never 'normal' with a breast flagged, nor
  'abnormal' with none (then 'no clear answer'; training measures it so).
- Never more sure than its inputs: a breast with a view outside the training
  data (or unread) answers "no clear answer (outside training data: ...)",
  with no score, flag or mark; so does every exam holding such a breast.
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
from mammodesk.inference.levels import ABNORMAL, NORMAL, UNCLEAR, Level, Levels
from mammodesk.inference.results import Prediction
from mammodesk.io import Image, ImageMeta
from mammodesk.io.naming import infer_from_name
from mammodesk.io.views import VIEW_FAMILY
from mammodesk.preprocessing.spatial import BreastOutline, outline_breast

SIDE_NAMES = {"L": "L breast", "R": "R breast", None: "breast of unknown side"}
OUTSIDE = "outside training data"


class Scored:
    """An answer on a level's scale: 'abnormal', 'normal' or 'no clear answer', flagged at the level's
    operating point, and its 1-10 score; none of them where a caveat says it has no answer."""

    scale: Level | None
    probability: float
    caveat: str

    @property
    def answerable(self) -> bool:
        return not self.caveat and self.scale is not None and bool(np.isfinite(self.probability))

    @property
    def answer(self) -> str:
        return self.scale.answer(self.probability) if self.answerable else UNCLEAR  # type: ignore[union-attr]

    @property
    def flagged(self) -> bool:
        return self.answerable and self.scale.flagged(self.probability)  # type: ignore[union-attr]

    @property
    def score(self) -> int | None:
        return self.scale.score(self.probability) if self.answerable else None  # type: ignore[union-attr]


@dataclass(frozen=True)
class ViewAnswer(Scored):
    name: str  # what the reader sees it as: "R CC · 1-282.dcm"
    laterality: str | None  # "L", "R", None
    view: str | None  # the view code (CC, MLO, ML ...)
    probability: float  # calibrated p(abnormal) on `scale`
    above_nipple: bool | None = None  # where the peak is: above the nipple's row (None: not known)
    box: tuple[int, int, int, int] | None = None  # the peak's box, source pixels
    caveat: str = ""  # why it has no answer (outside training data ...), "" when it has one
    logit: float | None = None  # the reader's raw image logit of this view alone (before calibration)
    scale: Level | None = None  # the level its p is on: the view alone, or the breast (compared)
    compared_with: str = ""  # the other breast's view it was read against ("" : read alone)
    alone: float | None = None  # compared views: this view's p read alone (shown on request)

    @property
    def rank(self) -> tuple:
        """How suspicious, across scales: flagged first, then the distance above its flag."""
        flag = self.scale.flag if self.scale is not None else 0.5
        return (self.flagged, self.probability - flag if self.answerable else -np.inf)

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


def answer_text(answer: str, score: int | None, caveat: str = "", flagged: bool = False) -> str:
    """'abnormal · score 9/10', 'no clear answer · score 6/10, above the operating point',
    'no clear answer (outside training data: ...)'."""
    if caveat:
        return f"{UNCLEAR} ({caveat})"
    text = answer + (f" · score {score}/10" if score is not None else "")
    if answer == UNCLEAR:  # both answers possible: which side of the recall threshold it falls on
        text += ", above the operating point" if flagged else ", below the operating point"
    return text


def view_caveat(view: ViewAnswer, breast_caveat: str) -> str:
    """Why a view as its exam reads it has no answer: its own reason, or its breast's ('this breast's R MLO is
    outside training data'), never another view's reason worded as if it were this view's."""
    if view.caveat or not breast_caveat:
        return view.caveat
    what, _, names = breast_caveat.partition(": ")
    return f"this breast's {names} {'are' if ',' in names else 'is'} {what}"


@dataclass(frozen=True)
class BreastAnswer:
    laterality: str | None
    views: tuple[ViewAnswer, ...]

    @property
    def deciding(self) -> ViewAnswer:
        return max(self.views, key=lambda v: v.rank)

    @property
    def caveat(self) -> str:
        """Why the breast has no answer: a view outside the training data (or unread) might be the deciding one."""
        off = [v for v in self.views if v.caveat or not np.isfinite(v.probability)]
        return f"{OUTSIDE if any(OUTSIDE in v.caveat for v in off) else 'unread'}: " \
               + ", ".join(v.name.split(" · ")[0] for v in off) if off else ""

    @property
    def probability(self) -> float:
        return self.deciding.probability

    @property
    def answer(self) -> str:
        return UNCLEAR if self.caveat else self.deciding.answer

    @property
    def flagged(self) -> bool:
        return not self.caveat and self.deciding.flagged

    @property
    def score(self) -> int | None:
        return None if self.caveat else self.deciding.score

    @property
    def name(self) -> str:
        return SIDE_NAMES.get(self.laterality, SIDE_NAMES[None])

    @property
    def where(self) -> str:
        """'upper outer', 'lower', 'inner' ... from the most suspicious view of each kind."""
        by_family: dict[str, ViewAnswer] = {}
        for view in sorted(self.views, key=lambda v: v.rank, reverse=True):
            if view.family and view.where:
                by_family.setdefault(view.family, view)
        parts = [by_family[f].where for f in ("MLO", "CC") if f in by_family]
        return " ".join(parts)

    @property
    def caveats(self) -> list[str]:
        return [f"{v.name}: {v.caveat}" for v in self.views if v.caveat]

    def line(self) -> str:
        """'R breast: abnormal · score 8/10, upper outer', or
        'L breast: no clear answer (outside training data: L CC)'."""
        where = f", {self.where}" if self.flagged and self.where else ""
        return f"{self.name}: {answer_text(self.answer, self.score, self.caveat, self.flagged)}{where}"


@dataclass(frozen=True)
class ExamAnswer(Scored):
    breasts: tuple[BreastAnswer, ...]
    levels: Levels

    @property
    def caveat(self) -> str:
        return "; ".join(f"{b.name} {b.caveat}" for b in self.breasts if b.caveat)

    @property
    def sided(self) -> list[BreastAnswer]:
        """The R and L breasts (a view of unknown side is a breast of its own, outside the rule)."""
        return [b for b in self.breasts if b.laterality in ("R", "L")]

    @property
    def ruled(self) -> bool:
        """Answered by the exam rule: both breasts, each with its image logits."""
        sided = self.sided
        return (self.levels.rule is not None and self.levels.exam is not None and len(sided) == 2
                and all(v.logit is not None and np.isfinite(v.logit) for b in sided for v in b.views))

    def breast_logit(self, breast: BreastAnswer) -> float:
        return max(float(v.logit) for v in breast.views)  # type: ignore[arg-type]

    @property
    def deciding(self) -> BreastAnswer:
        if self.ruled:
            return max(self.sided, key=self.breast_logit)
        return max(self.breasts, key=lambda b: b.deciding.rank)

    @property
    def scale(self) -> Level | None:
        return self.levels.exam if self.ruled else self.deciding.deciding.scale

    @property
    def probability(self) -> float:
        if self.ruled:
            return self.levels.rule.probability([self.breast_logit(b) for b in self.sided])  # type: ignore[union-attr]
        return self.deciding.probability

    @property
    def answer(self) -> str:
        """The level's answer, agreeing with its breasts: never 'normal' with a breast flagged, nor 'abnormal'
        with none (training measures the exam with the same rule, `levels.agreeing`)."""
        answer = super().answer
        flagged = any(b.flagged for b in self.breasts)
        if (answer == NORMAL and flagged) or (answer == ABNORMAL and not flagged):
            return UNCLEAR
        return answer

    @property
    def where(self) -> str:
        """'R breast, lower' for a flagged exam ('' otherwise)."""
        if not self.flagged:
            return ""
        breast = self.deciding
        return f"{breast.name}, {breast.where}" if breast.where else breast.name

    @property
    def compared(self) -> bool:
        """Whether any view was read against the other breast."""
        return any(v.compared_with for b in self.breasts for v in b.views)

    def line(self) -> str:
        """'Exam: abnormal — R breast, lower · score 8/10', 'Exam: normal · score 2/10', or
        'Exam: no clear answer (outside training data: ...)'."""
        if self.caveat:
            return f"Exam: {UNCLEAR} ({self.caveat})"
        where = f" — {self.where}" if self.where else ""
        text = answer_text(self.answer, self.score, flagged=self.flagged)
        head, _, rest = text.partition(" · ")
        return f"Exam: {head}{where}" + (f" · {rest}" if rest else "")

    def lines(self) -> list[str]:
        return [self.line(), *(b.line() for b in self.breasts)]


def combine(views: Sequence[ViewAnswer], levels: Levels, bilateral: Bilateral | None = None) -> ExamAnswer:
    """Views of one exam into breasts (R first, then L, then unknown sides) and the exam; with `bilateral`
    and a breast level, each view first read against the other breast (`compare_sides`)."""
    if bilateral is not None and levels.breast is not None:
        views = compare_sides(views, bilateral, levels.breast)
    groups = [tuple(v for v in views if v.laterality == side) for side in ("R", "L")]
    groups += [(v,) for v in views if v.laterality not in ("R", "L")]  # unknown sides are never pooled
    return ExamAnswer(tuple(BreastAnswer(mine[0].laterality if mine[0].laterality in ("R", "L") else None, mine)
                            for mine in groups if mine), levels)


def compare_sides(views: Sequence[ViewAnswer], bilateral: Bilateral, breast: Level) -> list[ViewAnswer]:
    """Each view of a known side read against the other breast's views of its family (their most
    suspicious one) in the same exam, its p then on the `breast` scale; a view without one keeps its own."""
    out = []
    for view in views:
        other_side = {"R": "L", "L": "R"}.get(view.laterality or "")
        others = [o for o in views if other_side is not None and o.laterality == other_side and not o.caveat
                  and view.family is not None and o.family == view.family and o.logit is not None]
        if view.logit is None or view.caveat or not others:
            out.append(view)
            continue
        other = max(others, key=lambda o: o.logit)
        out.append(replace(view, probability=bilateral.probability(view.logit, other.logit), scale=breast,
                           compared_with=other.name, alone=view.probability))
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


def view_answer(image: Image, prediction: Prediction, name: str, levels: Levels,
                anatomy: Anatomy | None = None, outline: BreastOutline | None = None) -> ViewAnswer:
    """What a reader's answer says about this view, on the `levels.view` scale: side, view, p(positive) and
    where its peak is (the image's anatomy and breast outline when known, e.g. from its load; found here
    otherwise)."""
    outline = outline or outline_breast(image)
    anatomy = anatomy or read_anatomy(image, outline)
    above = None
    if prediction.roi_box is not None:
        peak_row = (prediction.roi_box[1] + prediction.roi_box[3]) / 2 * outline.mask.shape[0] / image.shape[0]
        above = above_nipple(outline.mask, anatomy.chest_wall, peak_row)
    caveat = prediction.domain.text() if prediction.domain is not None and not prediction.domain.in_domain else ""
    raw = prediction.raw_probabilities
    return ViewAnswer(f"{anatomy.label} · {name}", anatomy.laterality, anatomy.view,
                      float(prediction.probabilities[-1]), above, prediction.roi_box, caveat,
                      image_logit(raw[-1]) if raw is not None else None, levels.view)
