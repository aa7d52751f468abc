"""ResNet50V2 (pre-activation ResNet, He et al. 2016), layer for layer as
Keras' `ResNet50V2(include_top=False)`: a biased 7x7 stem without BN, four
stacks of bottleneck blocks (BN-ReLU before each convolution, the stride on the
last block of a stack, 1x1 max-pool shortcuts), and a final BN-ReLU.

Block outputs are available by name (`conv2` .. `conv5`, and `post` after the
final BN-ReLU, the usual Grad-CAM target)."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

STACKS = (("conv2", 64, 3, 2), ("conv3", 128, 4, 2), ("conv4", 256, 6, 2), ("conv5", 512, 3, 1))
BN_EPS = 1.001e-5  # Keras' value for ResNetV2


class PreActBottleneck(nn.Module):
    def __init__(self, in_channels: int, filters: int, stride: int = 1, conv_shortcut: bool = False):
        super().__init__()
        self.preact_bn = nn.BatchNorm2d(in_channels, eps=BN_EPS)
        self.shortcut = nn.Conv2d(in_channels, 4 * filters, 1, stride=stride) if conv_shortcut else None
        self.stride = stride
        self.conv1 = nn.Conv2d(in_channels, filters, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters, eps=BN_EPS)
        self.conv2 = nn.Conv2d(filters, filters, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(filters, eps=BN_EPS)
        self.conv3 = nn.Conv2d(filters, 4 * filters, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = torch.relu(self.preact_bn(x))
        if self.shortcut is not None:
            shortcut = self.shortcut(preact)
        elif self.stride > 1:
            shortcut = x[:, :, :: self.stride, :: self.stride]  # Keras: MaxPooling2D(1, strides=stride)
        else:
            shortcut = x
        y = torch.relu(self.bn1(self.conv1(preact)))
        y = torch.relu(self.bn2(self.conv2(y)))
        return shortcut + self.conv3(y)


class ZeroPadMaxPool(nn.Module):
    """Keras' ZeroPadding2D(1) + MaxPooling2D(3, 2), written without a Pad node.

    The stem has no ReLU before the pool, so zero padding (not MaxPool's -inf) changes border
    values. onnxruntime's PadFusion folds Pad -> MaxPool into MaxPool's own (-inf) pads, which
    silently changed the exported logits by ~5 %. Here: pool with -inf pads, then raise the
    windows that touch the border to at least 0 - the same numbers, and nothing to fuse.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.max_pool2d(x, 3, stride=2, padding=1)
        inside = F.avg_pool2d(torch.ones_like(x[:, :1]), 3, stride=2, padding=1, count_include_pad=True)
        touches_border = (inside < 1.0).to(x.dtype)  # 9/9 inside the image is exactly 1.0
        return pooled + touches_border * torch.relu(-pooled)


class ResNet50V2(nn.Module):
    def __init__(self, in_channels: int = 3, width: float = 1.0, small_input: bool = False):
        """`small_input` swaps the stem for a 3x3 stride-1 convolution without max-pool
        (SimCLR's CIFAR-style variant). `width` scales every stack's filters."""
        super().__init__()
        stem = max(8, int(64 * width))
        if small_input:
            self.stem = nn.Conv2d(in_channels, stem, 3, padding=1)
            self.pool = nn.Identity()
        else:
            self.stem = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3)
            self.pool = ZeroPadMaxPool()
        self.stacks = nn.ModuleDict()
        channels = stem
        for name, filters, blocks, stride in STACKS:
            filters = max(8, int(filters * width))
            layers = [PreActBottleneck(channels, filters, 1, conv_shortcut=True)]
            channels = 4 * filters
            layers += [PreActBottleneck(channels, filters) for _ in range(blocks - 2)]
            layers.append(PreActBottleneck(channels, filters, stride))
            self.stacks[name] = nn.Sequential(*layers)
        self.post_bn = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.out_channels = channels

    def blocks(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = {}
        x = self.pool(self.stem(x))
        for name, stack in self.stacks.items():
            x = stack(x)
            outputs[name] = x
        outputs["post"] = torch.relu(self.post_bn(x))
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps after the final BN-ReLU (2048 channels at full width)."""
        return self.blocks(x)["post"]


def keras_parameter_count(model: nn.Module) -> int:
    """Parameters as Keras counts them: weights plus BatchNorm moving mean and variance."""
    buffers = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return sum(p.numel() for p in model.parameters()) + buffers
