"""Backbones: published sizes (counted as Keras counts them) and forward shapes for every registered one."""

from __future__ import annotations

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
