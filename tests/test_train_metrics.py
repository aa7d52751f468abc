"""Metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
from mammodesk_train.metrics import aggregate_folds, classification_metrics  # noqa: E402


def test_binary_metrics_by_hand():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    p1 = np.array([0.1, 0.2, 0.6, 0.3, 0.9, 0.8, 0.4, 0.7, 0.65, 0.2])
    m = classification_metrics(y, np.column_stack([1 - p1, p1]), ["neg", "pos"], bootstrap=200)
    # predictions (threshold 0.5): 0 0 1 0 | 1 1 0 1 1 0 -> TN 3, FP 1, TP 4, FN 2
    assert m["confusion_matrix"] == [[3, 1], [2, 4]]
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["sensitivity"] == pytest.approx(4 / 6) and m["specificity"] == pytest.approx(3 / 4)
    precision_pos, precision_neg = 4 / 5, 3 / 5
    assert m["per_class"]["pos"]["precision"] == pytest.approx(precision_pos)
    f1_pos = 2 * precision_pos * (4 / 6) / (precision_pos + 4 / 6)
    f1_neg = 2 * precision_neg * (3 / 4) / (precision_neg + 3 / 4)
    assert m["f1_weighted"] == pytest.approx((4 * f1_neg + 6 * f1_pos) / 10)
    # AUC = P(score_pos > score_neg) over the 24 pairs; ties count one half
    pairs = [(a > b) + 0.5 * (a == b) for a in p1[y == 1] for b in p1[y == 0]]
    assert m["auc"] == pytest.approx(np.mean(pairs))
    low, high = m["ci95"]["accuracy"]
    assert low <= m["accuracy"] <= high


def test_multiclass_ovr_auc_macro_and_weighted():
    y = np.array([0, 0, 1, 1, 1, 2])
    probs = np.array([[.8, .1, .1], [.3, .6, .1], [.2, .7, .1], [.1, .8, .1], [.5, .3, .2], [.1, .2, .7]])
    m = classification_metrics(y, probs, ["a", "b", "c"], bootstrap=0)
    per_class = [m["per_class"][c]["auc_ovr"] for c in "abc"]
    assert m["auc_macro"] == pytest.approx(np.mean(per_class))
    assert m["auc_weighted"] == pytest.approx((2 * per_class[0] + 3 * per_class[1] + 1 * per_class[2]) / 6)
    assert m["per_class"]["c"]["specificity"] == pytest.approx(1.0)


def test_auc_undefined_with_one_class():
    m = classification_metrics([1, 1], np.array([[.2, .8], [.4, .6]]), ["n", "p"], bootstrap=0)
    assert m["auc"] is None and m["accuracy"] == 1.0


def test_fold_aggregation_uses_sample_sd():
    summary = aggregate_folds([{"accuracy": 0.6, "auc": 0.7}, {"accuracy": 0.8, "auc": 0.9}, {"accuracy": 0.7, "auc": None}])
    assert summary["accuracy"]["mean"] == pytest.approx(0.7)
    assert summary["accuracy"]["sd"] == pytest.approx(0.1)
    assert summary["auc"]["folds"] == [0.7, 0.9]
