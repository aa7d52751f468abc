"""Export with in-graph Grad-CAM, verified against torch; the file passes the
app's own contract and runs in the app's engine."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from mammodesk.inference import CamOutput, InputLayout, ModelRunner, RoiMode, build_metadata  # noqa: E402
from mammodesk.io import Image, ImageMeta  # noqa: E402
from mammodesk.preprocessing import PipelineSpec  # noqa: E402
from mammodesk_train.backbones import vgg16, vgg19  # noqa: E402
from mammodesk_train.export import autograd_gradcam, export_with_cams, weights_sha256  # noqa: E402


class SmallTrunk(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))

    def forward(self, x):
        return self.body(x)


class PoolHead(nn.Module):
    def __init__(self, channels=16, classes=3):
        super().__init__()
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(channels, classes)

    def forward(self, acts):
        return self.fc(self.pool(acts).flatten(1))


class TwoBranchTrunk(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = SmallTrunk(), SmallTrunk()

    def forward(self, x):
        return {"a": self.a(x), "b": self.b(x)}


class ConcatHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = PoolHead(32, 2)

    def forward(self, acts):
        return self.inner(torch.cat([acts["a"], acts["b"]], dim=1))


def _metadata(name, classes, cams, size=32):
    labels = [f"c{i}" for i in range(classes)]
    spec = PipelineSpec([{"op": "resize", "params": {"width": size, "height": size}}, {"op": "normalise"}])
    return build_metadata(family="test", name=name, task="t", labels=labels, spec=spec,
                          input=InputLayout("image", 1, size, size), activation="softmax", roi=RoiMode(),
                          training={"dataset": "none"}, metrics={"how": "not evaluated"},
                          weights_sha256="0" * 64, tool_version="test", cams=cams)


def _randomise_bn(module):
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)


def _calibrate_bn(net, batch):
    """Set BatchNorm statistics from data, as training would, then switch to eval."""
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        for chunk in batch.split(4):
            net(chunk)
    net.eval()


def test_export_parity_and_engine(tmp_path):
    torch.manual_seed(0)
    trunk, head = SmallTrunk().eval(), PoolHead().eval()
    _randomise_bn(trunk)
    report = export_with_cams(trunk, head, torch.randn(2, 1, 32, 32), tmp_path / "small.onnx",
                              _metadata("small", 3, {"combined": CamOutput("cams", "body.7")}), classes=3)
    report.check(logit_tolerance=1e-4, min_correlation=0.99)
    assert report.max_logit_error < 1e-4 and report.cam_correlation["cams"] > 0.99

    runner = ModelRunner(report.path, prefer_gpu=False)
    image = Image((np.random.default_rng(0).random((64, 48)) * 255).astype(np.uint8), ImageMeta())
    prediction = runner.predict(image)
    x = torch.from_numpy(runner.card.spec.apply(image).array[None, None].copy())
    logits, cam = autograd_gradcam(trunk, head, x, prediction.predicted_index)
    expected = torch.softmax(logits, 1)[0].numpy()
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-5)
    raw = prediction.heatmaps.raw["combined"][prediction.predicted_index]
    np.testing.assert_allclose(raw, cam[0].numpy(), rtol=1e-3, atol=1e-5)


def test_two_branch_export(tmp_path):
    torch.manual_seed(1)
    trunk, head = TwoBranchTrunk().eval(), ConcatHead().eval()
    cams = {"combined": CamOutput("cams", "concat"), "a": CamOutput("cams_a", "a.body.7"),
            "b": CamOutput("cams_b", "b.body.7")}
    report = export_with_cams(trunk, head, torch.randn(2, 1, 32, 32), tmp_path / "two.onnx",
                              _metadata("two", 2, cams), classes=2, branch_outputs={"a": "cams_a", "b": "cams_b"})
    report.check()
    assert set(report.cam_correlation) == {"cams", "cams_a", "cams_b"}
    prediction = ModelRunner(report.path, prefer_gpu=False).predict(Image(np.full((40, 40), 100, np.uint8)))
    raw = prediction.heatmaps.raw
    np.testing.assert_allclose(raw["combined"], raw["a"] + raw["b"], rtol=1e-4, atol=1e-6)


def test_weights_hash_changes_with_weights():
    model = PoolHead()
    before = weights_sha256(model)
    with torch.no_grad():
        model.fc.bias += 1
    assert weights_sha256(model) != before and len(before) == 64


def test_vgg_parameter_counts_and_blocks():
    assert sum(p.numel() for p in vgg16().parameters()) == 14_714_688
    assert sum(p.numel() for p in vgg19().parameters()) == 20_024_384
    blocks = vgg16(width=0.125).blocks(torch.zeros(1, 3, 64, 64))
    assert [tuple(b.shape[1:]) for b in blocks.values()] == [(8, 64, 64), (16, 32, 32), (32, 16, 16),
                                                               (64, 8, 8), (64, 4, 4)]


def test_fusion_vgg_export_cams_on_block5(tmp_path):
    from mammodesk_train.export import MethodModule
    from mammodesk_train.models.fusion import FusionNet

    torch.manual_seed(2)
    net = FusionNet(2, model=2, width=0.125, in_channels=1).eval()
    _randomise_bn(net)
    report = export_with_cams(MethodModule(net.block_outputs), MethodModule(net.fuse), torch.randn(2, 1, 32, 32),
                              tmp_path / "fusion.onnx", _metadata("fusion", 2, {"combined": CamOutput("cams", "block5")}),
                              classes=2, cam_keys=["block5"])
    report.check()
    assert report.cam_correlation["cams"] > 0.99


def test_hybrid_export_branch_cams(tmp_path):
    from mammodesk_train.export import MethodModule
    from mammodesk_train.models.hybrid import HybridConcat

    torch.manual_seed(3)
    net = HybridConcat(3, efficientnet="b0", resnet_width=0.125, efficientnet_width=0.25, in_channels=1)
    _calibrate_bn(net, torch.randn(16, 1, 64, 64))  # realistic activations: default init leaves a branch near zero
    cams = {"combined": CamOutput("cams", "concat"), "resnet50v2": CamOutput("cams_resnet50v2", "post"),
            "efficientnet": CamOutput("cams_efficientnet", "top")}
    report = export_with_cams(MethodModule(net.branches), MethodModule(net.combine), torch.randn(2, 1, 64, 64),
                              tmp_path / "hybrid.onnx", _metadata("hybrid", 3, cams, size=64), classes=3,
                              branch_outputs={"resnet50v2": "cams_resnet50v2", "efficientnet": "cams_efficientnet"})
    report.check()
    image = Image((np.random.default_rng(4).random((80, 80)) * 255).astype(np.uint8), ImageMeta())
    raw = ModelRunner(report.path, prefer_gpu=False).predict(image).heatmaps.raw
    assert np.abs(raw["efficientnet"]).max() > 1e-4 * np.abs(raw["resnet50v2"]).max()  # both branches are alive
    np.testing.assert_allclose(raw["combined"], raw["resnet50v2"] + raw["efficientnet"], rtol=1e-4, atol=1e-6)
