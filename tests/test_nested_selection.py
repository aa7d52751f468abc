"""Nested selection (`mammodesk-train fit --select-from`): the preset each outer
fold fits is chosen on that fold's training patients only; the outer test fold
is never trained on nor scored during the choice."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch")
from train_fixtures import mias_folder  # noqa: E402

from mammodesk_train.cli import main  # noqa: E402
from mammodesk_train.cv import run_cv  # noqa: E402
from mammodesk_train.data.sources import load_source  # noqa: E402
from mammodesk_train.data.tasks import get_task  # noqa: E402
from mammodesk_train.engine import FitConfig  # noqa: E402
from mammodesk_train.families.fusion_vgg import FusionFamily, FusionPreset  # noqa: E402
from mammodesk_train.splits import patient_kfold  # noqa: E402

TINY = FusionPreset("fusion-tiny", "test", 1, 0.0625, FitConfig(epochs=1, batch_size=16), {0: 2, 1: 4},
                    roi=48, patch=32, vote_patches=5)
OTHER = replace(TINY, name="fusion-tiny-wider", width=0.125)


def _row_keys(x: np.ndarray) -> set[str]:
    return {hashlib.sha1(np.ascontiguousarray(row).tobytes()).hexdigest() for row in x}


def test_nested_selection_never_sees_the_outer_test_fold(tmp_path, monkeypatch):
    records = load_source(f"mias:{mias_folder(tmp_path, lesions_on_spots=True)}")
    task = get_task("normal_abnormal", records)
    families = [FusionFamily(preset, device="cpu", progress=False) for preset in (TINY, OTHER)]
    events: list[tuple] = []
    for family in families:
        train, predict = family.train, family.predict

        def spy_train(samples, extra, index, *args, _train=train, **kwargs):
            events.append(("train", str(args[-1] if len(args) >= 3 else kwargs.get("out")), np.array(index)))
            return _train(samples, extra, index, *args, **kwargs)

        def spy_predict(model, x, _predict=predict):
            events.append(("predict", None, _row_keys(x)))
            return _predict(model, x)

        monkeypatch.setattr(family, "train", spy_train)
        monkeypatch.setattr(family, "predict", spy_predict)
    document = run_cv(families[0], records, task, data="mias:tiny", folds=2, seed=0, out=tmp_path / "run",
                      final=False, alternatives=(families[1],), select_folds=2)
    samples, _ = families[0].build_samples(records, task)
    outer = patient_kfold(samples.y, samples.groups, 2, 0)
    selecting = None  # the outer fold whose choice is being made
    inner_seen: dict[int, set[int]] = {0: set(), 1: set()}
    for kind, out, payload in events:
        if kind == "train":
            selecting = next((f.index for f in outer if f"fold{f.index + 1}/select" in out), None)
            if selecting is not None:
                test = outer[selecting].test
                assert not set(samples.groups[payload]) & set(samples.groups[test])  # no test patient trained on
                inner_seen[selecting] |= set(payload.tolist())
        elif selecting is not None:
            assert not payload & _row_keys(samples.x[outer[selecting].test])  # no test sample scored
    for fold in outer:
        assert inner_seen[fold.index] == set(fold.train.tolist())  # the choice used all of the training patients
    detail = document["selection"]["folds"]
    assert [d["fold"] for d in detail] == [1, 2]
    for d in detail:
        assert set(d["inner_auc"]) == {"fusion-tiny", "fusion-tiny-wider"}
        scores = {k: (-np.inf if np.isnan(v) else v) for k, v in d["inner_auc"].items()}
        assert d["chosen"] == max(scores, key=scores.get)


def test_candidates_must_predict_the_same_samples(tmp_path):
    records = load_source(f"mias:{mias_folder(tmp_path, lesions_on_spots=True)}")
    task = get_task("normal_abnormal", records)
    fewer = replace(TINY, name="fusion-tiny-more-normals", extra_normals=0, normals_per_image=3)
    with pytest.raises(ValueError, match="candidates must read the same records"):
        run_cv(FusionFamily(TINY, device="cpu", progress=False), records, task, data="mias:tiny", folds=2, seed=0,
               out=tmp_path / "run", final=False, alternatives=(FusionFamily(fewer, device="cpu", progress=False),))


def test_the_cli_chooses_presets_by_nested_cv_and_export_rebuilds_the_final_choice(tmp_path):
    data = mias_folder(tmp_path)
    out = tmp_path / "run"
    common = ["--data", f"mias:{data}", "--task", "normal_abnormal", "--folds", "2", "--select-folds", "2",
              "--epochs-scale", "0.02", "--device", "cpu"]
    assert main(["fit", "--preset", "vae-cnn-lite", "--select-from", "vae-cnn-lite", *common,
                 "--out", str(out)]) == 2  # a candidate named twice
    assert main(["fit", "--preset", "vae-cnn-lite", "--select-from", "vae-cnn-lite-crop", *common,
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    selection = metrics["selection"]
    assert selection["candidates"] == ["vae-cnn-lite", "vae-cnn-lite-crop"]
    assert [d["fold"] for d in selection["folds"]] == [1, 2, "final (all patients)"]
    final = selection["folds"][-1]["chosen"]
    run = json.loads((out / "run.json").read_text())
    assert run["preset"] == final == metrics["preset"]
    assert run["fold_presets"] == [d["chosen"] for d in selection["folds"][:2]]  # what `explain` rebuilds per fold
