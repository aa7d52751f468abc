"""One score per level, its flag and its no-answer band, fitted out of fold at that level only."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from mammodesk.inference.levels import ExamRule, Level, check_levels  # noqa: E402
from mammodesk_train.reader import levels as fitting  # noqa: E402


def _scores(n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    p = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.5 * y - 0.5)))
    return p, y, np.arange(n) % 5


def test_each_folds_thresholds_are_chosen_on_the_other_folds_at_that_level(monkeypatch):
    p, y, fold_of = _scores()
    seen = []
    original = fitting.fit_level

    def recording(name, scores, labels, sensitivity, reference=None):
        seen.append(np.sort(scores))
        return original(name, scores, labels, sensitivity, reference)

    monkeypatch.setattr(fitting, "fit_level", recording)
    figures = fitting.level_figures(p, y, fold_of, base=p[::-1].copy(), sensitivity=0.8)
    assert len(seen) == 5
    for f, used in enumerate(seen):
        np.testing.assert_array_equal(used, np.sort(p[fold_of != f]))  # never the fold it answers
    assert 0.0 <= figures["band_share"] <= 1.0 and figures["units"] == len(y)
    assert figures["comparison"]["model"]["mean"] > figures["comparison"]["baseline"]["mean"]


def test_the_flag_keeps_the_stated_sensitivity_and_clear_answers_keep_the_stated_share_of_normals():
    p, y, _ = _scores(400, seed=1)
    level = fitting.fit_level("view", p, y, 0.8)
    assert (p[y == 1] >= level.flag).mean() >= 0.8
    assert (p[y == 0] <= level.clear).mean() >= fitting.CLEAR_SPECIFICITY  # normal stays possible for 80 %
    assert len(level.knots) == 9 and list(level.knots) == sorted(level.knots)
    scores = np.array([level.score(v) for v in p])
    assert scores.min() == 1 and scores.max() == 10
    assert abs(np.mean(scores[y == 0] <= 5) - 0.5) < 0.02  # score n: above n-1 tenths of the normal units
    assert np.mean(scores[y == 0] >= 9) == pytest.approx(0.2, abs=0.02) and np.mean(scores[y == 1] >= 9) > 0.4


def test_the_breast_levels_normal_reference_is_the_breasts_of_women_with_no_finding():
    """A normal breast beside a finding is read against it and scores low: it must not lower the bar that
    normal women's breasts are held to."""
    rng = np.random.default_rng(3)
    women = 300
    finding = rng.random(women) < 0.5  # one breast with a finding, the other normal beside it
    groups = np.repeat(np.arange(women).astype(str), 2)
    sides = ["R", "L"] * women
    y = np.zeros(2 * women, int)
    y[0::2] = finding
    p = rng.beta(2, 5, 2 * women)
    p[0::2][finding] += 0.3
    p[1::2][finding] *= 0.4  # the contralateral normal breast, pushed down by the comparison
    scores, labels, first, reference = fitting.breast_table(p, y, groups, sides, np.ones(2 * women, bool))
    np.testing.assert_array_equal(reference, np.repeat(~finding, 2))
    np.testing.assert_array_equal(labels, y)
    level = fitting.fit_level("breast", scores, labels, 0.8, reference)
    normal_women = scores[reference]
    assert np.mean(normal_women <= level.clear) >= fitting.CLEAR_SPECIFICITY
    assert level.clear == fitting.clear_point(normal_women)
    pooled = fitting.fit_level("breast", scores, labels, 0.8)  # every normal breast: a lower bar
    assert pooled.clear < level.clear and np.mean(normal_women <= pooled.clear) < fitting.CLEAR_SPECIFICITY - 0.03
    fold_of = (np.arange(len(labels)) // 2) % 5  # a woman's two breasts in one fold
    figures = fitting.level_figures(scores, labels, fold_of, base=scores[::-1].copy(), sensitivity=0.8,
                                    reference=reference)
    assert figures["reference"]["normal_units"] == int(reference.sum())
    assert figures["coverage_normal"] >= fitting.CLEAR_SPECIFICITY - 0.05  # held out of fold, over normal women
    few = reference & (np.cumsum(reference) <= fitting.MIN_REFERENCE - 1)  # too few normal women: every normal breast
    assert fitting.fit_level("breast", scores, labels, 0.8, few) == pooled
    assert "reference" not in fitting.level_figures(scores, labels, fold_of, scores[::-1].copy(), 0.8, reference=few)


def test_the_exam_rule_is_fitted_on_exams_and_weighs_the_higher_breast_most():
    rng = np.random.default_rng(2)
    n = 200
    y = (rng.random(n) < 0.5).astype(int)
    high = rng.normal(0, 1, n) + 2 * y
    features = np.column_stack([np.maximum(high, high - 1), high - 1 - rng.random(n)])
    rule, chosen = fitting.fit_exam_rule(features, y, 0)
    assert chosen in fitting.RULES and rule.w_max > 0
    assert fitting.fit_exam_rule(features[:3], np.array([0, 1, 1]), 0) is None  # one normal exam: no rule
    groups = np.array(["a", "a", "b", "b", "c"])
    keys, table, labels = fitting.exam_table(np.array([1.0, -1.0, 0.5, 2.0, 3.0]), np.array([1, 0, 0, 0, 1]),
                                             groups, ["R", "L", "R", "L", "R"])
    assert keys == ["a", "b"] and table.tolist() == [[1.0, -1.0], [2.0, 0.5]] and labels.tolist() == [1, 0]


def test_the_card_refuses_levels_it_cannot_apply():
    good = {"view": {"flag": 0.3, "clear": 0.5, "knots": list(np.linspace(0.1, 0.9, 9))},
            "exam": {"flag": 0.4, "clear": 0.6, "knots": [], "rule": {"w_max": 1.0, "w_min": 0.0, "bias": 0.0}}}
    assert check_levels(good) is None
    assert "view" in check_levels({"exam": good["exam"]})
    assert "knots" in check_levels({"view": {**good["view"], "knots": [0.5, 0.1]}})
    assert "rule" in check_levels({**good, "exam": {"flag": 0.4, "clear": 0.6}})
    assert "probabilities" in check_levels({"view": {"flag": 1.5, "clear": 0.5}})
    assert ExamRule(1.0, 0.5, 0.0).logit([2.0, -1.0]) == pytest.approx(2.0 - 0.5)
    assert Level("x", 0.5, 0.5).answer(0.5) == "no clear answer"
