"""Classification metrics for honest reports: accuracy, per-class and weighted
precision/recall/F1, sensitivity/specificity, AUC (binary, and one-vs-rest
macro and weighted), confusion matrix, bootstrap 95% intervals, and mean ±
sd over folds."""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

SUMMARY_KEYS = ("accuracy", "auc", "auc_macro", "auc_weighted", "f1_weighted", "precision_weighted",
                "recall_weighted", "sensitivity", "specificity")


def classification_metrics(y_true: Sequence[int], probs: np.ndarray, classes: Sequence[str], *,
                           bootstrap: int = 1000, seed: int = 0) -> dict:
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    k = len(classes)
    y_pred = probs.argmax(axis=1)
    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    specificity = [_specificity(cm, c) for c in labels]
    weights = support / max(1, support.sum())
    result: dict = {
        "n": int(len(y_true)),
        "classes": list(classes),
        "accuracy": float((y_pred == y_true).mean()),
        "precision_weighted": float((precision * weights).sum()),
        "recall_weighted": float((recall * weights).sum()),
        "f1_weighted": float((f1 * weights).sum()),
        "per_class": {name: {"precision": float(precision[c]), "recall": float(recall[c]),
                             "sensitivity": float(recall[c]), "specificity": specificity[c],
                             "f1": float(f1[c]), "support": int(support[c]),
                             "auc_ovr": _auc_one(y_true == c, probs[:, c])}
                      for c, name in enumerate(classes)},
        "confusion_matrix": cm.tolist(),
    }
    result.update(_aucs(y_true, probs, k))
    if k == 2:  # the positive class is the second label
        result["sensitivity"] = float(recall[1])
        result["specificity"] = specificity[1]
    if bootstrap:
        result["ci95"] = _bootstrap(y_true, probs, k, bootstrap, seed)
    return result


def _specificity(cm: np.ndarray, c: int) -> float:
    tn = cm.sum() - cm[c, :].sum() - cm[:, c].sum() + cm[c, c]
    fp = cm[:, c].sum() - cm[c, c]
    return float(tn / (tn + fp)) if tn + fp else float("nan")


def _auc_one(positive: np.ndarray, score: np.ndarray) -> float | None:
    if positive.all() or not positive.any():
        return None  # undefined with one class present
    return float(roc_auc_score(positive, score))


def _aucs(y_true: np.ndarray, probs: np.ndarray, k: int) -> dict:
    present = np.unique(y_true)
    if len(present) < 2:
        return {"auc": None, "auc_macro": None, "auc_weighted": None}
    if k == 2:
        auc = float(roc_auc_score(y_true, probs[:, 1]))
        return {"auc": auc, "auc_macro": auc, "auc_weighted": auc}
    per_class = [_auc_one(y_true == c, probs[:, c]) for c in range(k)]
    valid = [(a, (y_true == c).sum()) for c, a in enumerate(per_class) if a is not None]
    macro = float(np.mean([a for a, _ in valid]))
    weighted = float(sum(a * n for a, n in valid) / sum(n for _, n in valid))
    return {"auc": macro, "auc_macro": macro, "auc_weighted": weighted}


def _bootstrap(y_true: np.ndarray, probs: np.ndarray, k: int, rounds: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {"accuracy": [], "auc": [], "f1_weighted": []}
    n = len(y_true)
    for _ in range(rounds):
        pick = rng.integers(0, n, n)
        y, p = y_true[pick], probs[pick]
        values["accuracy"].append(float((p.argmax(1) == y).mean()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, _, f1, support = precision_recall_fscore_support(y, p.argmax(1), labels=list(range(k)),
                                                                zero_division=0)
        values["f1_weighted"].append(float((f1 * support).sum() / max(1, support.sum())))
        auc = _aucs(y, p, k)["auc"]
        if auc is not None:
            values["auc"].append(auc)
    return {key: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v else None
            for key, v in values.items()}


def aggregate_folds(fold_metrics: Sequence[dict]) -> dict:
    """mean, sd (sample, ddof=1) and per-fold values of each summary metric."""
    summary = {}
    for key in SUMMARY_KEYS:
        values = [m[key] for m in fold_metrics if m.get(key) is not None]
        if values:
            summary[key] = {"mean": float(np.mean(values)),
                            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                            "folds": [float(v) for v in values]}
    return summary


def format_mean_sd(summary: dict, key: str) -> str:
    if key not in summary:
        return "n/a"
    return f"{summary[key]['mean']:.3f} ± {summary[key]['sd']:.3f}"
