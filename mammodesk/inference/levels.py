"""One score on one scale at each level a radiologist asks about, and an answer
sized by evidence. An image reader's card may carry `mammodesk.levels`, fitted
by `mammodesk-train reader` on out-of-fold answers at that level only:

- `view`: one view read alone (the reader's calibrated p);
- `breast`: the view read against the same view of the other breast (the
  `bilateral` comparison's p); a breast with several views is its most
  suspicious view's;
- `exam`: a logistic rule on the image logits of the exam's two breasts (their
  maximum and minimum), fitted on out-of-fold logits in nested CV.

Each level holds two thresholds on its p and the score's cut points:
- `flag`: the operating point, chosen for a stated sensitivity: p >= flag is
  flagged (abnormal stays in the level's prediction set);
- `clear`: p > clear is clearly abnormal (normal leaves the prediction set: at
  least the stated share of normal development units lie at or below it);
- between the two the answer is "no clear answer": both labels stay possible
  (class-conditional split-conformal sets, the error rate per class stated);
- `knots`: 9 cut points, the deciles of the normal development units'
  out-of-fold p at that level: score n/10 means the unit scores above n-1
  tenths of normal units (of a screening population, nearly all normal);
  a clearly abnormal answer always scores 9 or 10 (`clear` is at least the
  normal units' 80th percentile).

The normal units of the breast level are the breasts of women with no finding:
a normal breast beside a finding is read against it, scores low, and would
lower the bar a normal woman's breast is held to.

Qt-free and numpy-free: it only reads numbers."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Mapping

LEVELS = ("view", "breast", "exam")
ABNORMAL, NORMAL, UNCLEAR = "abnormal", "normal", "no clear answer"


@dataclass(frozen=True)
class Level:
    name: str
    flag: float
    clear: float
    knots: tuple[float, ...] = ()
    figures: Mapping[str, Any] | None = None  # out-of-fold figures at this level (sensitivity, specificity ...)

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> "Level":
        return cls(name, float(data["flag"]), float(data["clear"]), tuple(float(k) for k in data.get("knots", ())),
                   data.get("figures"))

    def flagged(self, p: float) -> bool:
        return p >= self.flag

    def answer(self, p: float) -> str:
        """'abnormal', 'normal' or 'no clear answer' (both labels possible, or neither)."""
        if p >= self.flag and p > self.clear:
            return ABNORMAL
        if p < self.flag and p <= self.clear:
            return NORMAL
        return UNCLEAR

    def score(self, p: float) -> int | None:
        """1-10: above n-1 tenths of the normal development units' out-of-fold p (None without knots)."""
        return 1 + bisect_right(list(self.knots), p) if self.knots and p == p else None  # p == p: not NaN


@dataclass(frozen=True)
class ExamRule:
    """p(abnormal exam) = sigmoid(w_max * the higher breast's image logit + w_min * the lower's + bias)."""

    w_max: float
    w_min: float
    bias: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExamRule":
        return cls(float(data["w_max"]), float(data["w_min"]), float(data["bias"]))

    def logit(self, breast_logits: list[float] | tuple[float, ...]) -> float:
        high, low = max(breast_logits), min(breast_logits)
        return self.w_max * high + self.w_min * low + self.bias

    def probability(self, breast_logits) -> float:
        import math

        return 1.0 / (1.0 + math.exp(-self.logit(breast_logits)))


@dataclass(frozen=True)
class Levels:
    view: Level
    breast: Level | None = None  # None: the card compares no breasts
    exam: Level | None = None
    rule: ExamRule | None = None
    population: str = ""  # where the figures come from, in words

    @classmethod
    def from_card(cls, data: Mapping[str, Any] | None, threshold: float | None = None) -> "Levels | None":
        """From `mammodesk.levels`; a card without it (older readers) answers at its one operating point,
        with no band and no score."""
        if data:
            get = lambda name: Level.from_dict(name, data[name]) if data.get(name) else None  # noqa: E731
            rule = ExamRule.from_dict(data["exam"]["rule"]) if data.get("exam") and data["exam"].get("rule") \
                else None
            return cls(get("view"), get("breast"), get("exam") if rule else None, rule, str(data.get("population", "")))
        if threshold is None:
            return None
        return cls(Level("view", threshold, threshold))


def check_levels(data: Mapping[str, Any]) -> str | None:
    """Why `mammodesk.levels` is malformed, or None."""
    if not isinstance(data, Mapping) or not data.get("view"):
        return "needs a 'view' level"
    for name in LEVELS:
        level = data.get(name)
        if not level:
            continue
        try:
            flag, clear = float(level["flag"]), float(level["clear"])
            knots = [float(k) for k in level.get("knots", ())]
        except (KeyError, TypeError, ValueError):
            return f"level {name!r} needs numbers flag and clear (and knots)"
        if not (0.0 < flag < 1.0 and 0.0 <= clear <= 1.0):
            return f"level {name!r}: flag and clear are probabilities"
        if knots and (len(knots) != 9 or knots != sorted(knots)):
            return f"level {name!r}: knots are 9 increasing cut points"
        if name == "exam":
            try:
                ExamRule.from_dict(level["rule"])
            except (KeyError, TypeError, ValueError):
                return "level 'exam' needs its rule: numbers w_max, w_min and bias"
    return None
