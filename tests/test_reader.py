"""The whole-mammogram reader: fully convolutional = the patch classifier, settings chosen without the
outer test fold, calibration out of fold on whole images, and an export the app runs with its map."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reader_reference import fit_one_head, synthetic_reader_data  # noqa: E402
from train_fixtures import mias_folder, run_and_ship  # noqa: E402

from mammodesk.inference import ModelRunner  # noqa: E402
from mammodesk.inference.contract import read_card  # noqa: E402
from mammodesk.io import read_image  # noqa: E402
from mammodesk_train.backbones.efficientnet import EfficientNet  # noqa: E402
from mammodesk_train.reader import fit as fitting  # noqa: E402
from mammodesk_train.reader import run as reader_run  # noqa: E402
from mammodesk_train.reader.model import WholeImageReader  # noqa: E402

TINY = dataclasses.replace(reader_run.PRESETS["reader-lite0"], name="reader-tiny", spacing_mm=0.1, height=128,
                           width=96, settings=(fitting.Setting(2, 1e-3, 0.0), fitting.Setting(4, 1e-3, 1.0)),
                           schedule=fitting.Schedule(epochs=3))


def test_the_fully_convolutional_pass_equals_the_patch_classifier_on_a_patch_aligned_crop():
    torch.manual_seed(0)
    reader = WholeImageReader(EfficientNet("lite0", 3), k=3).eval()
    image = torch.rand(1, 3, 256, 192)
    crop = image[:, :, 64:96, 32:64]  # two by two cells, aligned to the 16-pixel stride
    with torch.no_grad():
        _, patch_map = reader(crop)
        assert torch.allclose(reader.patch_logit(crop)[0, 0], patch_map.mean(), atol=1e-5)
        single = image[:, :, 64:80, 32:48]  # one cell: the map has one value, the patch classifier's
        _, one = reader(single)
        assert one.shape[2:] == (1, 1) and torch.allclose(reader.patch_logit(single)[0, 0], one[0, 0, 0, 0],
                                                          atol=1e-5)


def test_the_image_logit_pools_only_breast_cells():
    reader = WholeImageReader(EfficientNet("lite0", 3), k=2).eval()
    logits = torch.tensor([[[5.0, 1.0], [2.0, 9.0]]])
    breast = torch.tensor([[[True, True], [True, False]]])  # the 9 is not breast
    assert float(reader.pool(logits, breast)) == pytest.approx(3.5)
    small = torch.tensor([[[True, False], [False, False]]])  # fewer breast cells than k: the mean of those
    assert float(reader.pool(logits, small)) == pytest.approx(5.0)
    assert float(fitting.pool(logits.flatten(1), small.flatten(1), 2)) == pytest.approx(5.0)  # training's too


def test_a_hidden_layer_head_folds_its_standardisation_and_exports_with_parity(tmp_path):
    """The patch classifier with a hidden layer, fitted on standardised features, becomes 1x1 convolutions on
    the raw features with the same logits (dropout gone), and the exported graph keeps parity with torch."""
    from mammodesk_train.reader.export import export_reader
    from mammodesk_train.reader.model import head_from_standardised

    torch.manual_seed(0)
    net = fitting.patch_classifier(112, 8).eval()
    mean, sd = torch.randn(112), torch.rand(112) + 0.5
    head = fitting.Head(net, mean, sd, k=2)
    features = torch.randn(2, 6, 112) * 3 + 1  # N x cells x C
    conv = head_from_standardised(net, mean, sd)
    as_map = features.transpose(1, 2).reshape(2, 112, 2, 3)
    with torch.no_grad():
        folded = conv(as_map).reshape(2, 6)
    assert torch.allclose(folded, head.patch_logits(features), atol=1e-4)
    assert not any(isinstance(m, torch.nn.Dropout) for m in conv.modules())
    with pytest.raises(TypeError, match="BatchNorm1d"):  # a layer it cannot fold is refused, not dropped
        head_from_standardised(torch.nn.Sequential(torch.nn.Linear(112, 8), torch.nn.BatchNorm1d(8)), mean, sd)
    linear = fitting.patch_classifier(112, 0)
    assert float(linear.weight.detach().abs().sum()) == 0.0  # the linear head starts at zero, as before

    reader = WholeImageReader(EfficientNet("lite0", 3), k=2).eval()
    reader.head = conv
    example = torch.zeros(2, 3, 128, 96)
    example[:, :, :64, :48] = torch.rand(2, 3, 64, 48)
    figures = export_reader(reader, example, tmp_path / "hidden.onnx", {"mammodesk.test": "1"})
    assert figures["max_logit_error"] < 1e-3 and figures["max_map_error"] < 1e-3
    assert -1.0 <= figures["map_vs_gradcam_correlation"] <= 1.0  # reported; only a linear head must equal its CAM


def test_the_flipped_reading_is_the_mean_of_both_readings_in_training_and_in_the_exported_graph(tmp_path):
    """With flip_reading the breast is also read upside down: the image logit is the mean of the two pooled
    logits, the map the mean of the two maps on the same cells; training scores it the same way, and the
    ONNX graph keeps parity with torch."""
    from mammodesk_train.reader.data import ReaderData
    from mammodesk_train.reader.export import export_reader

    torch.manual_seed(0)
    reader = WholeImageReader(reader_run.build_trunk("lite0"), k=2, flip_reading=True).eval()  # ImageNet's
    torch.nn.init.normal_(reader.head.weight, std=0.3)
    x = torch.zeros(2, 3, 128, 96)
    x[:, :, 16:112, :64] = torch.rand(2, 3, 96, 64)
    with torch.no_grad():
        logit, patch = reader(x)
        upright = reader.head(reader.features(x))
        flipped = reader.head(reader.features(torch.flip(x, dims=[2]))).flip(dims=[2])
        breast = reader.breast_cells(x)
        assert torch.allclose(patch, (upright + flipped) / 2, atol=1e-5)
        assert torch.allclose(logit, (reader.pool(upright[:, 0], breast) + reader.pool(flipped[:, 0], breast)) / 2,
                              atol=1e-5)
        assert not torch.allclose(logit, reader.pool(upright[:, 0], breast), atol=1e-4)  # the flip is read
        features = reader.features(x).flatten(2).transpose(1, 2)  # N x cells x C: what training holds
        features_flipped = reader.features(torch.flip(x, dims=[2])).flip(dims=[2]).flatten(2).transpose(1, 2)
    conv = reader.head
    net = torch.nn.Linear(conv.in_channels, 1)
    with torch.no_grad():
        net.weight.copy_(conv.weight[:, :, 0, 0])
        net.bias.copy_(conv.bias)
    head = fitting.Head(net.eval(), torch.zeros(conv.in_channels), torch.ones(conv.in_channels), k=2)
    data = ReaderData(["a", "b"], np.array([0, 1]), np.array(["p", "p"]), features, breast.flatten(1),
                      torch.zeros_like(breast.flatten(1)), np.array([False, False]), [[], []], np.zeros((2, 1)),
                      tuple(breast.shape[1:]), [None, None], np.zeros((2, 2)), [None, None], [None, None], 1.6,
                      features_flipped)
    index = np.arange(2)
    assert np.allclose(fitting.reader_logits(head, data, index), logit[:, 0].numpy(), atol=1e-4)
    assert torch.allclose(fitting.reader_patch_logits(head, data, index), patch.flatten(1), atol=1e-4)
    figures = export_reader(reader, x, tmp_path / "flip.onnx", {"mammodesk.test": "1"})
    assert figures["max_logit_error"] < 1e-3 and figures["max_map_error"] < 1e-3


def test_the_location_is_the_best_block_of_breast_cells():
    from mammodesk.inference.location import peak_centre

    logits = np.zeros((6, 5))
    logits[0, 0] = 9.0  # a lone hot cell
    logits[3:5, 2:4] = 6.0  # a 2 x 2 block, each cell cooler
    breast = np.ones((6, 5), bool)
    assert peak_centre(logits, breast, 1) == (0.5, 0.5)
    assert peak_centre(logits, breast, 2) == (4.0, 3.0)  # the block's centre, between its four cells
    row, col = peak_centre(logits, breast, 3)  # 3 x 3 blocks that hold all four block cells tie
    assert abs(row - 4.0) <= 0.5 and abs(col - 3.0) <= 0.5
    breast[3:5, 2:4] = False  # not breast: never the answer, whatever its logits
    assert peak_centre(logits, breast, 2) == (1.0, 1.0)
    with pytest.raises(ValueError, match="no breast"):
        peak_centre(logits, np.zeros_like(breast), 2)


def test_hidden_layer_settings_are_repeatable_and_named():
    setting = fitting.Setting(4, 0.1, 1.0, hidden=32)
    assert "hidden layer 32" in setting.text() and "hidden" not in fitting.Setting(4, 0.1, 1.0).text()
    preset = reader_run.PRESETS["reader-lite0-hidden"]
    assert {s.hidden for s in preset.settings} == {0, 32}  # linear and hidden heads, chosen in inner CV
    assert {s.k for s in preset.settings if s.hidden} == {s.k for s in preset.settings if not s.hidden}
    assert "one hidden ReLU layer of 32" in preset.description


def test_settings_fitted_together_equal_each_fitted_alone(tmp_path):
    """`fit_heads` fits every setting of an inner fold in one pass (shared rows, one first-layer product, one
    dropout mask per batch): each head must be the head its setting gets alone, hidden layers and their
    dropout included, with two hidden widths in one call; the caller's RNG is left as it was. Its rows
    come from the feature files on disk, a batch at a time: the same heads as from rows in memory."""
    from mammodesk_train.reader.cache import Rows

    data = synthetic_reader_data(24, 608, 16, breast_share=0.7, lift=0.5, finding_share=0.15, seed=5,
                                 map_shape=(32, 19))  # a map the size of the shipped reader's: ties broken as it is
    data.features, data.flipped = data.features.half().float(), data.flipped.half().float()  # as stored
    index, test = np.arange(16), np.arange(16, 24)
    settings = [fitting.Setting(1, 1e-2, 0.0), fitting.Setting(2, 0.3, 1.0, hidden=8), fitting.Setting(4, 1e-2, 1.0),
                fitting.Setting(2, 0.1, 1.0, hidden=8), fitting.Setting(1, 0.1, 0.0, hidden=4)]
    schedule = fitting.Schedule(epochs=4, batch=8)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    together = fitting.fit_heads(data, index, settings, schedule, seed=7)
    assert torch.equal(torch.rand(1), before)
    for setting, head in zip(settings, together):
        alone = fit_one_head(data, index, setting, schedule, seed=7)
        assert head.k == setting.k
        assert np.allclose(fitting.reader_logits(head, data, test), fitting.reader_logits(alone, data, test),
                           atol=1e-5), setting.text()
    on_disk = dataclasses.replace(data)
    for name in ("features", "flipped"):
        path = tmp_path / f"{name}.f16"
        path.write_bytes(getattr(data, name).half().numpy().tobytes())
        setattr(on_disk, name, Rows(path, np.arange(len(data)), tuple(data.features.shape[1:])))
    streamed = fitting.fit_heads(on_disk, index, settings, schedule, seed=7)
    for head, again in zip(together, streamed):
        assert np.array_equal(fitting.reader_logits(head, data, test), fitting.reader_logits(again, on_disk, test))
    different = fitting.fit_heads(data, index, settings[:2], schedule, seed=8)  # the seed matters
    assert not np.allclose(fitting.reader_logits(different[1], data, test),
                           fitting.reader_logits(together[1], data, test), atol=1e-3)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader")
    folder = mias_folder(root, lesions_on_spots=True, normal_women=(2, 4, 6, 8))  # 4 exams with a finding, 4 without
    seen: list[tuple[str, set]] = []
    original_choose = fitting.choose

    def recording_choose(data, index, settings, schedule, seed, inner_folds=3):
        seen.append(("choose", set(index.tolist())))
        return original_choose(data, index, settings, schedule, seed, inner_folds)

    original_bilateral = fitting.fit_bilateral

    def recording_bilateral(logits, partners, y, index):
        seen.append(("bilateral", set(index.tolist()), set(np.flatnonzero(np.isfinite(logits)).tolist())))
        return original_bilateral(logits, partners, y, index)

    original_exam_table = fitting.exam_table

    def recording_exam_table(logits, y, groups, sides, index=None):
        seen.append(("exam_table", set(index.tolist()), set(np.flatnonzero(np.isfinite(logits)).tolist())))
        return original_exam_table(logits, y, groups, sides, index)

    reader_run.choose, fitting.choose = recording_choose, recording_choose
    fitting.fit_bilateral, fitting.exam_table = recording_bilateral, recording_exam_table
    try:
        report = run_and_ship(f"mias:{folder}", root / "run", TINY, root / "reader.onnx", folds=2, seed=0,
                              second_seed=1)
    finally:
        reader_run.choose, fitting.choose = original_choose, original_choose
        fitting.fit_bilateral, fitting.exam_table = original_bilateral, original_exam_table
    return root, folder, report, seen


def test_settings_are_chosen_without_the_outer_test_fold(tiny_run):
    _, _, report, seen = tiny_run
    from mammodesk_train.splits import patient_kfold

    outer_choices = [event for event in seen if event[0] == "choose"][:2]  # the reported seed's, in fold order
    assert all(report["reported"]["folds"][i]["chosen"] for i in range(2))
    # rebuild the reported seed's outer folds and check each choice saw only its training part
    from mammodesk_train.data.sources import load_source

    records = load_source(f"mias:{tiny_run[1]}")
    y = np.array([0 if r.labels.is_normal else 1 for r in records])
    groups = np.array([r.patient_key for r in records])
    for (_, index), fold in zip(outer_choices, patient_kfold(y, groups, 2, 0)):
        assert index == set(fold.train.tolist()) and not index & set(fold.test.tolist())


def test_the_two_breasts_are_compared_with_weights_from_the_training_fold_only(tiny_run):
    from mammodesk_train.data.sources import load_source
    from mammodesk_train.splits import patient_kfold

    _, folder, report, seen = tiny_run
    records = load_source(f"mias:{folder}")
    y = np.array([0 if r.labels.is_normal else 1 for r in records])
    groups = np.array([r.patient_key for r in records])
    fits = [event for event in seen if event[0] == "bilateral"][:2]  # the reported seed's outer folds
    for (_, index, scored), fold in zip(fits, patient_kfold(y, groups, 2, 0)):
        assert index == set(fold.train.tolist())
        assert scored <= set(fold.train.tolist())  # fitted on the training fold's inner out-of-fold logits
    tables = [event for event in seen if event[0] == "exam_table"][:4]  # per outer fold: the rule's, then the test's
    for (_, rule_index, scored), (_, test_index, _), fold in zip(tables[::2], tables[1::2],
                                                                 patient_kfold(y, groups, 2, 0)):
        assert rule_index == set(fold.train.tolist()) and scored <= rule_index  # inner out-of-fold logits only
        assert test_index == set(fold.test.tolist())
    assert all(f["exam_rule"] for f in report["reported"]["folds"])
    for level in ("view", "breast", "exam"):  # a table per level, thresholds chosen on the other folds
        figures = report["reported"]["levels"][level]
        assert "other folds" in figures["how"] and 0.0 <= figures["band_share"] <= 1.0
    part = report["reported"]["bilateral"]
    assert part["images_compared"] == len(records)  # every woman has both MLOs
    assert {"comparison", "versus_one_view_baseline", "versus_one_view_reader", "operating_point"} <= set(part)
    card = read_card(tiny_run[0] / "reader.onnx")
    assert card.bilateral is not None and 0.0 < card.bilateral["threshold"] < 1.0
    assert card.bilateral["own"] == report["shipped"]["bilateral"]["own"]


def test_the_report_holds_the_baseline_both_seeds_calibration_and_the_operating_point(tiny_run):
    _, _, report, _ = tiny_run
    for seed in ("reported", "second_seed"):
        part = report[seed]
        assert {"model", "baseline", "difference", "beats_baseline"} <= set(part["comparison"])
        assert 0.0 <= part["operating_point"]["sensitivity"] <= 1.0
        assert "ece_before" in part["calibration"] and "other folds" in part["operating_point"]["how"]
    assert 0.0 < report["shipped"]["threshold"] < 1.0


def test_calibration_is_fitted_on_whole_images_out_of_fold(tiny_run):
    """The shipped calibration is the map fitted on out-of-fold image answers (one per image, each from a head
    with the shipped setting that never saw it), and the operating point is chosen on them."""
    from mammodesk.inference.calibration import apply_calibration
    from mammodesk_train import trust

    _, folder, report, _ = tiny_run
    oof = np.asarray(report["shipped_oof_probability"])
    assert len(oof) == report["images"] == 16 and np.isfinite(oof).all()  # whole images, not ROIs or windows
    from mammodesk_train.data.sources import load_source

    y = np.array([0 if r.labels.is_normal else 1 for r in load_source(f"mias:{folder}")])
    shipped = report["shipped"]["calibration"]
    probs = np.column_stack([1 - oof, oof])
    if shipped is not None:
        assert shipped == trust.fit_method(shipped["method"], probs, y)
        probs = apply_calibration(shipped, probs)
    assert report["shipped"]["threshold"] == reader_run.operating_point(probs[:, 1], y, TINY.sensitivity)


def test_the_export_runs_in_the_app_with_its_map_and_location(tiny_run):
    root, folder, report, _ = tiny_run
    figures = report["export"]
    assert figures["max_logit_error"] < 1e-3 and figures["max_map_error"] < 1e-3
    assert figures["map_vs_gradcam_correlation"] > 0.999  # the map is the image logit's Grad-CAM
    card = read_card(root / "reader.onnx")
    assert card.roi.mode == "image" and card.map_output == "patch_logits" and card.reads_whole_image
    assert card.operating_point["threshold"] == report["shipped"]["threshold"]
    assert card.roi.location_window == report["shipped"]["location_window"] in fitting.LOCATION_WINDOWS
    assert all(f["location_window"] in fitting.LOCATION_WINDOWS for f in report["reported"]["folds"])
    runner = ModelRunner(root / "reader.onnx", prefer_gpu=False)
    image = read_image(folder / "mdb001.pgm")
    prediction = runner.predict(image)
    assert prediction.threshold == card.threshold and prediction.heatmaps is not None
    heat = prediction.heatmaps.source(1, "patch probability")
    values = heat.values[np.isfinite(heat.values)]
    assert values.size and values.min() >= 0.0 and values.max() <= 1.0
    x0, y0, x1, y1 = prediction.roi_box
    assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]


def test_a_reader_run_exports_again_through_the_export_command_as_every_family_does(tiny_run, tmp_path, monkeypatch,
                                                                                  capsys):
    """The run folder keeps the shipped reader (`final/`): `mammodesk-train export RUN` rebuilds the same model,
    weights and card figures as the run's own export, and refuses it, as any family's, when it loses to its
    baseline unless forced."""
    from mammodesk_train.entry import main
    from mammodesk_train.families.registry import PRESETS

    root, _, report, _ = tiny_run
    monkeypatch.setitem(PRESETS, TINY.name, TINY)
    again = tmp_path / "again.onnx"
    beats = report["reported"]["comparison"]["beats_baseline"]
    assert main(["export", str(root / "run"), "--out", str(again)]) == (0 if beats else 3)
    assert main(["export", str(root / "run"), "--out", str(again), "--name", "reader-tiny", "--force"]) == 0
    assert "parity with torch verified" in capsys.readouterr().out
    first, second = read_card(root / "reader.onnx"), read_card(again)
    # the trained reader itself: its digest taken in the run, before its weights were kept
    assert second.weights_sha256 == first.weights_sha256 == report["shipped"]["weights_sha256"]
    assert second.threshold == first.threshold and second.metrics == first.metrics and second.levels == first.levels
    assert main(["explain", str(root / "run"), "--data", "mias:x"]) == 2  # the reader's maps are measured in its run
    capsys.readouterr()

    moved = tmp_path / "moved"  # the run's data gone since: exported all the same, untimed
    shutil.copytree(root / "run", moved)
    about = json.loads((moved / "report.json").read_text())
    (moved / "report.json").write_text(json.dumps({**about, "data": f"mias:{tmp_path / 'gone'}"}))
    assert main(["export", str(moved), "--out", str(tmp_path / "untimed.onnx"), "--name", "reader-tiny",
                 "--force"]) == 0
    assert "not timed" in capsys.readouterr().out and "Wall time" not in (tmp_path / "untimed.md").read_text()

    damaged = tmp_path / "damaged"  # weights that are not the run's: refused, and nothing half-written
    shutil.copytree(root / "run", damaged)
    state = torch.load(damaged / "final" / "model.pt", weights_only=True)
    state["head.weight" if "head.weight" in state else "head.0.weight"] += 1.0
    torch.save(state, damaged / "final" / "model.pt")
    target = tmp_path / "models"
    assert main(["export", str(damaged), "--out", str(target / "reader-tiny.onnx"), "--force"]) == 2
    assert "is not the reader its run trained" in capsys.readouterr().err
    assert list(target.iterdir()) == []  # no model, card or temporary folder left behind


def test_predict_writes_image_breast_and_exam_answers(tiny_run):
    import csv

    from mammodesk.cli import main

    root, folder, report, _ = tiny_run
    out = root / "answers.csv"
    files = [str(folder / f"mdb00{i}.pgm") for i in (1, 2, 3, 4)]  # two women, both breasts each
    assert main(["predict", *files, "--model", str(root / "reader.onnx"), "--out", str(out), "--cpu"]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert [row["level"] for row in rows] == ["image", "image", "breast", "breast", "exam"] * 2  # after its images
    card = read_card(root / "reader.onnx")
    levels = card.level_rules
    assert levels.breast is not None and levels.exam is not None and levels.rule is not None
    first = rows[:5]
    assert {r["laterality"] for r in first[:2]} == {"R", "L"} and all(r["view"] == "MLO" for r in first[:2])
    assert len({r["exam"] for r in first}) == 1 and first[0]["exam"] != rows[5]["exam"]
    vocabulary = {"normal", "abnormal", "no clear answer"}
    for breast in first[2:4]:  # one MLO per breast: the breast is its view, with the view's one number
        (view,) = [r for r in first[:2] if r["laterality"] == breast["laterality"]]
        assert breast["p_abnormal"] == view["p_abnormal"] and breast["score"] == view["score"]
        p = float(breast["p_abnormal"])
        assert breast["answer"] == view["answer"] == levels.breast.answer(p) and breast["answer"] in vocabulary
        assert breast["flagged"] == ("yes" if p >= levels.breast.flag else "no") and breast["domain"] == "in domain"
    for view in first[:2]:  # a view not flagged has no box (a 'no finding' row points at nothing)
        assert bool(view["box"]) == (view["flagged"] == "yes") and view["region"] == "whole mammogram"
    exam = first[4]
    from mammodesk.inference.bilateral import Bilateral, image_logit

    runner = ModelRunner(root / "reader.onnx", prefer_gpu=False)
    logits = {row["laterality"]: image_logit(runner.predict(read_image(row["file"])).raw_probabilities[-1])
              for row in first[:2]}
    expected = levels.rule.probability(list(logits.values()))  # the exam rule on both breasts' image logits
    assert float(exam["p_abnormal"]) == pytest.approx(expected, abs=1e-3)
    assert exam["answer"] == levels.exam.answer(expected) and exam["score"] == str(levels.exam.score(expected))
    bilateral = Bilateral.from_card(card.bilateral)
    right, left = first[:2] if first[0]["laterality"] == "R" else first[1::-1]
    assert right["compared_with"].startswith("L MLO") and left["compared_with"].startswith("R MLO")
    for row, other in ((right, "L"), (left, "R")):  # each view's answer is the comparison's ...
        expected = bilateral.probability(logits[row["laterality"]], logits[other])
        assert float(row["p_abnormal"]) == pytest.approx(expected, abs=1e-3)
        assert row["answer"] == levels.breast.answer(expected)
        assert "this view alone: p " in row["notes"]  # ... and its own answer is kept beside it
    assert all(len(r["p_abnormal"].partition(".")[2]) <= 3 for r in rows)


def test_predict_without_a_model_runs_the_reader_and_no_level_outranks_a_view_outside_training(tiny_run, tmp_path):
    """`predict` needs no --model (the best whole-mammogram reader answers); a digital view outside the
    training data leaves its breast and exam with no answer: no score, no flag, no box, the domain said."""
    import csv

    from dicom_factory import make_dataset, mammogram_like, write

    from mammodesk.cli import main

    root, folder, _, _ = tiny_run
    models = tmp_path / "models"
    models.mkdir()
    (models / "reader.onnx").write_bytes((root / "reader.onnx").read_bytes())  # its CV AUC beats the bundled one
    digital = write(make_dataset(mammogram_like(256, 208), bits_stored=16, phi=False, PixelSpacing=[0.07, 0.07],
                                 ImageLaterality="L", ViewPosition="MLO", PatientID="P1", StudyInstanceUID="1.2.3"),
                    tmp_path / "l_mlo.dcm")
    other = write(make_dataset(mammogram_like(256, 208, seed=1), bits_stored=16, phi=False, PixelSpacing=[0.07, 0.07],
                               ImageLaterality="R", ViewPosition="MLO", PatientID="P1", StudyInstanceUID="1.2.3"),
                  tmp_path / "r_mlo.dcm")
    out = tmp_path / "a.csv"
    code = main(["predict", str(digital), str(other), "--models-dir", str(models), "--out", str(out), "--cpu"])
    assert code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert [r["level"] for r in rows] == ["image", "image", "breast", "breast", "exam"]
    assert all("outside training data" in r["domain"] for r in rows)
    for row in rows:
        assert row["answer"].startswith("no clear answer") and not row["box"] and not row["location"]
        assert row["flagged"] in ("", "no") and not row["score"]
    for row in rows[2:]:
        assert not row["p_abnormal"] and "outside training data" in row["answer"]
    assert "reader-tiny" in json.loads((tmp_path / "a.model.json").read_text())["model"]["name"]


def test_a_model_in_a_folder_given_wins_over_a_bundled_one_of_the_same_name(tiny_run, tmp_path, capsys):
    """A retrained reader keeps the bundled reader's name: `--models-dir mine --model NAME` takes mine, and says
    which file ran."""
    from mammodesk.inference import ModelLibrary
    from mammodesk.cli import main

    root, folder, _, _ = tiny_run
    bundled = next(e for e in ModelLibrary().entries if e.bundled and e.card and e.card.roi.mode == "image")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / f"{bundled.path.stem}.onnx").write_bytes((root / "reader.onnx").read_bytes())
    library = ModelLibrary([mine])
    assert library.find(bundled.path.stem).path == mine / f"{bundled.path.stem}.onnx"
    out = tmp_path / "a.csv"
    assert main(["predict", str(folder / "mdb001.pgm"), "--models-dir", str(mine), "--model", bundled.path.stem,
                 "--out", str(out), "--cpu"]) == 0
    assert str(mine) in capsys.readouterr().err


def test_an_image_without_a_breast_fails_alone_in_its_batch(tiny_run, tmp_path):
    import csv

    import cv2

    from mammodesk.cli import main

    root, folder, _, _ = tiny_run
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.zeros((128, 96), np.uint8))  # nothing to read: no breast
    out = tmp_path / "answers.csv"
    files = [str(folder / "mdb001.pgm"), str(blank), str(folder / "mdb002.pgm")]
    main(["predict", *files, "--model", str(root / "reader.onnx"), "--out", str(out), "--cpu"])
    images = [row for row in csv.DictReader(out.open()) if row["level"] == "image"]
    assert [row["status"] for row in images] == ["ok", "failed", "ok"]  # one batch: the others still answered
    assert "breast" in images[1]["error"] and images[0]["p_abnormal"] and images[2]["p_abnormal"]


def test_a_reader_on_one_class_stops_before_reading_any_image(tmp_path, monkeypatch):
    from mammodesk_train.data.sources import DataError

    folder = tmp_path / "data" / "normal"
    folder.mkdir(parents=True)
    import cv2

    for i in range(6):
        cv2.imwrite(str(folder / f"p{i}.png"), np.full((64, 48), 100, np.uint8))
    monkeypatch.setattr(reader_run, "build_trunk", lambda name: pytest.fail("read images before checking labels"))
    with pytest.raises(DataError, match="normal in 6, abnormal in 0"):
        reader_run.run(f"folder:{tmp_path / 'data'}", tmp_path / "run", TINY, folds=5)


def test_evaluate_warns_when_a_reader_meets_its_own_training_women(tiny_run, capsys):
    from mammodesk_train.entry import main as train_main

    root, folder, _, _ = tiny_run
    card = read_card(root / "reader.onnx")
    assert len(card.training["patient_key_hashes"]) == 8 and card.training["samples"] == 16
    assert card.training["dataset"] == f"mias:{folder.name}"  # no local path in a shipped file
    assert train_main(["evaluate", str(root / "reader.onnx"), "--data", f"mias:{folder}"]) == 0
    assert "16 of 16 images belong to patients the model was trained on" in capsys.readouterr().err


@pytest.mark.parametrize("source", ["manifest", "labels"])
def test_a_reader_trained_from_a_data_list_answers_under_its_own_name(tmp_path, capsys, source):
    """A manifest, or the labels drawn in MammoDesk -> reader -> export -> predict by the model's own name."""
    from mammodesk.annotations import ImageLabels
    from mammodesk.annotations.model import Finding, FindingKind
    from mammodesk.annotations.sidecar import sidecar_bytes
    from mammodesk.cli import main
    from mammodesk_train.data.sources import load_source

    folder = mias_folder(tmp_path / "mias")
    rows = ["path,patient,label,laterality"]
    for record in load_source(f"mias:{folder}"):
        woman = (int(record.image_id[3:]) + 1) // 2
        normal = record.labels.is_normal
        rows.append(f"{record.path.relative_to(tmp_path)},woman-{woman},{'normal' if normal else 'abnormal'},"
                    f"{record.labels.laterality}")
        drawn = ImageLabels(record.image_id, (Finding(FindingKind.NORMAL if normal else FindingKind.MASS),))
        record.path.with_name(record.path.name + ".mammodesk.json").write_bytes(
            sidecar_bytes(drawn, file_name=record.path.name, sha256="0" * 64, shape=(64, 64), revision=1))
    manifest = tmp_path / "list.csv"
    manifest.write_text("\n".join(rows) + "\n")
    data = f"manifest:{manifest}" if source == "manifest" else f"labels:{folder}"
    models = tmp_path / "models"
    models.mkdir()
    report = run_and_ship(data, tmp_path / "run", dataclasses.replace(TINY, flip_reading=False),
                          models / "our-reader.onnx", "our-reader", folds=2, seed=0, second_seed=1)
    assert report["patients"] == 8 and report["grouping"]["counts"] == {
        "manifest": {"given": 16}, "labels": {"file name": 16}}[source]
    assert "2-fold patient-level" in report["evaluation"]
    card = read_card(models / "our-reader.onnx")
    public = {"manifest": "manifest:list.csv", "labels": f"labels:{folder.name}"}[source]
    assert card.name == "our-reader" and card.training["dataset"] == public
    card_text = (models / "our-reader.md").read_text()
    assert "Far too small for accuracy" in card_text and "**Not for clinical use.**" in card_text  # every card's opening
    out = tmp_path / "answers.csv"
    assert main(["predict", str(folder / "mdb001.pgm"), "--models-dir", str(models), "--model", "our-reader",
                 "--out", str(out), "--cpu"]) == 0
    assert str(models / "our-reader.onnx") in capsys.readouterr().err
    about = json.loads(out.with_suffix(".model.json").read_text())["model"]
    assert about["name"] == "our-reader" and about["population"].startswith(f"{public} development data")


def test_a_reader_trained_on_digital_rsna_answers_digital_views_and_flags_film(tmp_path, capsys):
    """rsna layout (12-bit DICOMs) -> reader -> export -> predict: its own digital views are answered, a film
    (8-bit MIAS) view is outside its training data."""
    import csv
    from pathlib import Path

    from dicom_factory import make_dataset, write
    from train_fixtures import breast

    from mammodesk.cli import main

    root = tmp_path / "rsna"
    rows = ["patient_id,image_id,laterality,view,cancer,biopsy"]
    for patient in range(8):
        for side in "LR":
            cancer = int(patient % 2 == 0 and side == "L")
            image = f"{patient}{side}"
            pixels = breast(patient * 2 + (side == "R"), bright_spot=bool(cancer)).astype(np.uint16) * 16
            (root / "train_images" / f"P{patient}").mkdir(parents=True, exist_ok=True)
            write(make_dataset(pixels, bits_stored=12, phi=False, PatientID=f"P{patient}", ImageLaterality=side,
                               ViewPosition="MLO", PixelSpacing=[0.2, 0.2]),
                  root / "train_images" / f"P{patient}" / f"{image}.dcm")
            rows.append(f"P{patient},{image},{side},MLO,{cancer},0")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    models = tmp_path / "models"
    models.mkdir()
    report = run_and_ship(f"rsna:{root}", tmp_path / "run", dataclasses.replace(TINY, flip_reading=False),
                          models / "rsna-reader.onnx", "rsna-reader", folds=2, seed=0, second_seed=1)
    assert report["patients"] == 8 and report["abnormal"] == 4 and report["acquisition"]["kinds"] == ["digital"]
    assert "acquisition digital (12-bit DICOM); patients from the data list's patient column (16 images)" in \
        (models / "rsna-reader.md").read_text()
    film = mias_folder(tmp_path / "mias") / "mdb001.pgm"
    out = tmp_path / "answers.csv"
    assert main(["predict", str(root / "train_images" / "P1" / "1L.dcm"), str(film), "--models-dir", str(models),
                 "--model", "rsna-reader", "--out", str(out), "--cpu"]) == 0
    with open(out, encoding="utf-8-sig") as handle:
        views = {Path(row["file"]).name: row for row in csv.DictReader(handle) if row["level"] == "image"}
    assert views["1L.dcm"]["domain"] == "in domain" and views["1L.dcm"]["p_abnormal"]
    assert "outside training data: film" in views["mdb001.pgm"]["domain"] and not views["mdb001.pgm"]["p_abnormal"]


def test_images_are_read_once_and_a_killed_read_continues_where_it_stopped(tmp_path, monkeypatch):
    """The feature cache: a second prepare reads no image; one killed halfway reads only the rest, and a half
    row left at the end of the file is cut off. The data are the same either way."""
    from mammodesk_train.data.sources import load_source
    from mammodesk_train.reader.data import prepare

    records = load_source(f"mias:{mias_folder(tmp_path / 'mias')}", announce=False)
    reader = WholeImageReader(reader_run.build_trunk("lite0"), k=1, flip_reading=True)
    reads = []
    original = reader.features
    reader.features = lambda x: (reads.append(1), original(x))[1]
    kwargs = dict(spacing_mm=TINY.spacing_mm, flip_reading=True, progress=False, cache_root=tmp_path / "cache")
    from mammodesk_train.data.sources import Record

    plain, loads = Record.load, []

    def killed_after_five(self):
        loads.append(self.image_id)
        if len(loads) > 5:
            raise KeyboardInterrupt
        return plain(self)

    monkeypatch.setattr(Record, "load", killed_after_five)
    with pytest.raises(KeyboardInterrupt):
        prepare(records, TINY.spec(), reader, **kwargs)
    monkeypatch.undo()
    folder = next((tmp_path / "cache").iterdir())
    cells, channels = json.loads((folder / "shape.json").read_text())
    with open(folder / "upright.f16", "ab") as handle:  # killed between an image's upright and flipped rows,
        handle.write(b"\0" * (cells * channels * 2 + 100))  # and in the middle of the next one
    reads.clear()
    resumed = prepare(records, TINY.spec(), reader, **kwargs)
    assert len(reads) == 2 * (len(records) - 5)  # upright and flipped, only the images not read before
    reads.clear()
    again = prepare(records, TINY.spec(), reader, **kwargs)
    assert reads == []  # everything from the cache
    index = np.arange(len(records))
    assert torch.equal(resumed.features[index], again.features[index]) and torch.equal(resumed.flipped[index],
                                                                                      again.flipped[index])
    fresh = prepare(records, TINY.spec(), reader, **{**kwargs, "cache_root": tmp_path / "other"})
    assert torch.equal(fresh.features[index], again.features[index])
    assert np.array_equal(fresh.base_features, again.base_features) and torch.equal(fresh.finding, again.finding)
    assert fresh.sides == again.sides and fresh.metas[0].bits_stored == again.metas[0].bits_stored == 8


def test_worker_processes_read_the_images_as_one_process_does_and_a_bad_file_stops_with_its_name(tmp_path):
    """`prepare(rebuild=preset)` reads the images not in the cache in worker processes: the same data as read
    here; a file that cannot be read stops the run naming it, the images read before it kept."""
    from mammodesk_train.data.sources import load_source
    from mammodesk_train.reader.data import prepare

    records = load_source(f"mias:{mias_folder(tmp_path / 'mias')}", announce=False)
    kwargs = dict(spacing_mm=TINY.spacing_mm, flip_reading=True, progress=False)
    here = prepare(records, TINY.spec(), TINY.build(), cache_root=tmp_path / "here", **kwargs)
    pooled = prepare(records, TINY.spec(), TINY.build(), cache_root=tmp_path / "pooled", rebuild=TINY, workers=2,
                     **kwargs)
    index = np.arange(len(records))
    for mine, theirs in ((here.features, pooled.features), (here.flipped, pooled.flipped)):
        assert torch.allclose(mine[index], theirs[index], atol=1e-2, rtol=1e-3)  # float16 rows, one thread or two
    assert np.array_equal(here.base_features, pooled.base_features) and torch.equal(here.breast, pooled.breast)
    assert torch.equal(here.tissue, pooled.tissue) and here.sides == pooled.sides and here.ids == pooled.ids

    damaged = records[4].path
    damaged.write_bytes(b"P5\n64 64\n255\n" + b"\0" * 10)
    for workers in (2, 1):  # in worker processes, and here
        with pytest.raises(ValueError, match=rf"could not read {records[4].image_id}: .*stay in the cache"):
            prepare(records, TINY.spec(), TINY.build(), cache_root=tmp_path / f"stopped{workers}", rebuild=TINY,
                    workers=workers, **kwargs)
        reader, reads = TINY.build(), []
        original = reader.features
        reader.features = lambda x: (reads.append(1), original(x))[1]
        prepare(records[:4], TINY.spec(), reader, cache_root=tmp_path / f"stopped{workers}", **kwargs)
        assert reads == []  # the images before the damaged one were kept


def test_predict_resumes_a_stopped_batch_without_reading_its_files_again(tiny_run, tmp_path, capsys):
    """Rows are kept as they finish; --resume reads only the files not yet answered, and the finished CSV,
    breast and exam rows included, is the one an uninterrupted run writes."""
    import csv

    from mammodesk.cli import main

    root, folder, _, _ = tiny_run
    models = tmp_path / "models"
    models.mkdir()
    (models / "reader-tiny.onnx").write_bytes((root / "reader.onnx").read_bytes())
    files = [str(folder / f"mdb00{i}.pgm") for i in (1, 2, 3, 4)]
    common = ["--models-dir", str(models), "--model", "reader-tiny", "--cpu"]
    whole = tmp_path / "whole.csv"
    assert main(["predict", *files, "--out", str(whole), *common]) == 0
    out = tmp_path / "resumed.csv"
    assert main(["predict", *files[:2], "--out", str(out), *common]) == 0  # stopped after two files
    journal = out.with_name("resumed.views.jsonl")
    with open(journal, "a", encoding="utf-8") as handle:
        handle.write('{"row": {"file": "cut sh')  # a killed run's last line, cut short: ignored
    capsys.readouterr()
    assert main(["predict", *files, "--out", str(out), "--resume", *common]) == 0
    said = capsys.readouterr().err
    assert "2 file(s) already answered" in said and "[1/2] mdb003.pgm" in said and "mdb001.pgm" not in said
    read = lambda path: [{k: v for k, v in row.items() if k != "file"} | {"file": row["file"]}  # noqa: E731
                         for row in csv.DictReader(path.open(encoding="utf-8-sig"))]
    assert read(out) == read(whole)
    assert [r["level"] for r in read(out)].count("exam") == 2
    assert main(["predict", *files, "--out", str(out), "--resume", "--cpu"]) == 2  # the bundled reader: another
    assert "was written by the model 'reader-tiny'" in capsys.readouterr().err


def test_a_stopped_reader_run_resumes_from_its_finished_folds_with_the_same_figures(tiny_run, tmp_path,
                                                                                    monkeypatch):
    """Killed in its third outer fold, the run is refused a second start into the same --out, then --resume
    fits only the folds not done and reports what an uninterrupted run reports."""
    _, _, whole, _ = tiny_run
    folder = mias_folder(tmp_path / "mias", lesions_on_spots=True, normal_women=(2, 4, 6, 8))  # tiny_run's images
    out = tmp_path / "run"
    original, calls = fitting._outer_fold, []

    def killed_in_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(fitting, "_outer_fold", killed_in_the_third)
    with pytest.raises(KeyboardInterrupt):
        reader_run.run(f"mias:{folder}", out, TINY, folds=2, seed=0, second_seed=1)
    assert sorted(p.name for p in (out / "folds").iterdir()) == ["seed0-fold1.json", "seed0-fold2.json"]
    with pytest.raises(ValueError, match="--resume continues it"):
        reader_run.run(f"mias:{folder}", out, TINY, folds=2, seed=0, second_seed=1)
    calls.clear()
    monkeypatch.setattr(fitting, "_outer_fold", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    resumed = reader_run.run(f"mias:{folder}", out, TINY, folds=2, seed=0, second_seed=1, resume=True)
    assert len(calls) == 2  # the second seed's two folds; the first seed's came from the stopped run
    for part in ("reported", "second_seed"):
        assert resumed[part]["comparison"] == whole[part]["comparison"]
        assert resumed[part]["levels"] == whole[part]["levels"]
    assert resumed["shipped"]["threshold"] == whole["shipped"]["threshold"]
