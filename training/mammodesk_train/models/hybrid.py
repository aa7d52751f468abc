"""Family 3 (MODELS.md): the same input through ResNet50V2 and EfficientNet
(B7 in the study), each without its head and with its own dropout; the feature
maps are concatenated along channels (4608 maps at 8x8 for 229-pixel inputs),
globally pooled (average, or max), dropout, and one output layer (a sigmoid
unit for two classes, as in the study; softmax otherwise). With the ImageNet
EfficientNet-Lite0 branch (`efficientnet="lite0"`), that branch rescales the
0..1 input to Lite0's own (x - 127) / 128; `frozen` keeps both branches fixed
(their BatchNorm statistics too) so that only the output layer learns."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mammodesk_train.backbones.efficientnet import LITE, EfficientNet
from mammodesk_train.backbones.imagenet import lite0_input
from mammodesk_train.backbones.resnet_v2 import ResNet50V2


class HybridConcat(nn.Module):
    def __init__(self, classes: int = 2, *, efficientnet: str = "b7", resnet_width: float = 1.0,
                 efficientnet_width: float | None = None, branch_dropout: float = 0.3, dropout: float = 0.2,
                 pooling: str = "avg", in_channels: int = 3, frozen: bool = False):
        super().__init__()
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be avg or max, got {pooling!r}")
        self.resnet = ResNet50V2(in_channels, width=resnet_width)
        self.efficientnet = EfficientNet(efficientnet, in_channels, width_override=efficientnet_width)
        self.imagenet_input = efficientnet in LITE
        self.frozen = frozen
        if frozen:
            self.resnet.requires_grad_(False)
            self.efficientnet.requires_grad_(False)
        self.branch_dropout, self.pooling = nn.Dropout(branch_dropout), pooling
        outputs = 1 if classes == 2 else classes
        self.output = nn.Sequential(nn.Dropout(dropout),
                                    nn.Linear(self.resnet.out_channels + self.efficientnet.out_channels, outputs))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.resnet.eval()
            self.efficientnet.eval()
        return self

    def branches(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each branch's last feature maps, brought to one grid (they differ by a pixel for odd inputs)."""
        a, b = self.resnet(x), self.efficientnet(lite0_input(x) if self.imagenet_input else x)
        if a.shape[2:] != b.shape[2:]:
            b = F.interpolate(b, size=a.shape[2:], mode="bilinear", align_corners=False)
        return {"resnet50v2": a, "efficientnet": b}

    def pooled(self, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        maps = torch.cat([self.branch_dropout(acts["resnet50v2"]), self.branch_dropout(acts["efficientnet"])], 1)
        return maps.mean(dim=(2, 3)) if self.pooling == "avg" else maps.amax(dim=(2, 3))

    def combine(self, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.output(self.pooled(acts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine(self.branches(x))
