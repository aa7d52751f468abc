"""ResNet-50 (He et al. 2015) in torchvision's layout and parameter names
(`conv1`, `bn1`, `layer1`..`layer4`, bottlenecks with the stride on the 3x3
convolution, "v1.5"), so torchvision's ImageNet weights load by name from a
local file. `small_input` swaps the stem for SimCLR's 3x3 stride-1
convolution without max-pool. Block outputs are available by name."""

from __future__ import annotations

import torch
from torch import nn

LAYERS = (("layer1", 64, 3, 1), ("layer2", 128, 4, 2), ("layer3", 256, 6, 2), ("layer4", 512, 3, 2))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


class ResNet50(nn.Module):
    def __init__(self, in_channels: int = 3, width: float = 1.0, small_input: bool = False):
        super().__init__()
        stem = max(8, int(64 * width))
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, stem, 3, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)  # after a ReLU: -inf and 0 padding agree
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        channels = stem
        for name, planes, blocks, stride in LAYERS:
            planes = max(8, int(planes * width))
            layers = [Bottleneck(channels, planes, stride)]
            channels = planes * Bottleneck.expansion
            layers += [Bottleneck(channels, planes) for _ in range(blocks - 1)]
            setattr(self, name, nn.Sequential(*layers))
        self.out_channels = channels

    def blocks(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outputs = {"stem": x}
        for name, *_ in LAYERS:
            x = getattr(self, name)(x)
            outputs[name] = x
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature maps (2048 channels at full width): the Grad-CAM target."""
        return self.blocks(x)["layer4"]
