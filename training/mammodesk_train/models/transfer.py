"""A zoo backbone with a new classification head (global average pool,
dropout, linear), split at the backbone's last feature maps for Grad-CAM."""

from __future__ import annotations

import torch
from torch import nn

from mammodesk_train.backbones import EFFICIENTNET_VARIANTS, EfficientNet, ResNet50, ResNet50V2, Xception
from mammodesk_train.backbones.efficientnet import LITE
from mammodesk_train.backbones.imagenet import lite0_input
from mammodesk_train.staged import StagedModel


def build_backbone(name: str, in_channels: int = 3, width: float = 1.0) -> nn.Module:
    if name == "resnet50":
        return ResNet50(in_channels, width)
    if name == "resnet50v2":
        return ResNet50V2(in_channels, width)
    if name == "xception":
        return Xception(in_channels, width)
    if name.startswith("efficientnet_"):
        variant = name.removeprefix("efficientnet_")
        return EfficientNet(variant, in_channels,
                            width_override=None if width == 1.0 else EFFICIENTNET_VARIANTS[variant][0] * width)
    raise ValueError(f"unknown backbone {name!r} (resnet50, resnet50v2, xception, efficientnet_b0..b7, "
                     "efficientnet_lite0)")


class TransferNet(StagedModel):
    def __init__(self, backbone: str, classes: int, *, width: float = 1.0, dropout: float = 0.3):
        super().__init__()
        self.backbone_name = backbone
        self.backbone = build_backbone(backbone, 3, width)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.backbone.out_channels, classes)

    def maps(self, x: torch.Tensor) -> torch.Tensor:
        if self.backbone_name.removeprefix("efficientnet_") in LITE:
            x = lite0_input(x)  # ImageNet Lite0 weights expect (x - 127) / 128
        return self.backbone(x)

    def pooled(self, maps: torch.Tensor) -> torch.Tensor:
        return maps.mean(dim=(2, 3))

    def head(self, maps: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pooled(maps)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.maps(x))
