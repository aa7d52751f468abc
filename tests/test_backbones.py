"""Backbones: published sizes (counted as Keras counts them) and forward shapes for every registered one."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from mammodesk_train.backbones import BACKBONES, ResNet50V2, efficientnet, keras_parameter_count, vgg16  # noqa: E402


@pytest.mark.parametrize("build,expected", [
    (lambda: vgg16(), 14_714_688),                 # VGG16 convolutional trunk
    (lambda: ResNet50V2(), 23_564_800),            # Keras ResNet50V2(include_top=False)
    (lambda: efficientnet("b0"), 4_049_571),       # Keras EfficientNetB0(include_top=False)
    (lambda: efficientnet("b7"), 64_097_687),      # Keras EfficientNetB7(include_top=False)
])
def test_published_parameter_counts(build, expected):
    assert keras_parameter_count(build()) == expected


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_forward_shapes_and_named_blocks(name):
    model = BACKBONES[name]().eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64))
        blocks = model.blocks(torch.zeros(1, 3, 64, 64))
    assert out.shape[:2] == (1, model.out_channels) and out.shape[2] == out.shape[3] >= 1
    assert len(blocks) >= 5 and all(t.shape[0] == 1 for t in blocks.values())


def test_resnet_small_input_stem_keeps_resolution():
    model = ResNet50V2(small_input=True, width=0.25).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape[2:] == (4, 4)  # only the three strided stacks


def test_stochastic_depth_only_in_training():
    model = efficientnet("b0", drop_connect=0.5)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_stem_pool_pads_with_zeros_like_keras():
    from mammodesk_train.backbones.resnet_v2 import ZeroPadMaxPool

    keras_style = torch.nn.Sequential(torch.nn.ZeroPad2d(1), torch.nn.MaxPool2d(3, stride=2))
    for height, width in [(56, 56), (57, 55), (8, 9)]:
        x = torch.randn(2, 4, height, width) - 1.0  # mostly negative: the border windows must become 0
        torch.testing.assert_close(ZeroPadMaxPool()(x), keras_style(x), rtol=0, atol=0)


def test_resnet_v2_onnx_matches_torch_with_negative_stem(tmp_path):
    """Regression: onnxruntime's PadFusion turned the stem's zero Pad + MaxPool into a -inf-padded
    MaxPool, a 5 % logit error on a trained model whose stem outputs are negative."""
    ort = pytest.importorskip("onnxruntime")
    from mammodesk_train.export import export_plain

    torch.manual_seed(0)
    net = ResNet50V2(in_channels=1, width=0.125).eval()
    with torch.no_grad():
        net.stem.bias.fill_(-3.0)
        for module in net.modules():  # trained BatchNorms: signed scales, so negative inputs matter after BN-ReLU
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(-1.0, 1.0)
                module.running_mean.uniform_(-2.0, 0.0)
    x = torch.randn(2, 1, 64, 64)
    path = export_plain(_PostPool(net), x, tmp_path / "r50v2.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # default: all optimisations
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, _PostPool(net)(x).detach().numpy(), rtol=1e-4, atol=1e-5)


class _PostPool(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.blocks(x)["post"].mean(dim=(2, 3))
