"""The SimCLR network: a ResNet encoder with the small-input stem (3x3
stride-1 convolution, no max-pool) and a two-layer projection MLP to 128-d;
and the classifier that replaces the projection by a linear head on the
frozen, pooled encoder features (features standardised with training
statistics, kept as buffers so the export is self-contained)."""

from __future__ import annotations

import torch
from torch import nn

from mammodesk_train.backbones.resnet_v2 import ResNet50V2


class SimCLRNet(nn.Module):
    def __init__(self, in_channels: int = 1, width: float = 1.0, projection_dim: int = 128):
        super().__init__()
        self.encoder = ResNet50V2(in_channels, width, small_input=True)
        channels = self.encoder.out_channels  # 2048 at full width
        self.projection = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True),
                                        nn.Linear(channels, projection_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.features(x))


class LinearProbe(nn.Module):
    """Frozen encoder -> global average pool -> standardise -> linear layer."""

    def __init__(self, encoder: ResNet50V2, classes: int):
        super().__init__()
        self.encoder = encoder
        channels = encoder.out_channels
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("scale", torch.ones(channels))
        self.fc = nn.Linear(channels, classes)

    def maps(self, x: torch.Tensor) -> torch.Tensor:
        """The Grad-CAM target: the encoder's last stage after its final BN-ReLU."""
        return self.encoder(x)

    def head(self, maps: torch.Tensor) -> torch.Tensor:
        return self.fc((maps.mean(dim=(2, 3)) - self.mean) * self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.maps(x))
