"""Comparing the two breasts: a radiologist reads a view against the same view
of the other breast, because an abnormality is what one breast has and the
other does not. An image reader's card may carry `mammodesk.bilateral`: a
logistic model on the view's own image logit and the other breast's (same
view family, same exam), with its own calibration and operating point, chosen
in CV like the reader's. A view without a partner keeps its own answer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from mammodesk.inference.calibration import apply_calibration


@dataclass(frozen=True)
class Bilateral:
    own: float  # weight of the view's own image logit
    contralateral: float  # weight of the other breast's
    bias: float
    threshold: float  # the operating point on the calibrated p
    calibration: Mapping[str, Any] | None = None

    @classmethod
    def from_card(cls, data: Mapping[str, Any] | None) -> "Bilateral | None":
        if not data:
            return None
        return cls(float(data["own"]), float(data["contralateral"]), float(data["bias"]), float(data["threshold"]),
                   data.get("calibration"))

    def logit(self, own: np.ndarray | float, other: np.ndarray | float) -> np.ndarray:
        return self.own * np.asarray(own, float) + self.contralateral * np.asarray(other, float) + self.bias

    def probability(self, own: float, other: float) -> float:
        """Calibrated p(abnormal) of a view given both breasts' image logits."""
        p = 1.0 / (1.0 + math.exp(-float(self.logit(own, other))))
        if self.calibration:
            p = float(apply_calibration(self.calibration, np.array([[1.0 - p, p]]))[0, 1])
        return p


def image_logit(raw_probability: float) -> float:
    """An image reader's raw (uncalibrated) p back to its image logit."""
    p = min(max(float(raw_probability), 1e-7), 1.0 - 1e-7)
    return math.log(p / (1.0 - p))
