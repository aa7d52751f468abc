"""SimCLR pieces against independent references: NT-Xent vs a hand-written
loop, LARS on toy problems, the augmentation's documented ranges, gradient
caching vs the full-batch gradient, the probe, and ONNX export parity."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mammodesk_train.families.simclr import PRESETS, SimCLRFamily  # noqa: E402
from mammodesk_train.simclr.augment import AugmentConfig, TwoViews, apply, sample  # noqa: E402
from mammodesk_train.simclr.lars import LARS, warmup_cosine  # noqa: E402
from mammodesk_train.simclr.loss import nt_xent  # noqa: E402
from mammodesk_train.simclr.model import SimCLRNet  # noqa: E402
from mammodesk_train.simclr.pretrain import (  # noqa: E402
    PretrainConfig, ProbeConfig, contrastive_step, pretrain, save_backbone, train_probe,
)


def reference_nt_xent(z1: np.ndarray, z2: np.ndarray, t: float) -> float:
    """SimCLR's loss written out: l(i, j) = -log exp(s_ij / t) / sum_{k != i} exp(s_ik / t), averaged
    over all 2N anchors (each view's positive is its partner)."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = [np.dot(z[i], z[k]) / (np.linalg.norm(z[i]) * np.linalg.norm(z[k])) for k in range(2 * n)]
        denominator = sum(math.exp(sims[k] / t) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(sims[j] / t) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_the_written_out_loss(temperature):
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    got = nt_xent(torch.tensor(z1), torch.tensor(z2), temperature)
    assert float(got) == pytest.approx(reference_nt_xent(z1, z2, temperature), rel=1e-9)
    aligned = nt_xent(torch.tensor(z1), torch.tensor(z1 * 3.0), temperature)  # identical directions: lower loss
    assert float(aligned) < float(got)
    with pytest.raises(ValueError):
        nt_xent(torch.zeros(3, 4), torch.zeros(4, 4))


def test_lars_solves_a_toy_problem_and_is_scale_invariant():
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1)
    model = torch.nn.Linear(8, 1, bias=False)
    optimizer = LARS(model.parameters(), lr=1.0, momentum=0.9, weight_decay=0.0, trust_coefficient=0.02)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, 400, 20))
    with torch.no_grad():
        first = float(torch.nn.functional.mse_loss(model(x), y))
    for _ in range(400):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        schedule.step()
    assert float(loss.detach()) < 1e-3 * first
    # The trust ratio makes a weight tensor's step proportional to its norm, whatever the gradient's scale.
    steps = []
    for scale in (1.0, 1000.0):
        w = torch.nn.Parameter(torch.ones(4, 4) * scale)
        opt = LARS([w], lr=1.0, momentum=0.0, weight_decay=0.0, trust_coefficient=0.01)
        w.grad = torch.full((4, 4), 1e-3 * scale**2)
        before = w.detach().clone()
        opt.step()
        steps.append(float(torch.linalg.vector_norm(before - w.detach()) / torch.linalg.vector_norm(before)))
    assert steps[0] == pytest.approx(0.01, rel=1e-4) and steps[1] == pytest.approx(0.01, rel=1e-4)
    bias = torch.nn.Parameter(torch.ones(3))  # 1-D: plain SGD, no trust ratio, no decay
    opt = LARS([bias], lr=0.5, momentum=0.0, weight_decay=0.1)
    bias.grad = torch.ones(3)
    opt.step()
    assert torch.allclose(bias, torch.full((3,), 0.5))
    factors = [warmup_cosine(s, 100, 10) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0 and factors[-1] < 0.01
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))


def test_augmentation_stays_in_its_documented_ranges():
    config = AugmentConfig()
    generator = torch.Generator().manual_seed(0)
    draws = [sample(config, (64, 48), generator) for _ in range(4000)]
    areas = np.array([d.height * d.width / (64 * 48) for d in draws])
    assert areas.min() >= 0.5 - 0.03 and areas.max() <= 0.8 + 0.03  # rounding to whole pixels
    assert all(0 <= d.top and d.top + d.height <= 64 and 0 <= d.left and d.left + d.width <= 48 for d in draws)
    assert np.mean([d.flip_h for d in draws]) == pytest.approx(0.5, abs=0.03)
    assert np.mean([d.flip_v for d in draws]) == pytest.approx(0.5, abs=0.03)
    assert all(0.6 <= d.brightness <= 1.4 for d in draws)
    contrasts = [d.contrast for d in draws if d.contrast is not None]
    assert len(contrasts) / len(draws) == pytest.approx(0.2, abs=0.02) and all(0.6 <= c <= 1.4 for c in contrasts)
    sigmas = [d.blur_sigma for d in draws if d.blur_sigma is not None]
    assert len(sigmas) / len(draws) == pytest.approx(0.5, abs=0.03) and all(0.1 <= s <= 2.0 for s in sigmas)
    # The crop is the crop asked for: a ramp image keeps its column order inside the crop box.
    ramp = torch.linspace(0, 1, 48).repeat(64, 1)[None]
    plain = draws[0].__class__(8, 12, 40, 24, False, False, 1.0, None, None)
    view = apply(ramp, plain)
    assert view.shape == ramp.shape
    assert float(view[0, 0, 0]) == pytest.approx(float(ramp[0, 0, 12]), abs=0.02)
    assert float(view[0, 0, -1]) == pytest.approx(float(ramp[0, 0, 35]), abs=0.02)
    assert torch.equal(apply(ramp, plain.__class__(**{**vars(plain), "flip_h": True})), view.flip(-1))
    v1, v2 = TwoViews(torch.rand(3, 1, 32, 32))[0]
    assert v1.shape == v2.shape == (1, 32, 32) and not torch.equal(v1, v2) and 0 <= v1.min() and v1.max() <= 1


def test_gradient_caching_gives_the_full_batch_gradient():
    torch.manual_seed(0)
    model = SimCLRNet(1, 0.0625).eval()  # BatchNorm frozen: micro-batches see the same normalisation
    v1, v2 = torch.rand(8, 1, 16, 16), torch.rand(8, 1, 16, 16)
    full_loss = contrastive_step(model, v1, v2, 0.5, None)
    full = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    cached_loss = contrastive_step(model, v1, v2, 0.5, 3)
    assert cached_loss == pytest.approx(full_loss, rel=1e-6)
    for a, p in zip(full, model.parameters()):
        assert torch.allclose(a, p.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def _fixed_view_loss(net: SimCLRNet, images: np.ndarray, seed: int = 123) -> float:
    """NT-Xent of the network on one fixed draw of two views per image (eval mode): the same
    pairs before and after training, so the comparison is not the noise of fresh augmentations."""
    views = TwoViews(torch.from_numpy(images), AugmentConfig())
    torch.manual_seed(seed)
    pairs = [views[i] for i in range(len(images))]
    net.eval()
    with torch.no_grad():
        return float(nt_xent(net(torch.stack([p[0] for p in pairs])), net(torch.stack([p[1] for p in pairs])), 0.5))


def test_pretraining_learns_views_and_the_probe_separates_classes(tmp_path):
    rng = np.random.default_rng(0)
    # Two kinds of synthetic "breast": bright blob top or bottom; the probe must tell them apart. Each
    # image also has a texture of its own (a grating of its own frequency and angle): without it the 48
    # images are nearly the same picture, instance discrimination has nothing to learn, and the loss sits
    # at chance (ln(2 x 16 - 1) = 3.43), so "it went down" was a coin toss decided by thread count.
    yy, xx = np.mgrid[0:32, 0:32]
    images, labels = [], []
    for i in range(48):
        label = i % 2
        cy = 8 if label else 24
        blob = np.exp(-((yy - cy) ** 2 + (xx - rng.uniform(8, 24)) ** 2) / 30.0)
        angle, frequency = rng.uniform(0, np.pi), rng.uniform(0.3, 1.2)
        grating = 0.25 * np.sin(frequency * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 2 * np.pi))
        images.append(np.clip(0.2 + 0.6 * blob + grating + rng.normal(0, 0.03, (32, 32)), 0, 1)[None])
        labels.append(label)
    x, y = np.asarray(images, np.float32), np.asarray(labels)
    torch.manual_seed(0)
    untrained = SimCLRNet(1, 0.0625)
    config = PretrainConfig(epochs=15, batch_size=16, micro_batch=12, lr=1.0, lr_scaling="sqrt")
    net, history = pretrain(x, config, width=0.0625, seed=0, device=torch.device("cpu"), progress=False)
    chance = math.log(2 * config.batch_size - 1)
    assert abs(history[0]["loss"] - chance) < 0.05 and history[0]["views_per_s"] > 0
    late = float(np.mean([h["loss"] for h in history[-3:]]))
    assert late < chance - 0.15, [round(h["loss"], 3) for h in history]
    before, after = _fixed_view_loss(untrained, x), _fixed_view_loss(net, x)
    assert after < before - 0.2, (before, after)  # the same view pairs are told apart better
    probe = train_probe(net.encoder, x, y, 2, ProbeConfig(epochs=30), seed=0, device=torch.device("cpu"))
    with torch.no_grad():
        accuracy = float((probe(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    assert accuracy > 0.8
    path = save_backbone(tmp_path / "backbones" / "toy.pt", net, {"method": "simclr"})
    state = torch.load(path, weights_only=True)
    assert set(state) == set(net.encoder.state_dict()) and path.with_suffix(".json").is_file()


@pytest.mark.slow
def test_simclr_classifier_exports_with_cam_parity(tmp_path):
    from mammodesk_train.data.tasks import TASKS

    preset = PRESETS["simclr-lite-random"]
    family = SimCLRFamily(preset, device="cpu", progress=False)
    model = preset.build(3)
    torch.manual_seed(0)
    for module in model.modules():  # trained-looking BatchNorm statistics, not the identity defaults
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(-1.5, 1.5)
    report = family.export(model.eval(), TASKS["density"], tmp_path / "simclr.onnx", {"dataset": "none"},
                           {"auc": {"mean": 0.5, "sd": 0.0}}, "simclr-test")
    assert report.max_logit_error < 1e-4 and min(report.cam_correlation.values()) > 0.99


@pytest.mark.slow
def test_pretrain_cli_writes_a_backbone_that_fit_can_start_from(tmp_path, capsys):
    from train_fixtures import mias_folder

    from mammodesk_train.entry import main

    data = f"mias:{mias_folder(tmp_path / 'data')}"
    backbone = tmp_path / "backbones" / "tiny.pt"
    assert main(["pretrain", "--method", "simclr", "--data", data, "--out", str(backbone), "--epochs", "2",
                 "--batch-size", "8", "--micro-batch", "6", "--width", "0.125", "--device", "cpu"]) == 0
    about = json.loads(backbone.with_suffix(".json").read_text())
    assert about["architecture"] == "ResNet50V2" and about["images"] == 16 and len(about["patient_key_hashes"]) == 8
    assert str(tmp_path) not in backbone.with_suffix(".json").read_text()  # no local folders in shared files
    assert "views/s" in capsys.readouterr().out
    state = torch.load(backbone, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())

    run = tmp_path / "runs" / "probe"
    assert main(["fit", "--preset", "simclr-lite-random", "--data", data, "--task", "normal_abnormal", "--folds",
                 "2", "--out", str(run), "--no-final", "--device", "cpu", "--init", str(backbone)]) != 0  # width
    assert "does not fit" in capsys.readouterr().err
    from mammodesk_train.families import simclr as family_module

    family_module.PRESETS["simclr-test"] = family_module.PRESETS["simclr-lite-random"].__class__(
        "simclr-test", "test", 32, 0.125, None, ProbeConfig(epochs=2))
    from mammodesk_train.families import registry

    registry.PRESETS["simclr-test"] = family_module.PRESETS["simclr-test"]
    try:
        assert main(["fit", "--preset", "simclr-test", "--data", data, "--task", "normal_abnormal", "--folds", "2",
                     "--out", str(run), "--no-final", "--device", "cpu", "--init", str(backbone)]) == 0
    finally:
        registry.PRESETS.pop("simclr-test")
        family_module.PRESETS.pop("simclr-test")
    record = json.loads((run / "run.json").read_text())
    assert record["init"] == {"backbone": "tiny.pt", "cv_patients_seen_in_pretraining": 8}
    assert "not free of that overlap" in capsys.readouterr().err
    from mammodesk_train.models.hybrid import HybridConcat
    from mammodesk_train.simclr.backbone import init_backbone

    hybrid = HybridConcat(2, efficientnet="b0", resnet_width=0.125, efficientnet_width=0.25)
    assert init_backbone(hybrid.resnet, backbone) == ["stem.weight", "stem.bias"]  # 3x3 -> 7x7 stem relearned
    assert torch.equal(hybrid.resnet.state_dict()["post_bn.running_var"], state["post_bn.running_var"])


@pytest.mark.slow
def test_full_fine_tuning_trains_the_encoder_too():
    from dataclasses import replace

    from mammodesk_train.data.builders import Samples

    rng = np.random.default_rng(0)
    x = rng.random((16, 1, 32, 32)).astype(np.float32)
    y = np.arange(16) % 2
    x[y == 1, :, :8] += 0.5  # a bright band marks class 1
    preset = replace(PRESETS["simclr-lite-finetune"], width=0.0625).scaled(0.05)
    family = SimCLRFamily(preset, device="cpu", progress=False)
    samples = Samples(np.clip(x, 0, 1), y, np.arange(16), [])
    torch.manual_seed(0)
    model = family.train(samples, None, np.arange(16), 2, seed=0)
    fresh = SimCLRFamily(replace(preset, finetune=None), device="cpu", progress=False).train(
        samples, None, np.arange(16), 2, seed=0)
    changed = [not torch.equal(a, b) for a, b in zip(model.encoder.state_dict().values(),
                                                      fresh.encoder.state_dict().values())]
    assert any(changed)  # the encoder moved: not a linear probe any more
    assert family.predict(model, samples.x).shape == (16, 2)


@pytest.mark.slow
def test_windows_pretraining_starts_a_vgg_trunk_exactly(tmp_path):
    """`pretrain --architecture vgg16 --windows N` on every image of several sources; the backbone's
    grey first layer, split over three channels, gives the same features on grey images repeated to RGB."""
    from train_fixtures import mias_folder

    from mammodesk_train.entry import main
    from mammodesk_train.models.fusion import FusionNet
    from mammodesk_train.simclr.backbone import init_backbone
    from mammodesk_train.simclr.model import SimCLRNet

    mias = mias_folder(tmp_path / "a")
    extra = tmp_path / "b"
    extra.mkdir()
    (extra / "case1").mkdir()
    (extra / "case1" / "scan.pgm").write_bytes((mias / "mdb001.pgm").read_bytes())
    backbone = tmp_path / "vgg.pt"
    assert main(["pretrain", "--architecture", "vgg16", "--width", "0.125", "--windows", "2", "--window", "32",
                 "--size", "32", "--epochs", "1", "--batch-size", "8", "--data", f"mias:{mias}",
                 "--data", f"images:{extra}", "--out", str(backbone), "--device", "cpu"]) == 0
    about = json.loads(backbone.with_suffix(".json").read_text())
    assert about["architecture"] == "VGG16" and about["images"] == 17 and about["spec"]["windows_per_image"] == 2
    fusion = FusionNet(2, width=0.125)
    assert init_backbone(fusion.trunk, backbone) == []  # nothing relearned: 1 -> 3 channels is exact
    grey = SimCLRNet(1, 0.125, architecture="vgg16").encoder
    grey.load_state_dict(torch.load(backbone, weights_only=True))
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fusion.trunk(x.repeat(1, 3, 1, 1)), grey(x), rtol=1e-4, atol=1e-5)
