"""The whole-mammogram reader's training protocol (`families/reader.py` registers it: `mammodesk-train fit
--preset reader-...`, or its shorthand `mammodesk-train reader`).

1. Every image once through the spec and the frozen ImageNet trunk (`data.prepare`).
   With a fine-tuning preset, each outer fold reads features of a trunk tuned on
   its own training images (`finetune.Tuning`).
2. For the reported fold seed and a second one: nested CV (settings chosen in
   inner folds of each outer training fold), the plain baseline in the same
   outer folds, calibration fitted out of fold on whole images, the operating
   point for the stated sensitivity chosen on the other folds and applied to
   each fold, the pointing game.
3. The shipped head: its setting chosen by CV on all images, fitted on all;
   calibration and operating point from the reported seed's out-of-fold answers.
4. The run folder: `report.json`, `run.json` and the shipped reader in `final/`, which the one shipping path
   (`mammodesk_train.shipping`, `reader/shipping.py`) exports (contract roi.mode "image") and verifies."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from mammodesk_train.app import apply_calibration, summarise_acquisition

from mammodesk_train import baseline, trust
from mammodesk_train.data.patients import evaluation, grouping
from mammodesk_train.data.sources import assumed_spacing, load_source
from mammodesk_train.data.tasks import check_task, described
from mammodesk_train.outer import baseline_out_of_fold
from mammodesk_train.reader.bilateral import compared_logits, fit_bilateral
from mammodesk_train.reader.data import READS, ReaderData
from mammodesk_train.reader.shipping import domain_record, keep_shipped
from mammodesk_train.reader.finetune import Tuning, first_rank_first, into_reader
from mammodesk_train.reader.presets import PRESETS, ReaderPreset  # noqa: F401 - the reader's presets, here too
from mammodesk_train.reader.fit import Setting, choose, fit_head, nested_cv, reader_logits
from mammodesk_train.reader.levels import (breast_table, cross_answers, evaluate_levels, exam_logits, exam_table,
                                           fit_exam_rule, fit_level, fold_index, level_dict, operating_point,
                                           uses_reference)
from mammodesk_train.reader.model import head_from_standardised
from mammodesk_train.splits import Fold, patient_key_hash, patient_kfold


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def cross_fitted_operating_point(p: np.ndarray, y: np.ndarray, folds: list[Fold], sensitivity: float) -> dict:
    """Sensitivity and specificity when each fold's threshold is chosen on the other folds only (the levels'
    own cross-fitting, `levels.cross_answers`)."""
    called, _ = cross_answers(p, y, fold_index(folds, len(y)), sensitivity)
    return {"sensitivity": float(called[y == 1].mean()), "specificity": float((~called[y == 0]).mean()),
            "how": f"each fold's threshold chosen on the other folds' out-of-fold answers for sensitivity "
                   f"{sensitivity:.2f}"}


def evaluate_seed(data: ReaderData, preset: ReaderPreset, folds: int, seed: int,
                  checkpoints: Path | None = None, tuning: Tuning | None = None) -> dict:
    cv = nested_cv(data, list(preset.settings), preset.schedule, folds, seed, checkpoints=checkpoints,
                   tuning=tuning)
    outer: list[Fold] = cv["folds"]
    base = baseline_out_of_fold(data.base_features, data.y, outer, 2)[:, 1]
    model_folds = [{"auc": d["auc"]} for d in cv["detail"]]
    base_folds = [{"auc": trust_auc(data.y[f.test], base[f.test])} for f in outer]
    raw = sigmoid(cv["oof_logits"])
    probs = np.column_stack([1 - raw, raw])
    calibration = trust.calibrate(probs, data.y, outer)
    both = both_breasts_baseline(data, outer)
    return {"seed": seed, "comparison": baseline.compare(model_folds, base_folds), "folds": cv["detail"],
            "bilateral": bilateral_evaluation(data, cv, base, both, preset),
            "levels": evaluate_levels(cv, data.y, data.groups, data.sides, data.partners(), base, both,
                                      preset.sensitivity),
            "pooled_auc": trust_auc(data.y, cv["oof_logits"]), "baseline_pooled_auc": trust_auc(data.y, base),
            # on the raw scores: a calibration map is monotone, so a threshold chosen on the other folds' raw
            # answers is the same call, and no fold's labels reach its own threshold through a map
            "operating_point": cross_fitted_operating_point(raw, data.y, outer, preset.sensitivity),
            "pointing": {"hits": int(sum(cv["pointing_hits"])), "located_images": len(cv["pointing_hits"]),
                         "rate": float(np.mean(cv["pointing_hits"])) if cv["pointing_hits"] else None,
                         "box_hits": int(sum(cv["box_hits"])),
                         "box_rate": float(np.mean(cv["box_hits"])) if cv["box_hits"] else None},
            "calibration": {k: calibration[k] for k in ("chosen_by", "log_loss", "ece_before", "ece_after")},
            "oof_probability": raw.tolist(), "calibration_fit": calibration["calibration"]}


def both_breasts_baseline(data: ReaderData, folds: list[Fold]) -> np.ndarray | None:
    """Out-of-fold p of the plain baseline on both breasts' statistics (None when fewer than half the images
    have the other breast)."""
    partners = data.partners()
    paired = partners >= 0
    if paired.mean() < 0.5:
        return None
    both = np.column_stack([data.base_features, data.base_features[np.where(paired, partners, np.arange(len(data)))]])
    return baseline_out_of_fold(both, data.y, folds, 2)[:, 1]


def bilateral_evaluation(data: ReaderData, cv: dict, one_view_baseline: np.ndarray, base: np.ndarray | None,
                         preset: ReaderPreset) -> dict | None:
    """The views read against the other breast, in the same outer folds: against a plain baseline that
    sees both breasts' statistics, the one-view baseline and the one-view reader. Over the images that
    have the other breast (None when fewer than half do)."""
    paired = data.partners() >= 0
    z, y = cv["oof_bilateral_logits"], data.y
    if base is None or not np.isfinite(z[paired]).all():  # an outer fold had no weights (too few paired images)
        return None
    tests = [fold.test[paired[fold.test]] for fold in cv["folds"]]
    folds_of = lambda scores: [{"auc": trust_auc(y[t], scores[t])} for t in tests]  # noqa: E731
    among_paired = _paired_folds(cv["folds"], paired)
    raw = sigmoid(np.nan_to_num(z))
    calibration = trust.calibrate(np.column_stack([1 - raw, raw])[paired], y[paired], among_paired)
    return {"images_compared": int(paired.sum()),
            "comparison": baseline.compare(folds_of(z), folds_of(base)),
            "versus_one_view_baseline": baseline.compare(folds_of(z), folds_of(one_view_baseline)),
            "versus_one_view_reader": baseline.compare(folds_of(z), folds_of(cv["oof_logits"])),
            "operating_point": cross_fitted_operating_point(raw[paired], y[paired], among_paired,
                                                            preset.sensitivity),
            "calibration": {k: calibration[k] for k in ("chosen_by", "log_loss", "ece_before", "ece_after")},
            "how": "each outer fold's weights (own and other breast's image logit, logistic) fitted on the "
                   "training fold's inner out-of-fold logits; the baseline: the plain statistics of both breasts"}


def _paired_folds(folds: list[Fold], paired: np.ndarray) -> list[Fold]:
    """Folds over all images as folds over the paired ones alone (positions among them)."""
    position = np.cumsum(paired) - 1
    return [Fold(f.index, position[f.train[paired[f.train]]], position[f.test[paired[f.test]]]) for f in folds]


def shipped_bilateral(data: ReaderData, logits: np.ndarray, folds: list[Fold], preset: ReaderPreset):
    """The shipped comparison: weights fitted on the shipped setting's out-of-fold logits, its calibration
    and operating point from weights cross-fitted in the same folds, and the breasts' calibrated out-of-fold
    answers, labels and normal reference (the breast level is fitted on them, `levels.breast_table`). (None,
    None) when too few images are paired."""
    from dataclasses import replace

    partners = data.partners()
    paired = partners >= 0
    if paired.mean() < 0.5:
        return None, None
    cross = np.full(len(data), np.nan)
    for fold in folds:
        cross[fold.test] = compared_logits(fit_bilateral(logits, partners, data.y, fold.train), logits, partners,
                                           fold.test)
    weights = fit_bilateral(logits, partners, data.y, np.arange(len(data)))
    if weights is None or not np.isfinite(cross[paired]).all():  # a fold without both classes paired
        return None, None
    raw = sigmoid(cross[paired])
    probs = np.column_stack([1 - raw, raw])
    calibration = trust.calibrate(probs, data.y[paired], _paired_folds(folds, paired))["calibration"]
    calibrated = np.full(len(data), np.nan)
    calibrated[paired] = apply_calibration(calibration, probs)[:, 1] if calibration else raw
    p, y, _, reference = breast_table(calibrated, data.y, data.groups, data.sides, paired)
    return (replace(weights, threshold=operating_point(calibrated[paired], data.y[paired], preset.sensitivity),
                    calibration=calibration), (p, y, reference))


def shipped_exam(data: ReaderData, logits: np.ndarray, folds: list[Fold]) -> tuple[dict, tuple] | None:
    """The shipped exam rule (chosen and fitted on the shipped setting's out-of-fold logits of every exam), and
    the exams' answers by rules cross-fitted in the same folds with their labels (the exam level is fitted on
    them). None without exams."""
    keys, features, y = exam_table(logits, data.y, data.groups, data.sides)
    chosen = fit_exam_rule(features, y, 0)
    if chosen is None:
        return None
    position = {k: j for j, k in enumerate(keys)}
    cross = np.full(len(keys), np.nan)
    for fold in folds:
        _, train_features, train_y = exam_table(logits, data.y, data.groups, data.sides, fold.train)
        rule = fit_exam_rule(train_features, train_y, fold.index)
        test_keys, test_features, _ = exam_table(logits, data.y, data.groups, data.sides, fold.test)
        if rule is None:
            return None
        cross[[position[k] for k in test_keys]] = exam_logits(rule[0], test_features)
    return {"rule": asdict(chosen[0]), "rule_chosen": chosen[1]}, (sigmoid(cross), y)


def shipped_levels(answers: dict, sensitivity: float, exam_rule: dict | None) -> dict:
    """Each level's thresholds and score, fitted on its out-of-fold answers (`shipped_level_answers`)."""
    levels = {}
    for name, units in answers.items():
        if units is None or (name == "exam" and exam_rule is None):
            levels[name] = None
            continue
        y = np.asarray(units["y"])
        reference = np.asarray(units["reference"], bool) if "reference" in units else None
        level = level_dict(fit_level(name, np.asarray(units["p"]), y, sensitivity, reference))
        chosen = {"normal_units": "breasts of women with no finding"} if uses_reference(y, reference) else {}
        levels[name] = {**level, **chosen, **(exam_rule if name == "exam" else {})}
    return levels


def trust_auc(y: np.ndarray, scores: np.ndarray) -> float:
    from mammodesk_train.reader.fit import auc

    return auc(y, scores)


def fixed_setting_oof(data: ReaderData, setting: Setting, preset: ReaderPreset, folds: int, seed: int,
                      tuning: Tuning | None = None) -> np.ndarray:
    """Out-of-fold image logits of heads fitted with one setting, in the reported seed's outer folds (on each
    fold's own tuned trunk, with `tuning`: the one its nested CV used, kept)."""
    oof = np.full(len(data), np.nan)
    for fold in patient_kfold(data.y, data.groups, folds, seed):
        fold_data = data if tuning is None else \
            tuning.tuned(fold.train, list(preset.settings), preset.schedule, seed + fold.index)[0]
        head = fit_head(fold_data, fold.train, setting, preset.schedule, seed + fold.index)
        oof[fold.test] = reader_logits(head, fold_data, fold.test)
    return oof


def build_trunk(name: str):
    from mammodesk_train.backbones.imagenet import imagenet_lite

    return imagenet_lite(name)


def run(data_spec: str, out: Path, preset: ReaderPreset, *, folds: int = 5, seed: int = 0, second_seed: int = 1,
        resume: bool = False, device: str = "cpu", records: list | None = None) -> dict:
    """The reader's training protocol, into the run folder `out`: `report.json`, `run.json` and the shipped
    reader in `final/` (`mammodesk_train.shipping` exports it). `resume`: continue a stopped run in `out`, its
    finished outer folds taken from `out/folds` (without it, an `out` holding folds is refused, never mixed
    into). `device`: where the trunk reads the images (auto, cpu, cuda). `records`: the source's, when read
    already."""
    from mammodesk_train.engine import distributed, pick_device

    started = time.perf_counter()
    torch.manual_seed(seed)
    kept = out / "folds"
    if not resume and any(folder.is_dir() and any(folder.iterdir()) for folder in (kept, out / "finetune")):
        raise ValueError(f"{out} holds the folds of an earlier run: --resume continues it (the folds done are not "
                         "fitted again), or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    records = labelled(load_source(data_spec) if records is None else records, folds)
    where = pick_device(device)
    print(plan(records, preset, folds, seed, second_seed, where), flush=True)
    reader = preset.build()
    data = first_rank_first(lambda: preset.read(records, reader, device=where))
    tuning = None if preset.finetune is None else \
        Tuning(preset.finetune, records, preset.spec(), reader, data, out / "finetune", where)
    reader.cpu()  # the head is fitted, and the shipped reader kept, on the CPU
    report: dict = {"preset": preset.name, "description": preset.description, "data": data_spec,
                    "spacing_mm": preset.spacing_mm,
                    "images": len(data), "patients": int(len(set(data.groups.tolist()))),
                    "abnormal": int(data.y.sum()), "located": int(data.located.sum()), "folds": folds,
                    "settings": [asdict(s) for s in preset.settings], "schedule": asdict(preset.schedule),
                    "finetune": asdict(preset.finetune) if preset.finetune is not None else None,
                    "grouping": (grouped := grouping([r.patient_from for r in records])),
                    "acquisition": summarise_acquisition(data.metas, assumed_spacing(records)),
                    "evaluation": evaluation(folds, "cross-validation", grouped) + ", settings chosen in 3 inner "
                                  "folds of each outer training fold (nested); development data, not a test set"}
    for which, s in (("reported", seed), ("second_seed", second_seed)):
        print(f"nested CV, fold seed {s} ({which})", flush=True)
        report[which] = evaluate_seed(data, preset, folds, s, checkpoints=kept, tuning=tuning)
        print("  " + baseline.verdict(report[which]["comparison"]), flush=True)
        if report[which]["bilateral"]:
            print("  both breasts compared: " + baseline.verdict(report[which]["bilateral"]["comparison"]) +
                  " (a baseline that sees both breasts)", flush=True)
    everything = np.arange(len(data))
    shipped = data
    if tuning is not None:  # the shipped trunk: tuned on every image
        shipped, part = tuning.tuned(everything, list(preset.settings), preset.schedule, seed)
        reader = into_reader(reader, part, preset.finetune)
    best, scores, _, window = choose(shipped, everything, list(preset.settings), preset.schedule, seed)
    head = fit_head(shipped, everything, best, preset.schedule, seed)
    reader.head = head_from_standardised(head.net, head.mean, head.sd)
    reader.k = best.k
    # Calibration and threshold of the shipped head: out-of-fold answers of heads with its own setting
    # (the nested folds chose other k's, whose pooled logits sit on other scales).
    oof_logits = fixed_setting_oof(data, best, preset, folds, seed, tuning)
    oof = sigmoid(oof_logits)
    probs = np.column_stack([1 - oof, oof])
    shipped_folds = patient_kfold(data.y, data.groups, folds, seed)
    calibration = trust.calibrate(probs, data.y, shipped_folds)["calibration"]
    bilateral, breasts = shipped_bilateral(data, oof_logits, shipped_folds, preset)
    calibrated = apply_calibration(calibration, probs)[:, 1] if calibration else oof
    threshold = operating_point(calibrated, data.y, preset.sensitivity)
    exam = shipped_exam(data, oof_logits, shipped_folds)
    answers = {"view": (calibrated, data.y), "breast": breasts, "exam": exam[1] if exam else None}
    report["shipped_level_answers"] = {name: None if units is None else dict(zip(("p", "y", "reference"),
                                                                                (part.tolist() for part in units)))
                                       for name, units in answers.items()}  # the levels can be refitted from these
    levels = shipped_levels(report["shipped_level_answers"], preset.sensitivity, exam[0] if exam else None)
    for part in ("reported", "second_seed"):
        report[part].pop("calibration_fit")
    report["shipped_oof_probability"] = oof.tolist()
    report["shipped"] = {"setting": asdict(best), "location_window": window, "inner_auc_all_data": scores,
                         "threshold": threshold,
                         "calibration": calibration, "bilateral": None if bilateral is None else asdict(bilateral),
                         "levels": levels,
                         "patient_key_hashes": sorted({patient_key_hash(g) for g in shipped.groups.tolist()})}
    report["seconds"] = time.perf_counter() - started
    if distributed()[0] != 0:  # under torchrun every rank computes the same; the first writes
        return report
    report["shipped"]["weights_sha256"] = keep_shipped(out / "final", reader,
                                                       domain_record(shipped, assumed_spacing(records)))
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "run.json").write_text(json.dumps({"preset": preset.name, "task": READS.name, "data": data_spec,
                                              "seed": seed, "second_seed": second_seed, "folds": folds,
                                              "comparison": report["reported"]["comparison"]}, indent=2))
    return report


def plan(records, preset: ReaderPreset, folds: int, seed: int, second_seed: int,
         device: torch.device = torch.device("cpu")) -> str:
    """What the run will do, said before it starts."""
    patients = len({r.patient_key for r in records})
    where = "CUDA" if device.type == "cuda" else "the CPU"
    tuned = "" if preset.finetune is None else \
        (f"; in each outer fold (and once on all images for the shipped model) the trunk's last "
         f"{preset.finetune.stages} stages fine-tuned for {preset.finetune.epochs} epochs on that fold's training "
         "images, from the head its inner CV chooses")
    return (f"plan: {len(records)} images of {patients} patients through {preset.name}'s frozen trunk on {where} "
            f"(images read before come from the cache); nested CV with {folds} outer folds on fold seeds {seed} and "
            f"{second_seed}, each outer fold choosing among {len(preset.settings)} settings in 3 inner folds; the "
            "plain baseline in the same folds" + tuned + "; then the shipped head on all images, its calibration, "
            "operating point and levels")


def labelled(records, folds: int) -> list:
    """Up front, before any image is read: the records the reader can learn from (normal vs any abnormality),
    both classes in enough patients for the folds, or an error naming the labels found and those expected."""
    labels = check_task(records, READS, folds)
    kept = [r for r, y in zip(records, labels) if y is not None]
    if len(kept) < len(records):
        print(f"{len(records) - len(kept)} of {len(records)} images have no normal/abnormal label (e.g. "
              f"{described(next(r for r, y in zip(records, labels) if y is None))}): left out", flush=True)
    return kept


