"""What `mammodesk-train fit`, `explain` and `export` ask of a model family, typed instead of found by
`getattr`. Every family subclasses `FamilyBase` and satisfies `Family`: its training protocol
(`evaluate`, a run folder from records) and the way from that folder to a shipped ONNX file and card
(`run_comparison`, `export_run`). Most families classify samples (images or ROIs) and take `FamilyBase`'s
protocol, `cv.run_cv`, which asks them for the parts of `SampleFamily`; the whole-mammogram reader brings its
own (`families/reader.py`: two fold seeds, answers per view, breast and exam). A test checks each family in
the registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class RunOptions:
    """How `fit` was asked to run: the data (as given), the patient-level folds and their seed, the run folder,
    and the choices only some protocols offer (a final model, candidate presets to choose among)."""
    data: str
    folds: int
    seed: int
    out: Path
    resume: bool = False
    final: bool = True
    alternatives: tuple = ()  # other families (presets) each outer fold may choose instead, in inner CV
    select_folds: int = 3
    second_seed: int | None = None  # a second fold seed, reported too, by a protocol that reports two


@runtime_checkable
class Family(Protocol):
    preset: Any  # the preset it was made from (name, family, spec, schedule)
    device: Any
    accepts_init: bool  # whether `init` (a backbone file from `pretrain`) starts its trunk
    init: Path | None

    def check(self, options: RunOptions) -> None:
        """Refuse (ValueError) options its protocol does not offer, before any data is read."""

    def evaluate(self, records: list, task, options: RunOptions) -> dict:
        """The training protocol: patient-level CV against the plain baseline, the shipped model, written to
        `options.out`; returns what `fit` prints."""

    def summary(self, document: dict, out: Path) -> list[str]:
        """What `fit` prints when `evaluate` is done."""

    def run_comparison(self, run: Path) -> dict:
        """The run's comparison with the plain baseline (`baseline.compare`), that export's refusal reads."""

    def export_run(self, run: Path, path: Path, name: str, notes: list[str] = ()) -> str:
        """The run's shipped model as the contract's ONNX file at `path`, verified, and its model card beside
        it; returns one line on what was written."""


@runtime_checkable
class SampleFamily(Family, Protocol):
    """The parts `cv.run_cv`, `explain` and the sample export ask of a family that classifies samples."""

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
    """The sample families' protocol (`cv.run_cv` and its run folder's export) and the optional parts'
    defaults: no backbone start, no extra per-fold figures."""

    accepts_init = True
    init: Path | None = None
    tasks: tuple[str, ...] | None = None  # the tasks it can learn (`fit --task`); None: any
    kept_on_stop = ("Kept: the finished folds in --out; run the same command again with --resume and none of them "
                    "is fitted again.")  # what `fit` says when Ctrl+C stops it
    extra_metrics = None  # or a method (model, x, y, classes) -> dict of further figures per fold

    def check(self, options: RunOptions) -> None:
        if options.second_seed is not None:
            raise ValueError("--second-seed: this family's protocol reports one fold seed (the reader's two)")
        own = [a.preset.name for a in options.alternatives if type(a).evaluate is not FamilyBase.evaluate]
        if own:
            raise ValueError(f"--select-from: {', '.join(own)} trains by a protocol of its own, not one to choose "
                             "in the inner folds of this one")

    def evaluate(self, records: list, task, options: RunOptions) -> dict:
        from mammodesk_train.cv import run_cv

        self.check(options)
        return run_cv(self, records, task, data=options.data, folds=options.folds, seed=options.seed,
                      out=options.out, final=options.final, alternatives=options.alternatives,
                      select_folds=options.select_folds, resume=options.resume)

    @staticmethod
    def summary(document: dict, out: Path) -> list[str]:
        from mammodesk_train.baseline import verdict

        summary = document["cv_summary"]
        lines = [f"{document['evaluation']} ({document['samples']} images, {document['patients']} patients):"]
        lines += [f"  {key:<12} {summary[key]['mean']:.3f} ± {summary[key]['sd']:.3f}"
                  for key in ("auc", "accuracy", "f1_weighted", "sensitivity", "specificity") if key in summary]
        for level in (k for k in document if k.startswith("cv_summary_")):
            shown = ", ".join(f"{k} {v['mean']:.3f} ± {v['sd']:.3f}" for k, v in document[level].items()
                              if k in ("auc", "accuracy", "sensitivity"))
            lines.append(f"  {level.removeprefix('cv_summary_').replace('_', '-')}: {shown}")
        if "comparison" in document:
            lines.append(f"  {verdict(document['comparison'])}")
        for choice in document.get("selection", {}).get("folds", []):
            scores = ", ".join(f"{name} {auc:.3f}" for name, auc in choice["inner_auc"].items())
            lines.append(f"  fold {choice['fold']}: chose {choice['chosen']} (inner AUC {scores})")
        return lines + [f"wall time {document['wall_time_s']:.0f} s; report: {out / 'report.html'}"]

    def run_comparison(self, run: Path) -> dict:
        from mammodesk_train.shipping import sample_run_comparison

        return sample_run_comparison(run)

    def export_run(self, run: Path, path: Path, name: str, notes: list[str] = ()) -> str:
        from mammodesk_train.shipping import export_sample_run

        return export_sample_run(self, run, path, name, notes)


@dataclass(frozen=True)
class CatalogueEntry:
    """What the app's Models panel says of one task of a family (`resources/models/families.json`)."""
    task: str
    purpose: str  # what it answers, in the reader's words (one short line)
    detail: str = ""  # what it is (the tooltip)
    not_bundled: str | None = None  # a short line when no model of it ships
    why: str = ""  # the measurement behind not_bundled
