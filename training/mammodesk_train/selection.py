"""Nested selection for `run_cv`: which of several candidate presets of one
family to fit, chosen by inner patient-level CV on an outer training fold only,
so the outer test fold never influences the choice it is scored with.

Candidates may differ in anything (trunk, epochs, preprocessing) except the
samples they predict: the same records, in the same order, with the same
labels, so one out-of-fold array holds every fold's answers whichever
candidate each fold chose."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mammodesk_train.families.protocol import Family
from mammodesk_train.metrics import classification_metrics
from mammodesk_train.splits import patient_kfold

INNER_SEED_OFFSET = 1000  # inner folds are drawn with another seed than the outer ones


@dataclass
class Candidate:
    family: Family
    primary: Any  # its samples
    secondary: Any

    @property
    def name(self) -> str:
        return self.family.preset.name


def prepare_candidates(families: list[Family], records: list, task) -> list[Candidate]:
    candidates = []
    for family in families:
        primary, secondary = family.build_samples(records, task)
        candidates.append(Candidate(family, primary, secondary))
    first = candidates[0].primary
    for other in candidates[1:]:
        same = (np.array_equal(other.primary.record_index, first.record_index)
                and np.array_equal(other.primary.y, first.y))
        if not same:
            raise ValueError(f"--select-from: {other.name} predicts other samples than {candidates[0].name} "
                             f"({len(other.primary)} vs {len(first)}); candidates must read the same records "
                             "as the same samples")
    return candidates


def inner_score(y: np.ndarray, probabilities: np.ndarray, classes: tuple[str, ...]) -> float:
    """AUC (macro over classes for more than two) of one inner fold; NaN when a class is missing."""
    value = classification_metrics(y, probabilities, classes, bootstrap=0).get("auc")
    return float("nan") if value is None else float(value)


def choose(candidates: list[Candidate], index: np.ndarray, classes: tuple[str, ...], *, inner_folds: int,
           seed: int, out: Path) -> tuple[Candidate, dict[str, float]]:
    """The candidate with the best mean inner-CV AUC on the samples `index` only (patient-level folds of
    them), and every candidate's score."""
    first = candidates[0].primary
    inner = patient_kfold(first.y[index], first.groups[index], inner_folds, seed + INNER_SEED_OFFSET)
    scores: dict[str, float] = {}
    for candidate in candidates:
        aucs = []
        for fold in inner:
            train, test = index[fold.train], index[fold.test]
            model = candidate.family.train(candidate.primary, candidate.secondary, train, len(classes),
                                           seed + fold.index, out / f"{candidate.name}-inner{fold.index + 1}")
            aucs.append(inner_score(first.y[test], candidate.family.predict(model, candidate.primary.x[test]),
                                    classes))
        scores[candidate.name] = float(np.nanmean(aucs)) if not np.isnan(aucs).all() else float("nan")
        print(f"    inner CV {candidate.name}: AUC {scores[candidate.name]:.3f}", flush=True)
    best = max(candidates, key=lambda c: -np.inf if np.isnan(scores[c.name]) else scores[c.name])
    return best, scores
