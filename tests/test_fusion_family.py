"""The deep-fusion VGG recipe: every registered preset builds and runs, ROI
CV with patch voting on a tiny MIAS layout, and the exported patch model
agrees with torch through the app's engine."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from train_fixtures import mias_folder  # noqa: E402

from mammodesk.inference import ModelRunner  # noqa: E402
from mammodesk.inference.patches import cut_patches, patch_positions  # noqa: E402
from mammodesk.io import read_image  # noqa: E402
from mammodesk.preprocessing import crop_frame  # noqa: E402
from mammodesk_train.cv import run_cv  # noqa: E402
from mammodesk_train.data.sources import load_source  # noqa: E402
from mammodesk_train.data.tasks import get_task  # noqa: E402
from mammodesk_train.engine import FitConfig  # noqa: E402
from mammodesk_train.families.fusion_vgg import FusionFamily, FusionPreset  # noqa: E402
from mammodesk_train.families.registry import PRESETS, empty_model, family_for  # noqa: E402

TINY = FusionPreset("fusion-tiny", "test", 2, 0.0625, FitConfig(epochs=1, batch_size=16), {0: 2, 1: 4},
                    roi=48, patch=32, vote_patches=5)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_registered_preset_builds_and_runs(name):
    preset = PRESETS[name]
    model = empty_model(preset, 2)
    assert family_for(preset, device="cpu").preset is preset
    with torch.no_grad():
        if preset.family == "fusion-vgg":
            model.eval()
            assert model(torch.zeros(2, 3, preset.patch, preset.patch)).shape == (2, 2)
            side = preset.roi_pixels or preset.roi
            assert preset.spec().apply(read_image_like(preset.roi)).array.shape == (side, side, 3)
        elif preset.family == "hybrid":
            model.eval()
            assert model(torch.zeros(1, 3, preset.size, preset.size)).shape == (1, 1)  # one sigmoid unit
            assert preset.spec().apply(read_image_like(preset.roi)).array.shape == (preset.size, preset.size, 3)
        elif preset.family == "simclr":
            model.eval()
            assert model(torch.zeros(2, 1, preset.size, preset.size)).shape == (2, 2)
            assert preset.spec().apply(read_image_like(200)).array.shape == (preset.size, preset.size)
        elif preset.family == "transfer":
            model.eval()  # convolutional: a small input checks the wiring; the spec checks the real size
            assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)
            assert preset.spec().apply(read_image_like(preset.roi)).array.shape == (preset.size, preset.size, 3)
        elif preset.family == "reader":
            model.eval()  # one image logit and the patch map, 16 pixels a cell
            logit, patch = model(torch.zeros(1, 3, preset.height, preset.width))
            assert logit.shape == (1, 1) and patch.shape == (1, 1, preset.height // 16, preset.width // 16)
        else:
            model.vae.eval()
            channels = 3 if preset.lite else 1  # the Lite0 encoder reads ImageNet's three channels
            recon, mu, _ = model.vae(torch.zeros(1, channels, preset.height, preset.width))
            expected = getattr(model.vae, "reconstruction", (preset.height, preset.width))  # Lite0: low-res target
            assert recon.shape[2:] == expected and mu.shape == (1, preset.latent)


def read_image_like(size: int):
    from mammodesk.io import Image, ImageMeta

    pixels = (np.random.default_rng(0).random((size + 7, size + 3)) * 200 + 30).astype(np.uint8)
    return Image(pixels, ImageMeta())


def test_paper_presets_follow_models_md():
    m1, m2 = PRESETS["fusion-vgg16-m1"], PRESETS["fusion-vgg16-m2"]
    assert (m1.roi, m1.patch, m1.vote_patches, m1.patches_per_class) == (120, 72, 25, {0: 500, 1: 2000})
    net = m1.build(2)
    assert net.head[0].num_features == 1472 and not net.mixers
    assert sum(p.numel() for p in net.trunk.parameters()) == 14_714_688  # the VGG16 convolutional trunk
    assert set(m2.build(2).mixers) == {f"block{b}" for b in range(1, 6)}


def test_roi_cv_votes_and_patch_level_metrics(tmp_path):
    records = load_source(f"mias:{mias_folder(tmp_path, lesions_on_spots=True)}")
    task = get_task("normal_abnormal", records)
    family = FusionFamily(TINY, device="cpu", progress=False)
    document = run_cv(family, records, task, data="mias:tiny", folds=2, seed=0, out=tmp_path / "run", final=True)
    assert document["samples"] == 16 and document["leakage"][0]["shared_patients"] == []
    assert "auc" in document["cv_summary_patch_level"] and "accuracy" in document["cv_summary"]
    assert "accuracy" in document["cv_summary_majority_vote"]  # the study's 25-patch vote, reported beside
    rois, _ = family.build_samples(records, task)
    model = family.train(rois, None, np.arange(len(rois)), 2, 0)
    scores = family.predict(model, rois.x)
    patches = family.patch_probabilities(model, rois.x)
    assert patches.shape == (16, 5, 2)
    np.testing.assert_allclose(scores, patches.mean(axis=1))  # the ROI's answer is the app's: mean probability


def test_export_through_the_engine_matches_torch(tmp_path):
    torch.manual_seed(0)
    task = get_task("normal_abnormal")
    family = FusionFamily(TINY, device="cpu", progress=False)
    model = TINY.build(2).eval()
    for module in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = family.export(model, task, tmp_path / "fusion-tiny.onnx", {"dataset": "synthetic"}, {"how": "untrained"},
                         "fusion-tiny").path  # export() checks logits (1e-4) and ONNX vs autograd Grad-CAM (r > 0.99)
    runner = ModelRunner(path, prefer_gpu=False)
    assert runner.card.roi.mode == "patches" and runner.card.roi.patches == 5 and runner.card.has_cams
    image = read_image(mias_folder(tmp_path / "img") / "mdb001.pgm")
    roi = (8, 8, 56, 56)
    prediction = runner.predict(image, roi)
    assert prediction.votes.sum() == 5 and prediction.vote_maps is not None
    processed = runner.card.spec.run(crop_frame(image, *runner.roi_window(image, roi)))
    positions = patch_positions(processed.array.shape[:2], 32, 5, seed=0)
    patches = torch.from_numpy(cut_patches(processed.array, positions, 32).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        expected = torch.softmax(model(patches), dim=1).numpy()
    np.testing.assert_allclose(prediction.probabilities, expected.mean(axis=0), atol=1e-5)
    assert prediction.votes.tolist() == np.bincount(expected.argmax(axis=1), minlength=2).tolist()



# --- the hybrid concat family ---------------------------------------------------------------
from mammodesk_train.families.hybrid import Augmented, HybridFamily, HybridPreset  # noqa: E402

HYBRID_TINY = HybridPreset("hybrid-tiny", "test", 32, "b0", 0.0625, 0.125, FitConfig(epochs=1, batch_size=4), roi=48,
                           threshold=100.0)  # the synthetic breasts (110 grey) are dimmer than 193/255


def test_hybrid_preset_follows_models_md():
    paper = PRESETS["hybrid-r50v2-effb7"]
    assert paper.size == 229 and paper.fit.optimizer == "sgd" and paper.fit.nesterov and paper.fit.lr == 1e-4
    assert [s.op for s in paper.spec().steps] == ["nlmeans", "threshold_roi", "median", "clahe", "resize",
                                                 "normalise", "to_rgb"]
    assert paper.spec().steps[1].params["level"] == 193.0


def test_augmentation_is_random_but_label_preserving():
    torch.manual_seed(0)
    x = torch.zeros(1, 3, 32, 32)
    x[:, :, 12:20, 12:20] = 1.0
    data = Augmented(x, torch.tensor([1]))
    views = [data[0] for _ in range(4)]
    assert all(y == 1 and v.shape == (3, 32, 32) for v, y in views)
    assert not torch.allclose(views[0][0], views[1][0])  # a different transform each time
    assert all(0.4 < v.sum() / x.sum() < 1.6 for v, _ in views)  # the lesion stays in the frame


def test_hybrid_cv_and_export_with_branch_cams(tmp_path):
    records = load_source(f"mias:{mias_folder(tmp_path, lesions_on_spots=True)}")
    task = get_task("benign_malignant", records)
    family = HybridFamily(HYBRID_TINY, device="cpu", progress=False)
    document = run_cv(family, records, task, data="mias:tiny", folds=2, seed=0, out=tmp_path / "run", final=False)
    assert document["samples"] == 8  # lesion ROIs only: no normal ROIs for benign vs malignant
    rois, _ = family.build_samples(records, task)
    torch.manual_seed(0)
    model = HYBRID_TINY.build(2)
    for module in model.modules():  # well-conditioned BatchNorm statistics (parity on real weights: test_export)
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    with torch.no_grad():
        model.train()(torch.randn(16, 3, 32, 32))
    model.eval()
    path = family.export(model, task, tmp_path / "hybrid-tiny.onnx", {"dataset": "synthetic"}, {"how": "untrained"},
                         "hybrid-tiny").path  # export() checks logits and per-branch CAM correlation with autograd
    runner = ModelRunner(path, prefer_gpu=False)
    assert runner.card.binary_sigmoid and set(runner.card.cams) == {"combined", "resnet50v2", "efficientnet"}
    image = read_image(mias_folder(tmp_path / "img") / "mdb003.pgm")
    prediction = runner.predict(image, (8, 8, 56, 56))
    processed = runner.card.spec.run(crop_frame(image, *runner.roi_window(image, (8, 8, 56, 56))))
    with torch.no_grad():
        p = torch.sigmoid(model(torch.from_numpy(processed.array.transpose(2, 0, 1)[None].copy())))[0, 0].item()
    np.testing.assert_allclose(prediction.probabilities, [1 - p, p], atol=1e-5)
    raw = prediction.heatmaps.raw
    np.testing.assert_allclose(raw["combined"], raw["resnet50v2"] + raw["efficientnet"], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="two-class"):
        family.build_samples(records, get_task("normal_benign_malignant", records))


def test_balanced_patch_counts():
    lite = FusionFamily(PRESETS["fusion-vgg16-m1-lite"], device="cpu")
    labels = np.array([0] * 165 + [1] * 96)  # the MIAS development set's normal and tumour ROIs
    counts = lite.patch_counts(labels)
    assert counts == {0: 11, 1: 18} and abs(165 * counts[0] - 96 * counts[1]) < 165
    paper = FusionFamily(PRESETS["fusion-vgg16-m1"], device="cpu")
    assert paper.patch_counts(labels) == {0: 500, 1: 2000}  # the study's counts, as published
