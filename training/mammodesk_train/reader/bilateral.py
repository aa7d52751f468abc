"""Fitting the comparison of the two breasts (`mammodesk.inference.bilateral`)
on image logits that are out of fold for the head that made them, so the
weights learn how a held-out view's logit behaves, not a training view's."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from mammodesk_train.app import Bilateral


def fit_bilateral(logits: np.ndarray, partners: np.ndarray, y: np.ndarray, index: np.ndarray) -> Bilateral | None:
    """Weights from the images `index` that have a partner (their logits out of fold); None without any."""
    rows = np.array([i for i in index if partners[i] >= 0 and np.isfinite(logits[i]) and np.isfinite(logits[partners[i]])])
    if len(rows) < 4 or len(set(y[rows].tolist())) < 2:
        return None
    model = LogisticRegression(C=1.0, max_iter=1000).fit(np.column_stack([logits[rows], logits[partners[rows]]]),
                                                         y[rows])
    return Bilateral(float(model.coef_[0, 0]), float(model.coef_[0, 1]), float(model.intercept_[0]), threshold=0.5)


def compared_logits(bilateral: Bilateral | None, logits: np.ndarray, partners: np.ndarray,
                    index: np.ndarray) -> np.ndarray:
    """Bilateral logits of the images `index` (NaN for one without a partner, or without weights)."""
    out = np.full(len(index), np.nan)
    if bilateral is None:
        return out
    for row, i in enumerate(index):
        if partners[i] >= 0:
            out[row] = float(bilateral.logit(logits[i], logits[partners[i]]))
    return out
