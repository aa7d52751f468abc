"""From a finished run folder to what ships: the contract's ONNX file, verified against torch, and its model
card beside it. One path for every family: `mammodesk-train export RUN` (and `fit --export`) reads the run's
preset, asks its family for the run's comparison with the plain baseline (refused unless the model beats it
by more than the fold spread, or forced: the card then says so), then for the file and card."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from mammodesk_train.baseline import verdict
from mammodesk_train.families.registry import PRESETS, empty_model, family_for


class NotBetter(Exception):
    """The run's model does not beat its plain baseline (the verdict in words)."""


def family_of_run(run: Path):
    """The family (on the CPU, quiet) of the preset a run folder was fitted with."""
    about = run / "run.json"
    if not about.is_file():
        raise FileNotFoundError(f"{run} holds no finished run (no run.json): fit it first")
    preset = json.loads(about.read_text())["preset"]
    if preset not in PRESETS:
        raise ValueError(f"{run} was fitted with preset {preset!r}, which this mammodesk-train does not know")
    return family_for(PRESETS[preset], device="cpu", progress=False)


def ship(run: Path, path: Path, name: str, *, force: bool = False, notes: list[str] = (), family=None) -> str:
    """Whole or nothing: the file, its card and companions are written in a folder beside `path` and moved
    into place only when all are done, so a failed export never leaves a new model beside an old card (or
    replaces a bundled one by half). `family`: the run's, where its preset is not a registered one (defined
    in Python, as tests do)."""
    family = family or family_of_run(run)
    comparison = family.run_comparison(run)
    if not comparison["beats_baseline"] and not force:
        raise NotBetter(verdict(comparison))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.stem}.", dir=path.parent) as folder:
        said = family.export_run(run, Path(folder) / path.name, name, notes)
        for made in sorted(Path(folder).iterdir()):
            os.replace(made, path.parent / made.name)
    return said.replace(str(Path(folder) / path.name), str(path))


def sample_run_comparison(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    if "final_model" not in metrics:
        raise ValueError(f"{run} has no final model (it was fitted with --no-final)")
    if metrics.get("comparison") is None:
        raise ValueError(f"{run} has no comparison with the plain baseline (fitted by an older mammodesk-train?): "
                         "refit it")
    return metrics["comparison"]


def export_sample_run(family, run_dir: Path, path: Path, name: str, notes: list[str] = ()) -> str:
    """A sample family's final model (`final/model.pt`), its CV figures, calibration and domain record."""
    from mammodesk_train.cv import load_weights
    from mammodesk_train.data.sources import public_spec
    from mammodesk_train.data.tasks import get_task
    from mammodesk_train.model_card import write_model_card

    run = json.loads((run_dir / "run.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    preset = family.preset
    task = get_task(run["task"], classes=metrics["classes"])
    model = load_weights(empty_model(preset, len(task.classes)), run_dir / "final")
    summary = metrics["cv_summary"]
    card_metrics = {"how": metrics["evaluation"] + f", seed {run['seed']}, {metrics['samples']} images of "
                           f"{metrics['patients']} patients; the shipped model is retrained on all of them",
                    **{k: {"mean": v["mean"], "sd": v["sd"]} for k, v in summary.items()},
                    **{level.removeprefix("cv_summary_"): {k: {"mean": v["mean"], "sd": v["sd"]}
                                                           for k, v in metrics[level].items()}
                       for level in metrics if level.startswith("cv_summary_")},
                    "baseline": metrics["comparison"]}
    explained = run_dir / "explain.json"
    explanations = json.loads(explained.read_text()) if explained.is_file() else None
    if explanations:
        card_metrics["explanations"] = {"cam_in_breast": explanations["cam_in_breast"],
                                        "pointing": explanations["pointing"]}
    run = {**run, "data": public_spec(run["data"])}  # no local folder names in shipped files
    training = {"dataset": run["data"], "split": metrics["evaluation"], "samples": metrics["samples"],
                "patients": metrics["patients"],
                "patient_key_hashes": metrics["final_model"]["patient_key_hashes"]}
    domain_file = run_dir / "final" / "domain.json"
    trust = {"calibration": metrics.get("calibration", {}).get("calibration"),
             "domain": json.loads(domain_file.read_text()) if domain_file.is_file() else None}
    report = family.export(model, task, path, training, card_metrics, name, trust=trust)
    run["acquisition"] = (trust["domain"] or {}).get("acquisition")
    card = write_model_card(report.path.with_suffix(".md"), name, metrics, run, preset.description, notes,
                            explanations)
    companions = [p.name for p in report.path.parent.glob(f"{report.path.stem}.*.onnx")]
    return (f"exported {report.path} (+ {', '.join(companions) or 'no companion files'}, model card {card.name}); "
            f"parity with torch verified: {report.summary()}")
