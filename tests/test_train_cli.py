"""mammodesk-train end to end on a tiny MIAS-layout dataset: fit (CV + final),
report, export, evaluate through the app's engine; and clear errors."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
from train_fixtures import mias_folder  # noqa: E402

from mammodesk_train.entry import main  # noqa: E402


def test_fit_export_evaluate(tmp_path, capsys):
    data = f"mias:{mias_folder(tmp_path / 'data')}"
    run = tmp_path / "runs" / "tiny-density"
    code = main(["fit", "--preset", "vae-cnn-lite", "--data", data, "--task", "normal_abnormal", "--folds", "2",
                 "--out", str(run), "--epochs-scale", "0.03", "--device", "cpu"])
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["samples"] == 16 and metrics["patients"] == 8 and metrics["folds"] == 2
    assert all(fold["ok"] for fold in metrics["leakage"]) and len(metrics["leakage"]) == 2
    assert set(metrics["cv_summary"]) >= {"accuracy", "auc", "f1_weighted"}
    assert "not a test set" in metrics["evaluation"]
    html = (run / "report.html").read_text()
    assert html.count("<svg") == 3 and "Leakage check" in html
    assert (run / "fold1" / "vae.jsonl").is_file() and (run / "final" / "model.pt").is_file()

    comparison = metrics["comparison"]  # the plain baseline in the same folds, side by side
    assert comparison["metric"] == "auc" and len(comparison["baseline"]["folds"]) == 2
    assert "Against the plain baseline" in html and "plain baseline" in capsys.readouterr().out
    # the bright spot that marks these abnormal images is what intensity statistics see at once;
    # a VAE-CNN trained for a few epochs does not: the export is refused ...
    assert comparison["baseline"]["mean"] == 1.0 and not comparison["beats_baseline"]
    model = tmp_path / "tiny.onnx"
    assert main(["export", str(run), "--out", str(model)]) == 3  # its own status: scripts tell it from failures
    assert "refusing to export" in capsys.readouterr().err and not model.exists()
    # ... unless forced, and then the card says so before anything else
    assert main(["export", str(run), "--out", str(model), "--note", "Maps highlight film labels.", "--force"]) == 0
    from mammodesk.inference import read_card

    card = read_card(model)
    text = model.with_suffix(".md").read_text()
    assert text.splitlines()[2].startswith("**Does not beat its plain baseline**")
    assert card.metrics["baseline"]["beats_baseline"] is False
    assert "Not for clinical use" in text and "not results on an independent test set" in text
    assert "mammodesk-train fit --preset vae-cnn-lite" in text
    assert "- Maps highlight film labels.\n" in text
    assert card.metrics["accuracy"]["mean"] == pytest.approx(metrics["cv_summary"]["accuracy"]["mean"])
    assert "patient-level" in card.training["split"] and len(card.training["patient_key_hashes"]) == 8

    out = tmp_path / "eval.json"
    assert main(["evaluate", str(model), "--data", data, "--out", str(out)]) == 0
    evaluation = json.loads(out.read_text())
    assert evaluation["n"] == 16 and evaluation["training_patient_overlap"] == 16
    assert "not test results" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["fit", "--preset", "vae-cnn-huge", "--data", "mias:/x", "--task", "density", "--out", "o"], "unknown preset"),
    (["fit", "--preset", "vae-cnn-lite", "--data", "mias:/no/such", "--task", "density", "--out", "o"], "not found"),
    (["fit", "--preset", "vae-cnn-lite", "--data", "nope", "--task", "density", "--out", "o"], "KIND:PATH"),
    (["export", "/no/run", "--out", "x.onnx"], "/no/run holds no finished run"),
])
def test_errors_are_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_card_says_when_pretraining_saw_held_out_patients():
    from mammodesk_train.model_card import _fold_isolation

    assert "saw only that fold's training patients" in _fold_isolation({"seed": 0})
    text = _fold_isolation({"init": {"backbone": "simclr-vgg16.pt", "cv_patients_seen_in_pretraining": 129}})
    assert "129 of these patients" in text and "held-out folds included" in text
    assert "saw only that fold's training patients" not in text


def test_every_registered_family_satisfies_the_family_protocol():
    """fit, explain and export ask a family for typed parts, never by getattr: each preset's family has its
    protocol and export; those on `cv.run_cv`'s protocol have its parts too, and say whether they take a
    pretrained backbone file."""
    from mammodesk_train.families.protocol import Family, FamilyBase, SampleFamily
    from mammodesk_train.families.registry import PRESETS, family_for

    for name, preset in PRESETS.items():
        family = family_for(preset, device="cpu", progress=False)
        assert isinstance(family, Family) and isinstance(family, FamilyBase), name
        if type(family).evaluate is FamilyBase.evaluate:
            assert isinstance(family, SampleFamily), name
            assert callable(family.embed) and (family.extra_metrics is None or callable(family.extra_metrics)), name
    assert not family_for(next(p for p in PRESETS.values() if p.family == "vae-cnn"), device="cpu").accepts_init
    assert {p.family for p in PRESETS.values() if type(family_for(p, device="cpu")).evaluate is not
            FamilyBase.evaluate} == {"reader"}  # the one family with a protocol of its own


def test_the_reader_is_fitted_and_exported_through_fit_like_every_family(tmp_path, monkeypatch, capsys):
    """`reader` is `fit` with a reader preset: one protocol entry (the family's `evaluate`: fold seeds --seed
    and, by default, --seed + 1; the trunk's device passed on), one summary, and one shipping path, the model
    named after --export's file (or --name), never the preset, so a site's retrained reader is not mistaken
    for the bundled one. Options the reader's protocol does not offer are refused before any image is read."""
    from mammodesk_train import shipping
    from mammodesk_train.baseline import compare
    from mammodesk_train.entry import main
    from mammodesk_train.reader import run as reader_run

    data = f"mias:{mias_folder(tmp_path / 'data')}"
    assert main(["fit", "--preset", "reader-lite0", "--data", data, "--task", "density", "--out",
                 str(tmp_path / "g")]) == 2
    assert "reader-lite0 learns normal_abnormal, not density" in capsys.readouterr().err
    assert main(["fit", "--preset", "vae-cnn-lite", "--data", data, "--out", str(tmp_path / "h")]) == 2
    assert "--task is needed for vae-cnn-lite" in capsys.readouterr().err
    for refused in (["--preset", "vae-cnn-lite", "--task", "normal_abnormal", "--select-from", "reader-lite0"],
                    ["--preset", "reader-lite0", "--no-final"], ["--preset", "vae-cnn-lite", "--task", "density",
                                                                "--second-seed", "4"]):
        assert main(["fit", *refused, "--data", "mias:/not/read", "--out", str(tmp_path / "i")]) == 2
        assert len(capsys.readouterr().err.splitlines()) == 1  # one line, no traceback, no data read
    runs, shipped = [], []
    comparison = compare([{"auc": 0.8}] * 5, [{"auc": 0.6}] * 5)
    monkeypatch.setattr(reader_run, "run", lambda spec, out, preset, **k: runs.append(
        (preset.name, k["device"], k["seed"], k["second_seed"], len(k["records"]))) or {
        "reported": {"seed": k["seed"], "comparison": comparison},
        "second_seed": {"seed": k["second_seed"], "comparison": comparison}, "seconds": 1.0})
    monkeypatch.setattr(shipping, "ship", lambda run, path, name, force=False, notes=(), family=None:
                        shipped.append((run.name, path.name, name, force)) or "exported")
    assert main(["reader", "--data", data, "--out", str(tmp_path / "r"), "--export",
                 str(tmp_path / "reader-site.onnx")]) == 0
    assert main(["fit", "--preset", "reader-lite0", "--data", data, "--out", str(tmp_path / "f"), "--export",
                 str(tmp_path / "a.onnx"), "--name", "reader-hospital-2026", "--device", "cpu", "--seed", "3",
                 "--force"]) == 0
    assert runs == [("reader-lite0-hidden", "auto", 0, 1, 16),  # the trunk's device: auto by default
                    ("reader-lite0", "cpu", 3, 4, 16)]  # the second fold seed: --seed + 1 unless given
    assert shipped == [("r", "reader-site.onnx", "reader-site", False), ("f", "a.onnx", "reader-hospital-2026", True)]
    said = capsys.readouterr().out
    assert "fold seed 3: " in said and "fold seed 4: " in said and f"report: {tmp_path / 'f' / 'report.json'}" in said

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reader_run, "run", interrupted)
    assert main(["fit", "--preset", "reader-lite0", "--data", data, "--out", str(tmp_path / "s")]) == 130
    assert "cache/reader-features" in capsys.readouterr().err  # the reader's: what was kept, and --resume


def test_a_device_torch_cannot_use_is_refused_by_name(capsys):
    import torch

    from mammodesk_train.engine import pick_device

    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            pick_device("cuda")


def test_a_folder_task_model_exports_and_evaluates_like_any_other(tmp_path, capsys):
    from train_fixtures import class_folders

    data = f"folder:{class_folders(tmp_path / 'data')}"
    run = tmp_path / "runs" / "by-folder"
    assert main(["fit", "--preset", "vae-cnn-lite", "--data", data, "--task", "folder", "--folds", "2",
                 "--out", str(run), "--epochs-scale", "0.03", "--device", "cpu"]) == 0
    said = capsys.readouterr()
    assert "patients unknown: split by image; figures may be optimistic" in said.err + said.out
    assert "classes: benign (0, negative), malignant (1, positive" in said.out
    model = tmp_path / "by-folder.onnx"
    assert main(["export", str(run), "--out", str(model)]) == 3  # 2 folds: the gate cannot judge
    assert "cannot judge with 2 folds" in capsys.readouterr().err
    assert main(["export", str(run), "--out", str(model), "--force"]) == 0
    from mammodesk.inference import read_card

    assert read_card(model).labels == ("benign", "malignant")
    card = model.with_suffix(".md").read_text()
    assert "Far too small for accuracy" in card and "acquisition 8-bit PNG (film or digital: the files do not say)" in card
    assert main(["evaluate", str(model), "--data", data]) == 0
    from mammodesk.cli import main as app_main

    out = tmp_path / "answers.csv"  # predict finds it by its own name in the folder given
    image = next((tmp_path / "data" / "classes" / "malignant").iterdir())
    assert app_main(["predict", str(image), "--models-dir", str(tmp_path), "--model", "by-folder", "--out", str(out),
                     "--cpu"]) == 0
    assert str(model) in capsys.readouterr().err


def test_a_model_trained_here_never_takes_a_bundled_name(tmp_path, capsys):
    data = f"mias:{mias_folder(tmp_path / 'data')}"
    code = main(["reader", "--data", data, "--out", str(tmp_path / "run"),
                 "--export", str(tmp_path / "reader-lite0-hidden.onnx")])
    assert code == 2 and "'reader-lite0-hidden' is the name of a bundled model" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_ctrl_c_stops_cleanly_and_says_what_was_kept(tmp_path, capsys, monkeypatch):
    from mammodesk_train.reader import run as reader_run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reader_run, "run", interrupted)
    code = main(["reader", "--data", f"mias:{mias_folder(tmp_path / 'data')}", "--out", str(tmp_path / "run")])
    said = capsys.readouterr().err
    assert code == 130 and "stopped (Ctrl+C)" in said and "run the same command again" in said
    assert "Traceback" not in said


def test_fit_refuses_a_used_out_folder_rather_than_mixing_two_runs(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "fold1").mkdir(parents=True)
    (run / "fold1" / "vae.jsonl").write_text('{"epoch": 1}\n')
    code = main(["fit", "--preset", "vae-cnn-lite", "--data", f"mias:{mias_folder(tmp_path / 'data')}",
                 "--task", "normal_abnormal", "--out", str(run)])
    assert code == 2 and "already holds a run" in capsys.readouterr().err
    assert (run / "fold1" / "vae.jsonl").read_text() == '{"epoch": 1}\n'


def test_a_stopped_fit_resumes_from_its_finished_folds_with_the_same_figures(tmp_path, capsys, monkeypatch):
    """Ctrl+C in the second fold keeps the first; `fit --resume` fits only the folds not done (the cut one
    afresh) and reports what an uninterrupted run reports. A used --out of another run is refused."""
    from mammodesk_train.families.vae_cnn import VaeCnnFamily

    data = f"mias:{mias_folder(tmp_path / 'data')}"
    args = ["fit", "--preset", "vae-cnn-lite", "--data", data, "--task", "normal_abnormal", "--folds", "3",
            "--epochs-scale", "0.03", "--device", "cpu", "--no-final"]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    original, fitted = VaeCnnFamily.train, []

    def counted(self, *a, **k):
        fitted.append(a[4])  # the fold's seed
        if stop_at and len(fitted) == stop_at:
            raise KeyboardInterrupt
        return original(self, *a, **k)

    monkeypatch.setattr(VaeCnnFamily, "train", counted)
    stopped = tmp_path / "stopped"
    stop_at = 2
    assert main(args + ["--out", str(stopped)]) == 130
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--out", str(stopped)]) == 2  # not resumed: refused, nothing mixed
    fitted.clear()
    stop_at = 0
    assert main(args + ["--out", str(stopped), "--resume"]) == 0
    assert fitted == [1, 2]  # folds 2 and 3 (seeds 0 + fold index); fold 1 was kept
    assert "fold 1/3: kept from the stopped run" in capsys.readouterr().out
    whole, resumed = (json.loads((run / "metrics.json").read_text()) for run in (tmp_path / "whole", stopped))
    assert whole["folds_detail"] and whole["cv_summary"] and whole["pooled"]
    for part in ("folds_detail", "cv_summary", "pooled", "baseline", "comparison", "domain_cv"):
        assert resumed.get(part) == whole.get(part), part
    other = args[:args.index("--folds") + 1] + ["2"] + args[args.index("--folds") + 2:]
    assert main(other + ["--out", str(stopped), "--resume"]) == 2  # another run's folder: refused by name
    assert "holds a run of other data" in capsys.readouterr().err
