"""Deep-fusion VGG and the hybrid concat network: sizes, options and shapes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from mammodesk_train.models.fusion import FusionNet  # noqa: E402
from mammodesk_train.models.hybrid import HybridConcat  # noqa: E402


@pytest.mark.parametrize("model", [1, 2])
@pytest.mark.parametrize("blocks", [(1, 2, 3, 4, 5), (3, 4, 5)])
def test_fusion_shapes(model, blocks):
    net = FusionNet(2, model=model, blocks=blocks, width=0.25).eval()
    assert net(torch.zeros(2, 3, 72, 72)).shape == (2, 2)
    expected = sum((16, 32, 64, 128, 128)[b - 1] for b in blocks)  # width 0.25 of 64..512
    assert net.head[0].num_features == expected


def test_fusion_full_width_features_and_frozen_trunk():
    net = FusionNet(2, freeze_trunk=True)
    assert net.head[0].num_features == 1472  # 64 + 128 + 256 + 512 + 512
    assert not any(p.requires_grad for p in net.trunk.parameters())
    assert all(p.requires_grad for p in net.head.parameters())
    with pytest.raises(ValueError):
        FusionNet(2, blocks=(6,))


def test_hybrid_paper_size_and_shapes():
    net = HybridConcat(2, efficientnet="b0", resnet_width=0.25, pooling="max").eval()
    assert net(torch.zeros(1, 3, 65, 65)).shape == (1, 1)  # odd sizes: branch grids are aligned
    paper = HybridConcat(2)
    assert paper.output[1].in_features == 4608  # 2048 + 2560
    trainable = sum(p.numel() for p in paper.parameters())
    assert 86e6 < trainable < 88.5e6  # MODELS.md: 87.7M parameters


def test_pointwise_equals_a_1x1_convolution():
    from mammodesk_train.models.fusion import Pointwise

    layer = Pointwise(6, 4)
    x = torch.randn(2, 6, 5, 5)
    torch.testing.assert_close(layer(x), torch.nn.functional.conv2d(x, layer.weight, layer.bias))


def test_avgpool_equals_torch_on_odd_sizes():
    from mammodesk_train.models.fusion import AvgPool2x2

    x = torch.randn(2, 3, 9, 7)
    torch.testing.assert_close(AvgPool2x2()(x), torch.nn.functional.avg_pool2d(x, 2))


def test_fusion_lite0_trunk_takes_imagenet_weights_and_unit_intensities():
    """The Lite0 trunk's seven stages (784 features) on 0..1 inputs equal the ImageNet network on (x*255-127)/128."""
    from mammodesk_train.backbones.imagenet import imagenet_lite0
    from mammodesk_train.families.fusion_vgg import PRESETS

    net = PRESETS["fusion-lite0-m1"].build(2, pretrained=True).eval()
    assert net.head[0].num_features == 784 and not any(p.requires_grad for p in net.trunk.parameters())
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        ours = net.block_outputs(x)["block7"]
        reference = imagenet_lite0().blocks((x * 255 - 127) / 128)["block7"]
    torch.testing.assert_close(ours, reference)
