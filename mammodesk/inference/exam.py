"""The reader's question, answered at every level: per view (one image reader's
answer), per breast (its CC and MLO together) and per study (both breasts),
each with where the most suspicious finding is, in words a radiologist uses.

- A breast's p(abnormal) is the mean of its views' calibrated p (CC and MLO see
  the same breast: a finding seen on both counts twice, one seen on a single
  view is halved, which is how readers weigh it); one view speaks alone.
- A study's p is its most suspicious breast's.
- Where: an MLO view tells upper from lower (above or below the nipple's row),
  a CC view outer from inner (stored with the lateral side up, DICOM's and
  ACR's convention: above the nipple's row is outer). With both, a quadrant.

Qt-free and model-agnostic: it reads `ViewAnswer`s, whatever made them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mammodesk.anatomy import read_anatomy
from mammodesk.inference.results import Prediction
from mammodesk.io import Image
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

    def line(self) -> str:
        """'R breast: suspicious 0.81, upper outer' or 'L breast: no finding 0.07'."""
        verdict = "suspicious" if self.suspicious else "no finding"
        where = f", {self.where}" if self.suspicious and self.where else ""
        return f"{self.name}: {verdict} {self.probability:.2f}{where}"


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

    def line(self) -> str:
        return "; ".join(b.line() for b in self.breasts)


def combine(views: Sequence[ViewAnswer], threshold: float) -> StudyAnswer:
    """Views of one study into breasts (R first, then L, then unknown sides) and the study."""
    breasts = []
    for side in ("R", "L", None):
        mine = tuple(v for v in views if v.laterality == side)
        if mine:
            p = float(np.mean([v.probability for v in mine]))
            breasts.append(BreastAnswer(side, p, mine, p >= threshold))
    return StudyAnswer(tuple(breasts), threshold)


def above_nipple(mask: np.ndarray, chest_wall: str, row: float) -> bool | None:
    """Whether row `row` (in the mask's rows) lies above the nipple's row: the breast mask's row reaching furthest
    from the chest wall (the median of the rows within 2 % of that reach). None without a breast."""
    if not mask.any():
        return None
    oriented = mask if chest_wall == "left" else mask[:, ::-1]
    reach = np.where(oriented.any(axis=1), oriented.shape[1] - 1 - np.argmax(oriented[:, ::-1], axis=1), -1)
    far = np.flatnonzero(reach >= reach.max() - 0.02 * oriented.shape[1])
    return bool(row < float(np.median(far)))


def view_answer(image: Image, prediction: Prediction, name: str) -> ViewAnswer:
    """What a reader's answer says about this view: side, view, p(positive) and where its peak is."""
    outline = outline_breast(image)
    anatomy = read_anatomy(image, outline)
    above = None
    if prediction.roi_box is not None:
        peak_row = (prediction.roi_box[1] + prediction.roi_box[3]) / 2 * outline.mask.shape[0] / image.shape[0]
        above = above_nipple(outline.mask, anatomy.chest_wall, peak_row)
    return ViewAnswer(f"{anatomy.label} · {name}", anatomy.laterality, anatomy.view,
                      float(prediction.probabilities[-1]), above, prediction.roi_box)
