"""Patient-level cross-validation for any family, and the final fit on all
data. Splits happen on records before any augmentation; the leakage check
runs on every fold and is written into the report."""

from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from mammodesk_train import baseline, kept, trust
from mammodesk_train.data.patients import evaluation, grouping
from mammodesk_train.data.sources import Record, assumed_spacing
from mammodesk_train.data.tasks import Task
from mammodesk_train.engine import distributed
from mammodesk_train.metrics import aggregate_folds, classification_metrics
from mammodesk_train.outer import FoldClock, baseline_out_of_fold, kept_folds
from mammodesk_train.report import write_report
from mammodesk_train.selection import choose, prepare_candidates
from mammodesk_train.splits import check_leakage, patient_key_hash, patient_kfold
from mammodesk_train.families.protocol import Family


def run_cv(family: Family, records: list[Record], task: Task, *, data: str, folds: int, seed: int, out: Path,
           final: bool = True, alternatives: tuple[Family, ...] = (), select_folds: int = 3,
           resume: bool = False) -> dict:
    """With `alternatives`, each outer fold fits whichever of `family` and them wins inner CV on its own
    training patients (nested selection); the final model is the candidate that wins CV on all data.
    Each finished fold is kept in its folder (`fold.json`, with its weights); with `resume`, a run stopped
    in `out` continues: kept folds of the same data, labels, presets and seed are not fitted again, and a
    fold cut short is fitted afresh."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    candidates = prepare_candidates([family, *alternatives], records, task)
    primary = candidates[0].primary
    groups = primary.groups
    hashes = primary.hashes
    key = kept.fingerprint({"presets": [repr(c.family.preset) for c in candidates], "task": task.name,
                            "classes": list(task.classes), "samples": [r.image_id for r in records],
                            "record_index": primary.record_index, "y": primary.y, "groups": groups, "folds": folds,
                            "seed": seed, "select_folds": select_folds, "init": str(getattr(family, "init", None))})
    marker = out / "run-key.json"
    if resume and any(out.iterdir()) and kept.load(marker, key) is None:
        raise ValueError(f"{out} holds a run of other data, presets, task or seed (or of another mammodesk-train): "
                         "--resume continues only the same run; choose another --out")
    base_features = baseline.sample_features(primary)
    fold_metrics, leakage, fold_extra, base_metrics, selection = [], [], [], [], []
    oof = np.full((len(primary), len(task.classes)), np.nan)
    assumed = assumed_spacing(records)
    splits = patient_kfold(primary.y, groups, folds, seed)
    base_oof = baseline_out_of_fold(base_features, primary.y, splits, len(task.classes))
    domain_folds = []

    def fit_fold(fold):
        folder = out / f"fold{fold.index + 1}"
        print(f"fold {fold.index + 1}/{folds}: {len(fold.train)} train, {len(fold.test)} test samples", flush=True)
        if resume and folder.is_dir() and distributed()[0] == 0:  # cut short: its logs and weights go
            shutil.rmtree(folder)
        done = _fit_fold(candidates, fold, task, seed, folder, select_folds, assumed, bool(alternatives))
        if distributed()[0] == 0:  # the run's key before its fold: a kept fold is always of a known run
            kept.keep(marker, key, {"data": data})
        return done

    clock = FoldClock(len(splits))
    for fold, done, fitted in kept_folds(splits, fit_fold, lambda f: out / f"fold{f.index + 1}" / "fold.json",
                                         key, resume=resume):
        train_records = np.unique(primary.record_index[fold.train])
        test_records = np.unique(primary.record_index[fold.test])
        leakage.append({"fold": fold.index + 1, **check_leakage(records, train_records, test_records, hashes)})
        if not fitted:
            print(f"fold {fold.index + 1}/{folds}: kept from the stopped run (fold{fold.index + 1}/fold.json)",
                  flush=True)
        oof[fold.test] = np.asarray(done["oof"])
        fold_metrics.append(done["metrics"])
        if done["selection"] is not None:
            selection.append(done["selection"])
            print(f"  chose {done['selection']['chosen']} in inner CV of the training patients", flush=True)
        base_metrics.append(classification_metrics(primary.y[fold.test], base_oof[fold.test], task.classes,
                                                   bootstrap=0))
        metrics = done["metrics"]
        print(f"  accuracy {metrics['accuracy']:.3f}, AUC {_fmt(metrics['auc'])}, "
              f"weighted F1 {metrics['f1_weighted']:.3f}; plain baseline AUC {_fmt(base_metrics[-1]['auc'])}; "
              + clock.tick(fitted), flush=True)
        if done["extra"] is not None:
            fold_extra.append(done["extra"])
        domain_folds.append(done["domain"])
    pooled = classification_metrics(primary.y, oof, task.classes, seed=seed)
    final_choice = candidates[0]
    if alternatives and final:
        print("choosing the final model's preset by CV on all patients", flush=True)
        final_choice, scores = choose(candidates, np.arange(len(primary)), task.classes, inner_folds=select_folds,
                                      seed=seed, out=out / "final" / "select")
        selection.append({"fold": "final (all patients)", "chosen": final_choice.name, "inner_auc": scores})
    document = {
        "run": out.name, "preset": final_choice.name, "family": final_choice.family.preset.family, "task": task.name,
        "classes": list(task.classes), "data": data, "samples": int(len(primary)),
        "patients": int(len(set(groups.tolist()))), "folds": folds, "seed": seed,
        "grouping": (grouped := grouping([r.patient_from for r in records])),
        "evaluation": evaluation(folds, "stratified cross-validation", grouped) + " (development data; not a test set)",
        "folds_detail": fold_metrics, "cv_summary": aggregate_folds(fold_metrics), "pooled": pooled,
        "baseline": {"method": baseline.DESCRIPTION, "features": list(baseline.FEATURES),
                     "folds_detail": base_metrics, "cv_summary": aggregate_folds(base_metrics),
                     "pooled": classification_metrics(primary.y, base_oof, task.classes, seed=seed)},
        "leakage": leakage, "device": _device_name(family.device),
    }
    if alternatives:
        document["selection"] = {
            "candidates": [c.name for c in candidates], "inner_folds": select_folds, "folds": selection,
            "how": f"nested: each outer fold's preset chosen by {select_folds}-fold patient-level CV (AUC) on that "
                   "fold's training patients only; the reported figures are the outer folds'"}
    if all(m.get("auc") is not None for m in fold_metrics + base_metrics):
        document["comparison"] = baseline.gate(baseline.compare(fold_metrics, base_metrics), pooled)
    document["calibration"] = trust.calibrate(oof, primary.y, splits)
    document["domain_cv"] = {
        "flag_rate": float(np.mean([d["flag_rate"] for d in domain_folds])), "folds": domain_folds,
        "how": "per fold: the domain record (acquisition, input intensity ranges, embedding distance) built from "
               "the training patients only, the engine's check applied to the held-out patients"}
    for level in (fold_extra[0] if fold_extra else {}):
        document[f"cv_summary_{level}"] = aggregate_folds([extra[level] for extra in fold_extra])
    if final:
        everything = np.arange(len(primary))
        chosen = final_choice
        model = chosen.family.train(chosen.primary, chosen.secondary, everything, len(task.classes), seed,
                                    out / "final")
        if distributed()[0] == 0:
            save_weights(model, out / "final")
            embed = chosen.family.embed
            everything_embedded = embed(model, chosen.primary.x) if embed else None
            record = trust.domain_record(chosen.primary.sample_metas(), chosen.primary.x, everything_embedded,
                                         assumed)
            (out / "final" / "domain.json").write_text(json.dumps(record))
        document["final_model"] = {"trained_on": "all samples", "samples": int(len(primary)),
                                   "patient_key_hashes": _key_hashes(groups)}
    document["wall_time_s"] = time.perf_counter() - started
    if distributed()[0] != 0:
        return document  # under torchrun every rank trains; rank 0 alone writes
    write_report(out, document, primary.y, oof)
    fold_presets = [d["chosen"] for d in selection if isinstance(d["fold"], int)] if alternatives \
        else [candidates[0].name] * len(splits)  # the preset of each fold's saved model
    (out / "run.json").write_text(json.dumps({"preset": final_choice.name, "task": task.name, "data": data,
                                              "seed": seed, "folds": folds,
                                              "comparison": document.get("comparison"),
                                              "fold_presets": fold_presets}, indent=2))
    return document


def _fit_fold(candidates, fold, task: Task, seed: int, folder: Path, select_folds: int, assumed: float | None,
              selecting: bool) -> dict:
    """One outer fold: the preset chosen in inner CV (when selecting), fitted on the training patients; its
    held-out answers, metrics, extra metrics and domain check, as kept for `--resume`."""
    chosen, selection = candidates[0], None
    if selecting:
        chosen, scores = choose(candidates, fold.train, task.classes, inner_folds=select_folds,
                                seed=seed + fold.index, out=folder / "select")
        selection = {"fold": fold.index + 1, "chosen": chosen.name, "inner_auc": scores}
    model = chosen.family.train(chosen.primary, chosen.secondary, fold.train, len(task.classes),
                                seed + fold.index, folder)
    if distributed()[0] == 0:
        save_weights(model, folder)  # for `explain`: maps of held-out patients
    y = chosen.primary.y[fold.test]
    oof = chosen.family.predict(model, chosen.primary.x[fold.test])
    extra = None
    if chosen.family.extra_metrics is not None:  # e.g. patch-level figures of a patch model
        extra = chosen.family.extra_metrics(model, chosen.primary.x[fold.test], y, task.classes)
    return {"oof": oof, "metrics": classification_metrics(y, oof, task.classes, bootstrap=0),
            "selection": selection, "extra": extra,
            "domain": _domain_fold(chosen.primary, fold, model, chosen.family.embed, assumed)}


def _domain_fold(primary, fold, model, embed, assumed: float | None) -> dict:
    """The domain check's flag rate on a held-out fold, its record built from the training fold only."""
    train_embedded = embed(model, primary.x[fold.train]) if embed else None
    test_embedded = embed(model, primary.x[fold.test]) if embed else None
    record = trust.domain_record(primary.sample_metas(fold.train), primary.x[fold.train], train_embedded, assumed)
    rate, reasons = trust.flag_rate(record, primary.sample_metas(fold.test), primary.x[fold.test], test_embedded)
    return {"fold": fold.index + 1, "flag_rate": rate, "reasons": reasons, "held_out": int(len(fold.test))}


def _modules(model) -> dict[str, torch.nn.Module]:
    """A family's trained model: one network, or a container of networks (VAE + classifier)."""
    if isinstance(model, torch.nn.Module):
        return {"model": model}
    return {name: module for name, module in vars(model).items() if isinstance(module, torch.nn.Module)}


def save_weights(model, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({name: module.state_dict() for name, module in _modules(model).items()}, folder / "model.pt")


def load_weights(model, folder: Path):
    state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    for name, module in _modules(model).items():
        module.load_state_dict(state[name])
    return model


def _key_hashes(groups: np.ndarray) -> list[str]:
    return sorted({patient_key_hash(key) for key in groups.tolist()})


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
