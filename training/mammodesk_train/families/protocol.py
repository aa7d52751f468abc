"""What `run_cv`, `explain` and `export` ask of a model family, typed instead of
found by `getattr`. Every family subclasses `FamilyBase` (which holds the
optional parts' defaults) and satisfies `Family`; a test checks each one in
the registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Family(Protocol):
    preset: Any  # the preset it was made from (name, family, spec, schedule)
    device: Any
    accepts_init: bool  # whether `init` (a backbone file from `pretrain`) starts its trunk
    init: Path | None

    def build_samples(self, records: list, task) -> tuple[Any, Any]:
        """(primary samples, secondary samples or None) for these records and task."""

    def train(self, primary, secondary, train_index: np.ndarray, classes: int, seed: int, out: Path) -> Any:
        """A model fitted on `train_index` of the primary samples."""

    def predict(self, model, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N x classes)."""

    def embed(self, model, x: np.ndarray) -> np.ndarray:
        """Penultimate-layer embeddings (N x d), for the domain check."""

    def export(self, model, task, path: Path, training: dict, metrics: dict, name: str, **options) -> Any:
        """The ONNX file of the contract, verified against torch."""


class FamilyBase:
    """The optional parts' defaults: no backbone start, no extra per-fold figures."""

    accepts_init = True
    init: Path | None = None
    extra_metrics = None  # or a method (model, x, y, classes) -> dict of further figures per fold


@dataclass(frozen=True)
class CatalogueEntry:
    """What the app's Models panel says of one task of a family (`resources/models/families.json`)."""
    task: str
    purpose: str  # what it answers, in the reader's words (one short line)
    detail: str = ""  # what it is (the tooltip)
    not_bundled: str | None = None  # a short line when no model of it ships
    why: str = ""  # the measurement behind not_bundled
