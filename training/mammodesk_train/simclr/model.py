"""The SimCLR network: an encoder - the ResNet50V2 with the small-input stem
(3x3 stride-1 convolution, no max-pool), or the VGG16 trunk of the fusion
family - and a two-layer projection MLP to 128-d;
and the classifier that replaces the projection by a linear head on the
frozen, pooled encoder features (features standardised with training
statistics, kept as buffers so the export is self-contained)."""

from __future__ import annotations

import torch
from torch import nn

from mammodesk_train.backbones.resnet_v2 import ResNet50V2
from mammodesk_train.backbones.vgg import VGG

ARCHITECTURES = {"resnet50v2": "ResNet50V2", "vgg16": "VGG16"}  # CLI name -> the name backbone files record


def make_encoder(architecture: str, in_channels: int, width: float, small_input: bool = True) -> nn.Module:
    """`small_input`: the ResNet's 3x3 stride-1 stem without max-pool (32-pixel whole breasts); off, the
    standard 7x7 stride-2 stem and pool that the hybrid family's ResNet50V2 has (ROI windows)."""
    if architecture == "resnet50v2":
        return ResNet50V2(in_channels, width, small_input=small_input)
    if architecture == "vgg16":
        return VGG("vgg16", in_channels=in_channels, width=width)
    raise ValueError(f"unknown encoder {architecture!r} ({', '.join(ARCHITECTURES)})")


class SimCLRNet(nn.Module):
    def __init__(self, in_channels: int = 1, width: float = 1.0, projection_dim: int = 128,
                 architecture: str = "resnet50v2", small_input: bool = True):
        super().__init__()
        self.encoder = make_encoder(architecture, in_channels, width, small_input)
        channels = self.encoder.out_channels  # 2048 for the ResNet at full width
        # VGG has no BatchNorm of its own: without one in the projection its contrastive training collapses
        norm = [nn.BatchNorm1d(channels)] if architecture == "vgg16" else []
        self.projection = nn.Sequential(nn.Linear(channels, channels), *norm, nn.ReLU(inplace=True),
                                        nn.Linear(channels, projection_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.features(x))


class LinearProbe(nn.Module):
    """Frozen encoder -> global average pool -> standardise -> linear layer."""

    def __init__(self, encoder: nn.Module, classes: int):
        super().__init__()
        self.encoder = encoder
        channels = encoder.out_channels
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("scale", torch.ones(channels))
        self.fc = nn.Linear(channels, classes)

    def maps(self, x: torch.Tensor) -> torch.Tensor:
        """The Grad-CAM target: the encoder's last stage after its final BN-ReLU."""
        return self.encoder(x)

    def features(self, maps: torch.Tensor) -> torch.Tensor:
        return (maps.mean(dim=(2, 3)) - self.mean) * self.scale

    def head(self, maps: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(maps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.maps(x))
