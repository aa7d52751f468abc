"""The one outer cross-validation loop of every training protocol (`cv.run_cv` for the sample families,
`reader.fit.nested_cv` for the whole-mammogram reader): patient-level folds of one seed, each fitted by the
protocol's own `fit_fold` (its inner selection included) or taken from where a stopped run kept it, and the
plain baseline in the very same folds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from mammodesk_train.app import duration

from mammodesk_train import baseline, kept
from mammodesk_train.splits import Fold


def kept_folds(splits: list[Fold], fit_fold: Callable[[Fold], dict], path_of: Callable[[Fold], Path | None],
               key: str, *, resume: bool = True) -> Iterator[tuple[Fold, dict, bool]]:
    """(fold, result, fitted now) for each outer fold in turn. A fold kept under `key` at `path_of(fold)` is
    read back (with `resume`); any other is fitted and kept there (by the first rank alone under torchrun,
    atomically), so a stopped run continues at the fold it was in and never mixes in another run's folds.
    A result is always as it reads back from disk (`kept.plain`): a fold fitted now and a kept one report
    alike."""
    from mammodesk_train.engine import distributed

    for fold in splits:
        path = path_of(fold)
        result = kept.load(path, key) if resume else None
        if result is not None:
            yield fold, result, False
            continue
        result = kept.plain(fit_fold(fold))
        if distributed()[0] == 0:
            kept.keep(path, key, result)
        yield fold, result, True


class FoldClock:
    """"X so far, about Y left" over a seed's outer folds, at the rate of the folds fitted in this run (a fold
    read back from disk costs nothing)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.fitted = total, 0, 0
        self.started = time.perf_counter()

    def tick(self, fitted: bool) -> str:
        self.done += 1
        self.fitted += fitted
        elapsed = time.perf_counter() - self.started
        text = f"{duration(elapsed)} so far"
        if self.done < self.total and self.fitted:
            text += f", about {duration(elapsed / self.fitted * (self.total - self.done))} left for this seed"
        return text


def baseline_out_of_fold(features: np.ndarray, y: np.ndarray, splits: list[Fold], classes: int) -> np.ndarray:
    """The plain baseline's held-out probabilities (N x classes), each fold's fitted on its training rows."""
    out = np.full((len(y), classes), np.nan)
    for fold in splits:
        out[fold.test] = baseline.fit_predict(features, y, fold.train, fold.test, classes)
    return out
