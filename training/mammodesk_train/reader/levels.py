"""Fitting and measuring the reader's answer at each level (`mammodesk.inference.levels`)
on out-of-fold answers at that level only.

- Units: a view is an image; a breast a woman's side (the view read against
  the other breast; a breast with several views takes its most suspicious
  view); an exam a woman's images (one exam per patient key, as MIAS has).
- The exam rule: logistic on the two breasts' image logits (their maximum,
  and optionally their minimum: which of the two is chosen by 3-fold CV over
  the exams it is fitted on). In the nested evaluation it is fitted on each
  outer training fold's inner out-of-fold logits, never on the fold it answers.
- Thresholds: `flag` for the stated sensitivity, `clear` so that at least
  CLEAR_SPECIFICITY of normal units lie at or below it. In the tables each
  fold's two thresholds are chosen on the other folds' out-of-fold answers.
- The normal reference (`clear`, the score's knots, specificity): every normal
  view or exam; at the breast level the breasts of women with no finding. A
  normal breast beside a finding is read against that finding's breast, which
  pushes its p down: on MIAS half the normal breasts are such, and with them in
  the reference 25 % of normal women's breasts, not the stated 20 %, scored
  "clearly abnormal". A screening population is nearly all normal women."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from mammodesk_train.app import ABNORMAL, NORMAL, UNCLEAR, ExamRule, Level

from mammodesk_train import baseline
from mammodesk_train.splits import Fold

CLEAR_SPECIFICITY = 0.80  # a clear 'abnormal' leaves at most 20 % of normal units above it (conformal, per class)
RULES = ("max", "max_min")
MIN_REFERENCE = 10  # normal units a reference needs to set thresholds and deciles on


def operating_point(p: np.ndarray, y: np.ndarray, sensitivity: float) -> float:
    """The highest threshold whose sensitivity on (p, y) reaches `sensitivity`."""
    positives = np.sort(p[y == 1])[::-1]
    needed = int(np.ceil(sensitivity * len(positives)))
    return float(positives[max(0, needed - 1)]) if len(positives) else 0.5


def clear_point(normals: np.ndarray, specificity: float = CLEAR_SPECIFICITY) -> float:
    """The lowest threshold with at least `specificity` of the normal units' p at or below it (the
    split-conformal quantile with its finite-sample correction: rank ceil((n + 1) * specificity) of n)."""
    negatives = np.sort(normals)
    if not len(negatives):
        return 1.0
    rank = min(len(negatives), int(np.ceil((len(negatives) + 1) * specificity)))
    return float(negatives[rank - 1])


def knots(p: np.ndarray) -> list[float]:
    """The score's cut points: the deciles of the normal units' out-of-fold p. Score n/10 then reads the same
    whatever the share of abnormal units in the development data: above (n-1) tenths of normal exams (a
    screening population is nearly all normal), and 9 or 10 where at most a fifth of normals reach."""
    return [float(v) for v in np.quantile(p, np.arange(1, 10) / 10)]


def uses_reference(y: np.ndarray, reference: np.ndarray | None) -> bool:
    """Whether `reference` holds enough normal units to set a level's thresholds and deciles on."""
    return reference is not None and int(((y == 0) & reference).sum()) >= MIN_REFERENCE


def normal_reference(y: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """The normal units a level's `clear`, knots and specificity are read from: `reference`'s normal units;
    every normal unit without one, or where it holds fewer than MIN_REFERENCE (a data set of women who nearly
    all have a finding)."""
    return (y == 0) & reference if uses_reference(y, reference) else y == 0


def fit_level(name: str, p: np.ndarray, y: np.ndarray, sensitivity: float,
              reference: np.ndarray | None = None) -> Level:
    normals = p[normal_reference(y, reference)]
    return Level(name, operating_point(p, y, sensitivity), clear_point(normals), tuple(knots(normals)) if len(normals)
                 else ())


def level_dict(level: Level, figures: dict | None = None) -> dict:
    return {"flag": level.flag, "clear": level.clear, "knots": list(level.knots), "figures": figures}


# --- exams ------------------------------------------------------------------------------------------------------

def exams(groups: np.ndarray, sides: list, index: np.ndarray | None = None) -> dict[str, dict[str, list[int]]]:
    """Per exam (patient key), its images by side ('R', 'L'; unknown sides left out), over `index`."""
    out: dict[str, dict[str, list[int]]] = {}
    for i in (range(len(groups)) if index is None else index):
        if sides[i] in ("R", "L"):
            out.setdefault(str(groups[i]), {}).setdefault(sides[i], []).append(int(i))
    return out


def exam_table(logits: np.ndarray, y: np.ndarray, groups: np.ndarray, sides: list,
               index: np.ndarray | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Exams with both breasts read: their keys, (max, min) of the breasts' image logits (a breast: its
    highest view) and the exam label (any abnormal image)."""
    keys, features, labels = [], [], []
    for key, by_side in exams(groups, sides, index).items():
        if set(by_side) != {"R", "L"}:
            continue
        breast = [max(logits[i] for i in by_side[s]) for s in ("R", "L")]
        if not np.isfinite(breast).all():
            continue
        keys.append(key)
        features.append((max(breast), min(breast)))
        labels.append(int(max(y[i] for s in by_side.values() for i in s)))
    return keys, np.array(features, float).reshape(-1, 2), np.array(labels, int)


def _fit(features: np.ndarray, y: np.ndarray, rule: str) -> ExamRule:
    columns = features if rule == "max_min" else features[:, :1]
    model = LogisticRegression(C=1.0, max_iter=1000).fit(columns, y)
    w = model.coef_[0]
    return ExamRule(float(w[0]), float(w[1]) if rule == "max_min" else 0.0, float(model.intercept_[0]))


def fit_exam_rule(features: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[ExamRule, str] | None:
    """The rule chosen by 3-fold CV AUC over these exams (ties: the simpler), refitted on all of them; with
    fewer than 3 exams of a class, the maximum alone. None with fewer than 2."""
    smaller = int(min(np.bincount(y, minlength=2))) if len(y) else 0
    if smaller < 2:
        return None
    if smaller < 3:
        return _fit(features, y, "max"), "max"
    split = StratifiedKFold(3, shuffle=True, random_state=seed)
    scores = {}
    for rule in RULES:
        aucs = []
        for train, test in split.split(features, y):
            fitted = _fit(features[train], y[train], rule)
            z = np.array([fitted.logit(list(f)) for f in features[test]])
            aucs.append(roc_auc_score(y[test], z) if len(set(y[test].tolist())) == 2 else np.nan)
        scores[rule] = float(np.nanmean(aucs))
    best = max(RULES, key=lambda r: (scores[r], -RULES.index(r)))
    return _fit(features, y, best), best


def exam_logits(rule: ExamRule, features: np.ndarray) -> np.ndarray:
    return np.array([rule.logit(list(f)) for f in features], float)


# --- figures ----------------------------------------------------------------------------------------------------

def cross_answers(p: np.ndarray, y: np.ndarray, fold_of: np.ndarray, sensitivity: float,
                  reference: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Each unit's flag and answer at thresholds chosen on the other folds' out-of-fold answers."""
    flagged = np.zeros(len(y), bool)
    answer = np.empty(len(y), object)
    for f in sorted(set(fold_of.tolist())):
        test, train = fold_of == f, fold_of != f
        level = fit_level("", p[train], y[train], sensitivity, None if reference is None else reference[train])
        flagged[test] = p[test] >= level.flag
        answer[test] = [level.answer(float(v)) for v in p[test]]
    return flagged, answer


def agreeing(answer: np.ndarray, any_breast_flagged: np.ndarray) -> np.ndarray:
    """An exam's answer as the app gives it (`ExamAnswer.answer`): 'normal' with a breast flagged, or 'abnormal'
    with none, becomes 'no clear answer'."""
    out = answer.copy()
    out[(answer == NORMAL) & any_breast_flagged] = UNCLEAR
    out[(answer == ABNORMAL) & ~any_breast_flagged] = UNCLEAR
    return out


def level_figures(p: np.ndarray, y: np.ndarray, fold_of: np.ndarray, base: np.ndarray, sensitivity: float,
                  any_breast_flagged: np.ndarray | None = None, reference: np.ndarray | None = None) -> dict:
    """Out-of-fold figures at one level: AUC against the plain baseline in the same folds; at thresholds each
    chosen on the other folds: sensitivity and specificity of the flag, the band's share, the clear answers'
    error rate and the share of each class whose own label stays possible (conformal coverage). Exams:
    `any_breast_flagged` (per exam, at the breast level's own cross-fitted thresholds) makes the answers agree
    with their breasts, as the app does. With a `reference` (`normal_reference`), the thresholds are fitted
    on it, specificity and the normal units' coverage are counted over it, and `reference` gives its pooled
    AUC (abnormal units against its normal ones) beside the baseline's."""
    flagged, answer = cross_answers(p, y, fold_of, sensitivity, reference)
    if any_breast_flagged is not None:
        answer = agreeing(answer, any_breast_flagged)
    folds = sorted(set(fold_of.tolist()))
    clear = answer != "no clear answer"
    truth = np.where(y == 1, ABNORMAL, NORMAL)
    auc_of = lambda s: [{"auc": _auc(y[fold_of == f], s[fold_of == f])} for f in folds]  # noqa: E731
    possible = (answer == truth) | ~clear
    normals = normal_reference(y, reference)
    screened = (y == 1) | normals
    units = "normal units" if not uses_reference(y, reference) else "breasts of women with no finding"
    return {"units": int(len(y)), "abnormal": int(y.sum()),
            "comparison": baseline.compare(auc_of(p), auc_of(base)),
            "pooled_auc": _auc(y, p), "baseline_pooled_auc": _auc(y, base),
            "sensitivity": float(flagged[y == 1].mean()), "specificity": float((~flagged[normals]).mean()),
            "band_share": float((~clear).mean()),
            "clear_error_rate": float((answer[clear] != truth[clear]).mean()) if clear.any() else None,
            "coverage_abnormal": float(possible[y == 1].mean()), "coverage_normal": float(possible[normals].mean()),
            **({} if not uses_reference(y, reference) else {"reference": {
                "normal_units": int(normals.sum()), "pooled_auc": _auc(y[screened], p[screened]),
                "baseline_pooled_auc": _auc(y[screened], base[screened]),
                "specificity_all_normal_units": float((~flagged[y == 0]).mean())}}),
            "how": f"thresholds of each fold chosen on the other folds' out-of-fold answers: the flag for "
                   f"sensitivity {sensitivity:.2f}, 'clearly abnormal' above {CLEAR_SPECIFICITY:.0%} of the {units}; "
                   f"specificity and the normal coverage over the {units}, the band and the clear answers over "
                   "every unit"}


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if len(set(y.tolist())) == 2 else float("nan")


def fold_index(folds: list[Fold], n: int) -> np.ndarray:
    out = np.full(n, -1)
    for fold in folds:
        out[fold.test] = fold.index
    return out


def exam_base_scores(base: np.ndarray, keys: list[str], groups: np.ndarray, sides: list) -> np.ndarray:
    """The plain baseline at the exam level: its most suspicious image's p."""
    by_key = exams(groups, sides)
    return np.array([max(base[i] for s in by_key[k].values() for i in s) for k in keys], float)


def exam_folds(keys: list[str], groups: np.ndarray, fold_of_image: np.ndarray) -> np.ndarray:
    first = {}
    for i, g in enumerate(groups):
        first.setdefault(str(g), fold_of_image[i])
    return np.array([first[k] for k in keys])


def breast_table(scores: np.ndarray, y: np.ndarray, groups: np.ndarray, sides: list,
                 mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Breasts (a woman's side) of the images in `mask`: their most suspicious view's score, the breast label
    (any abnormal view), one image of each (for its fold) and whether its woman has no finding in any image
    (the breast level's normal reference)."""
    by_breast: dict[tuple, list[int]] = {}
    for i in np.flatnonzero(mask):
        if sides[i] in ("R", "L"):
            by_breast.setdefault((str(groups[i]), sides[i]), []).append(int(i))
    members = list(by_breast.values())
    with_finding = {str(g) for g, label in zip(groups, y) if label}
    return (np.array([max(scores[i] for i in m) for m in members], float),
            np.array([max(y[i] for i in m) for m in members], int), np.array([m[0] for m in members], int),
            np.array([key[0] not in with_finding for key in by_breast], bool))


def evaluate_levels(cv: dict, y: np.ndarray, groups: np.ndarray, sides: list, partners: np.ndarray,
                    base_one: np.ndarray, base_both: np.ndarray | None, sensitivity: float) -> dict:
    """The table per level (view, breast, exam) of one fold seed's nested CV."""
    fold_of = fold_index(cv["folds"], len(y))
    sigmoid = lambda z: 1.0 / (1.0 + np.exp(-np.asarray(z, float)))  # noqa: E731
    out = {"view": level_figures(sigmoid(cv["oof_logits"]), y, fold_of, base_one, sensitivity)}
    paired = (partners >= 0) & np.isfinite(cv["oof_bilateral_logits"])
    breast_flags: dict[str, bool] = {}  # per exam: a breast flagged at the breast level (the app's agreement)
    if base_both is not None and paired.mean() >= 0.5:
        p, labels, first, reference = breast_table(sigmoid(np.nan_to_num(cv["oof_bilateral_logits"])), y, groups,
                                                   sides, paired)
        base = breast_table(base_both, y, groups, sides, paired)[0]
        out["breast"] = level_figures(p, labels, fold_of[first], base, sensitivity, reference=reference)
        flagged, _ = cross_answers(p, labels, fold_of[first], sensitivity, reference)
        for image, flag in zip(first, flagged):
            breast_flags[str(groups[image])] = breast_flags.get(str(groups[image]), False) or bool(flag)
    keys = [k for k in exams(groups, sides) if k in cv["oof_exam_logits"]]
    if keys:
        exam_y = np.array([max(y[i] for s in exams(groups, sides)[k].values() for i in s) for k in keys])
        p = sigmoid([cv["oof_exam_logits"][k] for k in keys])
        out["exam"] = level_figures(p, exam_y, exam_folds(keys, groups, fold_of), exam_base_scores(
            base_both if base_both is not None else base_one, keys, groups, sides), sensitivity,
            np.array([breast_flags.get(k, False) for k in keys]) if breast_flags else None)
    return out
