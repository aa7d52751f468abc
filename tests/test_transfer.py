"""The transfer zoo: ResNet50 and Xception layer for layer (parameter counts,
weight names), Keras' "same" max-pool, the three-stage fine-tuning strategy
(what trains when, frozen BatchNorm statistics), the augmentation, export
parity, and a five-way fit end to end."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mammodesk_train.backbones import ResNet50, Xception, keras_parameter_count  # noqa: E402
from mammodesk_train.backbones.weights import load_pretrained  # noqa: E402
from mammodesk_train.backbones.xception import max_pool_same  # noqa: E402
from mammodesk_train.families.transfer import PRESETS, Augmented, TransferFamily  # noqa: E402
from mammodesk_train.models.transfer import TransferNet  # noqa: E402
from mammodesk_train.staged import Stage, backbone_layers, staged_fit  # noqa: E402


def test_zoo_backbones_match_their_reference_sizes():
    resnet = ResNet50()
    assert sum(p.numel() for p in resnet.parameters()) == 23_508_032  # torchvision resnet50 without fc
    assert resnet(torch.rand(1, 3, 224, 224)).shape == (1, 2048, 7, 7)
    xception = Xception()
    assert keras_parameter_count(xception) == 20_861_480  # keras.applications.Xception(include_top=False)
    assert xception(torch.rand(1, 3, 299, 299)).shape == (1, 2048, 10, 10)


@pytest.mark.parametrize("size", [7, 8, 9, 10])
def test_max_pool_same_is_tensorflows(size):
    x = torch.randn(1, 2, size, size)
    out = max_pool_same(x)
    assert out.shape[-1] == -(-size // 2)  # ceil(n / 2), as "same" gives
    pad_total = max((out.shape[-1] - 1) * 2 + 3 - size, 0)
    before = pad_total // 2  # TensorFlow puts the odd padding at the end
    for i in range(out.shape[-2]):
        for j in range(out.shape[-1]):
            r0, c0 = 2 * i - before, 2 * j - before
            window = x[0, :, max(r0, 0):r0 + 3, max(c0, 0):c0 + 3]
            assert torch.equal(out[0, :, i, j], window.amax(dim=(1, 2)))


def test_zoo_weights_load_by_name(tmp_path):
    torch.manual_seed(0)
    source = ResNet50(width=0.125)
    torch.save({**source.state_dict(), "fc.weight": torch.zeros(10, 256)}, tmp_path / "resnet50.pth")
    target = ResNet50(width=0.125)
    assert load_pretrained(target, tmp_path / "resnet50.pth") == "mammodesk"  # torchvision's names are ours
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))
    xception = Xception(width=0.125)
    keras = {}
    for key, value in xception.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        layer, _, param = key.removeprefix("layers.").rpartition(".")
        array = value.numpy() + 0.5
        if layer.endswith(".depthwise"):
            keras[f"{layer.split('.')[0]}/depthwise_kernel:0"] = array.transpose(2, 3, 0, 1)
        elif layer.endswith(".pointwise"):
            keras[f"{layer.split('.')[0]}/pointwise_kernel:0"] = array.transpose(2, 3, 1, 0)
        elif array.ndim == 4:
            keras[f"{layer}/kernel:0"] = array.transpose(2, 3, 1, 0)
        else:
            name = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
                    "running_var": "moving_variance"}[param]
            keras[f"{layer}/{name}:0"] = array
    assert "block14_sepconv2/pointwise_kernel:0" in keras and "batch_normalization_3/gamma:0" in keras
    np.savez(tmp_path / "xception.npz", **keras)
    loaded = Xception(width=0.125)
    assert load_pretrained(loaded, tmp_path / "xception.npz") == "keras"
    for key, value in xception.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.allclose(loaded.state_dict()[key], value + 0.5)


def test_stages_freeze_what_they_should_and_frozen_batchnorm_keeps_its_statistics():
    torch.manual_seed(0)
    model = TransferNet("resnet50", 5, width=0.0625)
    layers = backbone_layers(model.backbone)
    head_params = sum(p.numel() for p in model.fc.parameters())
    assert model.set_stage("head") == head_params
    third = model.set_stage("last_third")
    expected = head_params + sum(p.numel() for m in layers[-(len(layers) // 3):] for p in m.parameters(recurse=False))
    assert third == expected
    model.train()
    norms = [m for m in layers if isinstance(m, torch.nn.BatchNorm2d)]
    assert not norms[0].training and norms[-1].training  # frozen BN runs on its stored statistics
    assert model.set_stage("all") == sum(p.numel() for p in model.parameters())

    x = torch.rand(24, 3, 32, 32)
    y = torch.arange(24) % 5
    data = torch.utils.data.TensorDataset(x, y)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stages = (Stage("head", "head", 2, 1e-2), Stage("last-third", "last_third", 1, 1e-3),
              Stage("all", "all", 3, 1e-3, patience=2, min_lr=1e-8, plateau=True))
    results = staged_fit(model, lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1]), data, data,
                         __import__("mammodesk_train.engine", fromlist=["FitConfig"]).FitConfig(batch_size=8),
                         stages, device=torch.device("cpu"), progress=False)
    assert [s.name for s, _, _ in results] == ["head", "last-third", "all"]
    assert [len(r.history) for _, _, r in results][:2] == [2, 1]
    after = model.state_dict()
    first_bn = [k for k in after if k.startswith("backbone.bn1.")]
    assert any(not torch.equal(before[k], after[k]) for k in first_bn if "running" in k)  # stage 3 trained it
    assert not torch.equal(before["fc.weight"], after["fc.weight"])


def test_stage_one_leaves_the_backbone_untouched():
    torch.manual_seed(0)
    model = TransferNet("xception", 3, width=0.0625)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    data = torch.utils.data.TensorDataset(torch.rand(12, 3, 40, 40), torch.arange(12) % 3)
    from mammodesk_train.engine import FitConfig

    staged_fit(model, lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1]), data, None,
               FitConfig(batch_size=4), (Stage("head", "head", 2, 1e-2),), device=torch.device("cpu"),
               progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())


def test_augmentation_moves_geometry_not_intensity():
    torch.manual_seed(0)
    x = torch.zeros(1, 3, 48, 48)
    x[:, :, 10:20, 30:40] = 0.8
    data = Augmented(x.repeat(64, 1, 1, 1), torch.zeros(64, dtype=torch.long))
    views = torch.stack([data[i][0] for i in range(64)])
    assert views.shape == (64, 3, 48, 48) and float(views.max()) <= 0.8 + 1e-6 and float(views.min()) >= 0
    centres = [(v[0] > 0.4).nonzero().float().mean(0) for v in views if (v[0] > 0.4).any()]
    spread = torch.stack(centres).std(0)
    assert float(spread.min()) > 3  # the square lands in many places


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["transfer-resnet50-lite", "transfer-xception-lite",
                                    "transfer-efficientnet-b7-lite"])
def test_transfer_export_parity(tmp_path, preset):
    from mammodesk_train.data.tasks import TASKS

    family = TransferFamily(PRESETS[preset], device="cpu", progress=False)
    torch.manual_seed(0)
    model = TransferNet(PRESETS[preset].backbone, 5, width=0.125)
    for module in model.modules():  # trained-looking BatchNorm, not the identity defaults
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
    family.preset = family.preset.__class__(**{**vars(family.preset), "size": 64})
    report = family.export(model.eval(), TASKS["lesion5"], tmp_path / f"{preset}.onnx", {"dataset": "none"},
                           {"auc": {"mean": 0.5, "sd": 0.0}}, preset)
    assert report.max_logit_error < 1e-4 and min(report.cam_correlation.values()) > 0.99


@pytest.mark.slow
def test_five_way_fit_reports_per_class_figures(tmp_path):
    from dataclasses import replace

    from train_fixtures import mias_folder

    from mammodesk_train.cv import run_cv
    from mammodesk_train.data.sources import load_source
    from mammodesk_train.data.tasks import TASKS

    data = f"mias:{mias_folder(tmp_path / 'data', lesions_on_spots=True)}"
    preset = replace(PRESETS["transfer-resnet50-lite"], roi=24, size=32, width=0.0625).scaled(0.1)
    family = TransferFamily(preset, device="cpu", progress=False)
    document = run_cv(family, load_source(data), TASKS["lesion5"], data=data, folds=2, seed=0,
                      out=tmp_path / "run", final=False)
    per_class = document["pooled"]["per_class"]
    assert list(per_class) == ["normal", "benign_mass", "malignant_mass", "benign_calcification",
                               "malignant_calcification"]
    assert all({"sensitivity", "specificity", "f1", "auc_ovr"} <= set(v) for v in per_class.values())
    assert document["samples"] == 15  # 8 normal ROIs + 7 lesions; the ARCH row is left out
    assert (tmp_path / "run" / "fold1" / "stage-head.jsonl").is_file()
    assert (tmp_path / "run" / "fold1" / "stage-all.jsonl").is_file()
