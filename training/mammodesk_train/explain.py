"""Do the explanations look at tissue? Measured per CV fold, through the
app's own engine: each fold's model is exported to ONNX and run on its
held-out patients only, so the maps are those a reader would see.

- CAM inside the breast: the share of the (ReLU'd) Grad-CAM mass of the
  predicted class that falls on the breast mask, per held-out sample.
- Pointing game (ROI models): every held-out image with located findings is
  scanned whole; a hit is when the most positive window contains a finding's
  centre ("window"), and when the Grad-CAM peak of that window lies inside a
  finding's circle or box ("CAM peak"). Chance: the share of scan windows that
  contain a finding's centre."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from mammodesk_train.app import FindingKind
from mammodesk_train.app import ModelRunner
from mammodesk_train.app import scan_breast
from mammodesk_train.app import breast_mask

from mammodesk_train.data.builders import finding_box
from mammodesk_train.data.sources import Record
from mammodesk_train.data.tasks import Task
from mammodesk_train.splits import patient_kfold


def cam_breast_share(runner: ModelRunner, image, window: tuple | None) -> float | None:
    """Share of the predicted class's CAM mass on breast pixels (None: no map or an empty one)."""
    box = None if window is None else (window[1], window[0], window[1] + window[3], window[0] + window[2])
    prediction = runner.predict(image, box)
    if prediction.heatmaps is None:
        return None
    cam = prediction.heatmaps.source(prediction.predicted_index).full(image.shape, fill=0.0)
    cam = np.nan_to_num(cam, nan=0.0)
    total = float(cam.sum())
    if total <= 0:
        return None
    valid = None if image.meta.padding_mask is None else ~image.meta.padding_mask
    return float(cam[breast_mask(image.pixels, valid)].sum() / total)


def pointing(runner: ModelRunner, image, record: Record) -> dict | None:
    """Scan the whole breast; does the most positive window (and its CAM peak) hit a finding?"""
    boxes = [finding_box(f) for f in record.labels.located_findings if f.kind != FindingKind.NORMAL]
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    result = scan_breast(image, runner)
    top = result.ranked()[0]
    x0, y0, x1, y1 = result.boxes[top]
    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes]
    window_hit = any(x0 <= cx < x1 and y0 <= cy < y1 for cx, cy in centres)
    chance = float(np.mean([any(w[0] <= cx < w[2] and w[1] <= cy < w[3] for cx, cy in centres)
                            for w in result.boxes]))
    cam_hit = None
    prediction = result.predictions[top]
    if prediction.heatmaps is not None:
        row, col = prediction.heatmaps.source(result.positive).peak()
        cam_hit = any(b[0] <= col <= b[2] and b[1] <= row <= b[3] for b in boxes)
    return {"image": record.image_id, "window_hit": window_hit, "cam_peak_hit": cam_hit, "chance": chance,
            "windows": len(result.boxes)}


def explain_run(run: Path, family, records: list[Record], task: Task, *, pointing_game: bool = True,
                progress=print, fold_families: list | None = None) -> dict:
    """Per fold: CAM-in-breast shares of the held-out samples, and (ROI models) the pointing game.
    `fold_families`: the family of each fold's saved model when nested selection chose per fold (the
    candidates read the same samples, so only the model and its export differ)."""
    from mammodesk_train.cv import load_weights
    from mammodesk_train.families.registry import empty_model

    config = json.loads((run / "run.json").read_text())
    samples, _ = family.build_samples(records, task)
    folds = patient_kfold(samples.y, samples.groups, config["folds"], config["seed"])
    roi_model = samples.windows is not None
    per_fold = []
    for fold in folds:
        own = fold_families[fold.index] if fold_families else family
        model = load_weights(empty_model(own.preset, len(task.classes)), run / f"fold{fold.index + 1}")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "fold.onnx"
            own.export(model, task, path, {"dataset": "cv fold"}, {"how": "cv fold"}, f"fold{fold.index + 1}")
            runner = ModelRunner(path, prefer_gpu=False)
            shares, hits, cached = [], [], None
            for i in fold.test:
                record_index = int(samples.record_index[i])
                if cached is None or cached[0] != record_index:
                    cached = (record_index, samples.records[record_index].load())
                window = tuple(int(v) for v in samples.windows[i]) if roi_model else None
                share = cam_breast_share(runner, cached[1], window)
                if share is not None:
                    shares.append(share)
            if roi_model and pointing_game:
                for record_index in sorted(set(samples.record_index[fold.test].tolist())):
                    record = samples.records[record_index]
                    if record.labels.located_findings and not record.labels.is_normal:
                        outcome = pointing(runner, record.load(), record)
                        if outcome is not None:
                            hits.append(outcome)
        entry = {"fold": fold.index + 1, "cam_in_breast": _summary(shares), "samples": len(shares)}
        if hits:
            entry["pointing"] = {"images": len(hits), "window_hit_rate": float(np.mean([h["window_hit"] for h in hits])),
                                 "cam_peak_hit_rate": _rate([h["cam_peak_hit"] for h in hits]),
                                 "chance": float(np.mean([h["chance"] for h in hits])), "cases": hits}
        per_fold.append(entry)
        progress(f"fold {fold.index + 1}: CAM in breast {entry['cam_in_breast']['mean']:.3f}"
                 + (f", pointing window {entry['pointing']['window_hit_rate']:.2f} "
                    f"(chance {entry['pointing']['chance']:.2f})" if hits else ""))
    return {"folds": per_fold, "cam_in_breast": _summary([f["cam_in_breast"]["mean"] for f in per_fold]),
            "pointing": _pooled_pointing(per_fold), "how": __doc__.split("\n\n", 1)[1].strip()}


def _summary(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "min": float(np.min(values)), "n": len(values)}


def _rate(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _pooled_pointing(per_fold: list[dict]) -> dict | None:
    cases = [c for f in per_fold for c in f.get("pointing", {}).get("cases", [])]
    if not cases:
        return None
    folds = [f["pointing"]["window_hit_rate"] for f in per_fold if "pointing" in f]
    return {"images": len(cases), "window_hit_rate": float(np.mean([c["window_hit"] for c in cases])),
            "window_hit_rate_folds": _summary(folds), "cam_peak_hit_rate": _rate([c["cam_peak_hit"] for c in cases]),
            "chance": float(np.mean([c["chance"] for c in cases]))}
