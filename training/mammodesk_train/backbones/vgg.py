"""VGG16/VGG19 convolutional trunks (Simonyan & Zisserman 2015), layer for
layer as torchvision's `features`, with each block's output available by name
(`block1` .. `block5`, after the block's last ReLU, before its max-pool)."""

from __future__ import annotations

import torch
from torch import nn

CONFIGS = {
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}


class VGG(nn.Module):
    def __init__(self, config: str = "vgg16", in_channels: int = 3, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        self.block_ends: list[int] = []  # index in `features` of each block's last ReLU
        channels = in_channels
        for block in CONFIGS[config]:
            for out in block:
                out = max(8, int(round(out * width)))
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(inplace=True)]
                channels = out
            self.block_ends.append(len(layers) - 1)
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)  # torchvision naming: features.{i}.weight
        for module in self.features:
            if isinstance(module, nn.Conv2d):  # torchvision's init: keeps activations alive through 13+ layers
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        self.out_channels = channels
        self.block_channels = [max(8, int(round(b[-1] * width))) for b in CONFIGS[config]]

    def blocks(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every block's output (pre-pool), keyed block1..block5."""
        outputs = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.block_ends:
                outputs[f"block{self.block_ends.index(index) + 1}"] = x
        return outputs

    def trunk_to_block5(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of block 5 before its pool: the usual Grad-CAM target."""
        return self.features[: self.block_ends[-1] + 1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def vgg16(**kwargs) -> VGG:
    return VGG("vgg16", **kwargs)


def vgg19(**kwargs) -> VGG:
    return VGG("vgg19", **kwargs)
