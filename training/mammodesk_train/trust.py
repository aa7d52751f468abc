"""What makes an answer trustworthy, fitted from a CV run: the calibration of
its probabilities (on out-of-fold predictions, the method chosen by CV) and
the record of the training domain that the engine's domain check reads.

Calibration is measured honestly: each fold's predictions are calibrated by a
map chosen and fitted on the other folds' out-of-fold predictions, so the ECE
"after" is itself out-of-sample. The shipped calibration is then chosen and
fitted on all of them."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from mammodesk_train.app import apply_calibration, logit
from mammodesk_train.app import EmbeddingModel, check_domain, summarise_acquisition
from mammodesk_train.app import input_ranges as ranges_of_statistics

from mammodesk_train.splits import Fold

BINS = 10


def fit_method(method: str, probs: np.ndarray, y: np.ndarray) -> dict:
    if method == "temperature":
        log_p = np.log(np.clip(probs, 1e-6, 1.0))

        def nll(log_t: float) -> float:
            scaled = log_p / np.exp(log_t)
            scaled -= scaled.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(scaled).sum(axis=1))
            return float(-(scaled[np.arange(len(y)), y] - log_norm).mean())

        result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
        return {"method": "temperature", "temperature": float(np.exp(result.x))}
    if method == "platt":
        model = LogisticRegression(C=1e6, max_iter=1000).fit(logit(probs[:, 1])[:, None], y)
        return {"method": "platt", "a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}
    if method == "isotonic":
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(probs[:, 1], y)
        return {"method": "isotonic", "x": [float(v) for v in model.X_thresholds_],
                "y": [float(v) for v in model.y_thresholds_]}
    raise ValueError(f"unknown calibration method {method!r}")


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-6, 1.0)).mean())


def ece(probs: np.ndarray, y: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error of the top-label confidence, equal-width bins."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return float(sum(abs(confidence[index == b].mean() - correct[index == b].mean()) * (index == b).mean()
                     for b in range(bins) if (index == b).any()))


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per confidence bin: mean confidence, accuracy and count (the reliability diagram)."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return [{"low": float(edges[b]), "high": float(edges[b + 1]), "count": int((index == b).sum()),
             "confidence": float(confidence[index == b].mean()) if (index == b).any() else None,
             "accuracy": float(correct[index == b].mean()) if (index == b).any() else None}
            for b in range(bins)]


def cross_calibrated(method: str, probs: np.ndarray, y: np.ndarray, folds: Sequence[Fold]) -> np.ndarray:
    """Each fold's out-of-fold predictions calibrated by a map fitted on the other folds'."""
    out = np.empty_like(probs)
    for fold in folds:
        out[fold.test] = apply_calibration(fit_method(method, probs[fold.train], y[fold.train]), probs[fold.test])
    return out


def methods_for(probs: np.ndarray) -> tuple[str, ...]:
    return ("platt", "isotonic") if probs.shape[1] == 2 else ("temperature",)


def choose_method(probs: np.ndarray, y: np.ndarray, folds: Sequence[Fold]) -> tuple[str | None, dict, dict]:
    """(the method with the lowest cross-validated log loss, or None when no map beats the raw
    probabilities; every method's loss; every method's cross-calibrated probabilities)."""
    calibrated = {m: cross_calibrated(m, probs, y, folds) for m in methods_for(probs)}
    losses = {"uncalibrated": log_loss(probs, y), **{m: log_loss(p, y) for m, p in calibrated.items()}}
    chosen = min(calibrated, key=losses.get)
    return (chosen if losses[chosen] < losses["uncalibrated"] else None), losses, calibrated


def nested_calibrated(probs: np.ndarray, y: np.ndarray, folds: Sequence[Fold]) -> tuple[np.ndarray, list]:
    """Each fold's predictions calibrated by the method chosen on the other folds alone (by their own
    cross-validated log loss) and fitted on them: the choice never sees the fold it is measured on."""
    out = probs.copy()
    chosen_per_fold = []
    for fold in folds:
        train = np.asarray(fold.train)
        position = {index: i for i, index in enumerate(train.tolist())}
        inner = []
        for other in folds:
            if other.index != fold.index:
                test = np.array([position[i] for i in other.test.tolist()])
                inner.append(Fold(other.index, np.setdiff1d(np.arange(len(train)), test), test))
        method, _, _ = choose_method(probs[train], y[train], inner)
        chosen_per_fold.append(method)
        if method is not None:
            out[fold.test] = apply_calibration(fit_method(method, probs[train], y[train]), probs[fold.test])
    return out, chosen_per_fold


def calibrate(probs: np.ndarray, y: np.ndarray, folds: Sequence[Fold]) -> dict:
    """Choose the method by cross-validated log loss (Platt or isotonic for two classes, temperature
    otherwise) and fit it on everything. The ECE "after" is nested: each fold calibrated by the method
    the other folds chose, fitted on them, so neither the choice nor the map saw it."""
    chosen, losses, calibrated = choose_method(probs, y, folds)
    if len(folds) >= 3:
        nested, per_fold = nested_calibrated(probs, y, folds)
    else:  # one other fold cannot be cross-validated: the method is the one chosen on all folds (not nested)
        nested, per_fold = (probs if chosen is None else calibrated[chosen]), ["not nested: fewer than 3 folds"]
    common = {"log_loss": losses, "log_loss_nested": log_loss(nested, y), "ece_before": ece(probs, y),
              "reliability_before": reliability(probs, y), "chosen_per_fold": per_fold,
              "ece_nested": ece(nested, y)}
    if chosen is None:  # no map helps out of fold: ship the raw probabilities
        return {"calibration": None, "chosen_by": "cross-validated log loss (no map beat the raw probabilities)",
                **common, "ece_after": ece(probs, y), "reliability_after": reliability(probs, y)}
    return {"calibration": fit_method(chosen, probs, y), "chosen_by": "cross-validated log loss", **common,
            "ece_after": ece(nested, y), "reliability_after": reliability(nested, y)}


def input_ranges(x: np.ndarray) -> dict:
    """0.5th-99.5th percentile of each sample's processed-input mean and sd."""
    flat = x.reshape(len(x), -1)
    return ranges_of_statistics(np.column_stack([flat.mean(axis=1), flat.std(axis=1)]))


def domain_record(metas, x: np.ndarray, embeddings: np.ndarray | None, assumed_spacing_mm: float | None) -> dict:
    record = {"acquisition": summarise_acquisition(metas, assumed_spacing_mm), "input": input_ranges(x)}
    if embeddings is not None:
        record["embedding"] = EmbeddingModel.fit(embeddings).to_dict()
    return record


def flag_rate(record: dict, metas, x: np.ndarray, embeddings: np.ndarray | None) -> tuple[float, dict[str, int]]:
    """Share of samples the engine's domain check would flag, and why, under `record`."""
    model = EmbeddingModel.from_dict(record["embedding"]) if "embedding" in record else None
    reasons: dict[str, int] = {}
    flagged = 0
    for i, meta in enumerate(metas):
        result = check_domain(record, meta, x[i], None if embeddings is None else embeddings[i:i + 1], model)
        flagged += not result.in_domain
        for reason in result.reasons:
            key = reason.split(" ")[0] if reason[0].isdigit() else reason.split(" (")[0].split(" outside")[0]
            reasons[key] = reasons.get(key, 0) + 1
    return flagged / max(1, len(metas)), reasons
