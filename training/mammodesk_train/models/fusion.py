"""Family 5 (MODELS.md): deep-fusion VGG. Global average pooling after each
chosen VGG block (all five by default: 64+128+256+512+512 = 1472 features),
concatenated, then BatchNorm, FC1, FC2 and the output layer (Model 1). Model 2
adds, per block, BatchNorm, 2x2 average pooling and a 1x1 convolution (cross-
channel mixing) before the pooling. The trunk may be frozen, as in the study."""

from __future__ import annotations

import torch
from torch import nn

from mammodesk_train.backbones.vgg import VGG


class Pointwise(nn.Conv2d):
    """A 1x1 convolution computed as a channel matmul. Identical result; its
    gradient needs no convolution_backward, which the ONNX exporter cannot translate
    (Model 2's mixers sit inside the Grad-CAM head)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,oc->nohw", x, self.weight[:, :, 0, 0]) + self.bias[None, :, None, None]


class AvgPool2x2(nn.Module):
    """nn.AvgPool2d(2) (floor mode) as crop + reshape + mean: its gradient exports to ONNX,
    avg_pool2d_backward does not."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x[:, :, : h // 2 * 2, : w // 2 * 2]
        return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(dim=(3, 5))


class FusionVGG(nn.Module):
    def __init__(self, classes: int, *, model: int = 1, blocks: tuple[int, ...] = (1, 2, 3, 4, 5),
                 config: str = "vgg16", width: float = 1.0, in_channels: int = 3, fc: tuple[int, int] = (256, 128),
                 dropout: float = 0.5, freeze_trunk: bool = False):
        super().__init__()
        if model not in (1, 2) or not blocks or not set(blocks) <= {1, 2, 3, 4, 5}:
            raise ValueError(f"model must be 1 or 2 and blocks a subset of 1..5, got {model}, {blocks}")
        self.trunk = VGG(config, in_channels=in_channels, width=width)
        self.blocks = tuple(sorted(blocks))
        channels = [self.trunk.block_channels[b - 1] for b in self.blocks]
        self.mixers = nn.ModuleDict({
            f"block{b}": nn.Sequential(nn.BatchNorm2d(c), AvgPool2x2(), Pointwise(c, c), nn.ReLU())
            for b, c in zip(self.blocks, channels)} if model == 2 else {})
        features = sum(channels)
        self.head = nn.Sequential(nn.BatchNorm1d(features), nn.Linear(features, fc[0]), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(fc[0], fc[1]), nn.ReLU(), nn.Dropout(dropout), nn.Linear(fc[1], classes))
        if freeze_trunk:
            self.trunk.requires_grad_(False)

    def block_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = self.trunk.blocks(x)
        return {f"block{b}": outputs[f"block{b}"] for b in self.blocks}

    def fuse(self, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        """From the block activations to logits (the Grad-CAM head)."""
        pooled = [self.mixers[name](a).mean(dim=(2, 3)) if name in self.mixers else a.mean(dim=(2, 3))
                  for name, a in acts.items()]
        return self.head(torch.cat(pooled, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.block_outputs(x))
