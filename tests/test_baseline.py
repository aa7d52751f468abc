"""The plain baseline: its features follow their formulas, and it is trained in
exactly the model's patient-level folds, never on a test patient."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
from train_fixtures import mias_folder  # noqa: E402

from mammodesk.io import Image, ImageMeta  # noqa: E402
from mammodesk_train import baseline  # noqa: E402
from mammodesk_train.cv import run_cv  # noqa: E402
from mammodesk_train.data.builders import whole_images  # noqa: E402
from mammodesk_train.data.sources import load_source  # noqa: E402
from mammodesk_train.data.tasks import get_task  # noqa: E402
from mammodesk_train.families.fusion_vgg import FusionFamily, FusionPreset  # noqa: E402
from mammodesk_train.engine import FitConfig  # noqa: E402
from mammodesk.preprocessing import PipelineSpec  # noqa: E402


def test_region_features_follow_their_formulas():
    rng = np.random.default_rng(0)
    values = rng.random((40, 40)).astype(np.float32) * 0.4
    values[10:30, 10:30] += 0.5  # a bright centre
    mask = np.ones_like(values, bool)
    features = dict(zip(baseline.FEATURES, baseline.region_features(values, mask, roi=True)))
    assert len(features) == len(baseline.FEATURES) == 22
    assert features["mean"] == pytest.approx(values.mean(), rel=1e-6)
    assert features["p50"] == pytest.approx(np.median(values), rel=1e-6)
    assert features["bright_share"] == pytest.approx((values > 0.5).mean())
    centre = np.zeros_like(mask)
    centre[10:30, 10:30] = True
    assert features["centre_minus_surround"] == pytest.approx(values[centre].mean() - values[~centre].mean(), rel=1e-5)
    assert features["breast_share"] == 1.0


@pytest.mark.parametrize("where", [(slice(9, 30), slice(5, 22)), (slice(0, 25), slice(0, 48)),
                                   (slice(20, 40), slice(30, 48))])  # inside; along the top; bottom right
def test_a_masked_region_reads_as_the_plain_formulas_on_the_whole_image(where):
    """Only the mask's box (grown by a pixel) is looked at: the gradient, co-occurrence and moments equal the
    plain formulas over the whole image (`np.gradient`, `graycomatrix` with level 0 outside the mask)."""
    from skimage.feature import graycomatrix, graycoprops

    rng = np.random.default_rng(1)
    values = rng.random((40, 48)).astype(np.float32)
    mask = np.zeros_like(values, bool)
    mask[where] = True
    mask[where[0].start + 3, where[1].start + 4] = False  # a hole: its pixel is outside, its neighbours inside
    features = dict(zip(baseline.FEATURES, baseline.region_features(values, mask, roi=False)))
    gy, gx = np.gradient(values)
    assert features["gradient"] == pytest.approx(np.hypot(gx, gy)[mask].mean(), rel=1e-6)
    inside = values[mask].astype(np.float64)
    z = (inside - inside.mean()) / inside.std()
    assert features["skewness"] == pytest.approx((z ** 3).mean(), rel=1e-4, abs=1e-6)
    assert features["kurtosis"] == pytest.approx((z ** 4).mean() - 3, rel=1e-4)
    quantised = np.where(mask, 1 + np.minimum((values * 32).astype(int), 31), 0).astype(np.uint8)
    matrix = graycomatrix(quantised, [1, 3], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=33)[1:, 1:]
    matrix = matrix / matrix.sum(axis=(0, 1), keepdims=True)
    for d, distance in enumerate((1, 3)):
        for prop in ("contrast", "homogeneity", "energy", "correlation"):
            expected = graycoprops(matrix[:, :, d:d + 1, :], prop).mean()
            assert features[f"glcm_{prop}_d{distance}"] == pytest.approx(expected, rel=1e-9)
    assert features["breast_share"] == pytest.approx(mask.mean())


def test_whole_image_features_are_absolute_intensity():
    """Scaled by bit depth, not by the image's own range: a dim 12-bit breast stays dim."""
    pixels = np.zeros((64, 64), np.uint16)
    pixels[8:56, :40] = 400
    dim = baseline.image_features(Image(pixels, ImageMeta(bits_stored=12)))
    bright = baseline.image_features(Image(pixels * 8, ImageMeta(bits_stored=12)))
    index = baseline.FEATURES.index("mean")
    assert dim[index] == pytest.approx(400 / 4095, rel=1e-3) and bright[index] == pytest.approx(3200 / 4095, rel=1e-3)


TINY = FusionPreset("fusion-tiny", "test", 1, 0.0625, FitConfig(epochs=1, batch_size=16), {0: 2, 1: 4},
                    roi=48, patch=32, vote_patches=5)


def test_baseline_uses_the_model_folds_and_never_sees_a_test_patient(tmp_path, monkeypatch):
    records = load_source(f"mias:{mias_folder(tmp_path, lesions_on_spots=True)}")
    task = get_task("normal_abnormal", records)
    family = FusionFamily(TINY, device="cpu", progress=False)
    model_folds, base_folds = [], []
    train = family.train
    monkeypatch.setattr(family, "train", lambda samples, extra, index, *a, **k: (
        model_folds.append(np.array(index)), train(samples, extra, index, *a, **k))[1])
    fit_predict = baseline.fit_predict

    def spy(features, y, train_index, test_index, classes):
        base_folds.append((np.array(train_index), np.array(test_index)))
        return fit_predict(features, y, train_index, test_index, classes)

    monkeypatch.setattr(baseline, "fit_predict", spy)
    document = run_cv(family, records, task, data="mias:tiny", folds=2, seed=0, out=tmp_path / "run", final=False)
    samples, _ = family.build_samples(records, task)
    groups = samples.groups
    assert len(base_folds) == 2 and len(model_folds) == 2
    for (base_train, base_test), model_train in zip(base_folds, model_folds):
        np.testing.assert_array_equal(base_train, model_train)  # the same training samples as the model
        assert not set(groups[base_train]) & set(groups[base_test])  # no test patient in its training set
    assert sorted(np.concatenate([test for _, test in base_folds]).tolist()) == list(range(len(samples)))
    comparison = document["comparison"]
    assert comparison["model"]["folds"] == [m["auc"] for m in document["folds_detail"]]
    assert comparison["baseline"]["folds"] == [m["auc"] for m in document["baseline"]["folds_detail"]]
    diffs = np.array(comparison["model"]["folds"]) - np.array(comparison["baseline"]["folds"])
    assert comparison["difference"]["folds"] == pytest.approx(diffs.tolist())
    assert comparison["beats_baseline"] == (diffs.mean() > comparison["spread"] and len(diffs) >= 5)
    assert not comparison["beats_baseline"] and comparison["cannot_judge"].startswith("2 folds")


def test_two_folds_cannot_pass_the_gate_and_five_can():
    model, base = [{"auc": v} for v in (0.90, 0.91, 0.92, 0.90, 0.91)], [{"auc": v} for v in (0.6, 0.61, 0.6, 0.62, 0.6)]
    two = baseline.compare(model[:2], base[:2])
    assert not two["beats_baseline"] and two["cannot_judge"] == "2 folds (the check needs at least 5)"
    five = baseline.compare(model, base)
    assert five["beats_baseline"] and "cannot_judge" not in five and "beats it" in baseline.verdict(five)


def test_roi_samples_use_their_own_windows(tmp_path):
    """ROI baselines look at each sample's own source window; whole-image ones at the breast."""
    records = load_source(f"mias:{mias_folder(tmp_path, lesions_on_spots=True)}")
    task = get_task("normal_abnormal", records)
    rois, _ = FusionFamily(TINY, device="cpu", progress=False).build_samples(records, task)
    features = baseline.sample_features(rois)
    mean = baseline.FEATURES.index("mean")
    abnormal, normal = features[rois.y == 1, mean], features[rois.y == 0, mean]
    assert abnormal.min() > normal.max()  # the windows on the bright lesions are brighter than normal tissue
    images = whole_images(records, task, PipelineSpec([{"op": "resize", "params": {"width": 16, "height": 16}}]))
    assert images.windows is None and baseline.sample_features(images).shape == (16, 22)


def test_a_model_that_answers_one_class_only_does_not_ship():
    from mammodesk_train.baseline import compare, gate, verdict
    from mammodesk_train.metrics import classification_metrics

    comparison = compare([{"auc": v} for v in (0.53, 0.54, 0.53, 0.54, 0.53)], [{"auc": 0.46}] * 5)
    assert comparison["beats_baseline"]  # by AUC alone it would ship
    y = np.array([0, 1, 0, 1, 0, 1])
    always_normal = np.column_stack([np.full(6, 0.6), np.full(6, 0.4)])
    gated = gate(comparison, classification_metrics(y, always_normal, ("normal", "abnormal")))
    assert not gated["beats_baseline"] and "never answers abnormal" in gated["degenerate"]
    assert "does NOT ship" in verdict(gated)
    mixed = np.column_stack([[0.6, 0.3, 0.7, 0.2, 0.6, 0.4], [0.4, 0.7, 0.3, 0.8, 0.4, 0.6]])
    assert gate(comparison, classification_metrics(y, mixed, ("normal", "abnormal"))) is comparison
