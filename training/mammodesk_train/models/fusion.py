"""Family 5 (MODELS.md): deep fusion. Global average pooling after each
chosen block of a convolutional trunk, concatenated, then BatchNorm, FC1, FC2
and the output layer (Model 1). Model 2 adds, per block, BatchNorm, 2x2
average pooling and a 1x1 convolution (cross-channel mixing) before the
pooling. The trunk may be frozen, as in the study.

Trunks: the study's VGG16 (blocks 1-5: 64+128+256+512+512 = 1472 features at
full width), or ImageNet EfficientNet-Lite0 (`lite0`, its seven stages:
16+24+40+80+112+192+320 = 784 features). Lite0 takes 0..1 intensities and
rescales them to its own (x - 127) / 128 inside the network, so a spec that
keeps absolute intensity (`normalise` mode `range`) feeds both trunks."""

from __future__ import annotations

import torch
from torch import nn

from mammodesk_train.backbones.efficientnet import EfficientNet
from mammodesk_train.backbones.imagenet import lite0_input
from mammodesk_train.backbones.vgg import VGG

TRUNK_BLOCKS = {"vgg16": 5, "lite0": 7}


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


class Lite0Trunk(nn.Module):
    """EfficientNet-Lite0's stages as fusion blocks, on 0..1 inputs."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.net = EfficientNet("lite0", in_channels)
        self.block_channels = [stage[-1].project[0].out_channels for stage in self.net.stages]

    def blocks(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.net.stem(lite0_input(x))
        outputs = {}
        for index, stage in enumerate(self.net.stages, start=1):
            x = stage(x)
            outputs[f"block{index}"] = x
        return outputs


class FusionNet(nn.Module):
    def __init__(self, classes: int, *, model: int = 1, blocks: tuple[int, ...] = (1, 2, 3, 4, 5),
                 trunk: str = "vgg16", width: float = 1.0, in_channels: int = 3, fc: tuple[int, int] = (256, 128),
                 dropout: float = 0.5, freeze_trunk: bool = False):
        super().__init__()
        if trunk not in TRUNK_BLOCKS:
            raise ValueError(f"unknown fusion trunk {trunk!r} (vgg16, lite0)")
        last = TRUNK_BLOCKS[trunk]
        if model not in (1, 2) or not blocks or not set(blocks) <= set(range(1, last + 1)):
            raise ValueError(f"model must be 1 or 2 and blocks a subset of 1..{last}, got {model}, {blocks}")
        self.trunk = VGG("vgg16", in_channels=in_channels, width=width) if trunk == "vgg16" else \
            Lite0Trunk(in_channels)
        self.trunk_name = trunk
        self.blocks = tuple(sorted(blocks))
        channels = [self.trunk.block_channels[b - 1] for b in self.blocks]
        self.mixers = nn.ModuleDict({
            f"block{b}": nn.Sequential(nn.BatchNorm2d(c), AvgPool2x2(), Pointwise(c, c), nn.ReLU())
            for b, c in zip(self.blocks, channels)} if model == 2 else {})
        self.features = sum(channels)
        self.head = nn.Sequential(nn.BatchNorm1d(self.features), nn.Linear(self.features, fc[0]), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(fc[0], fc[1]), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(fc[1], classes))
        self.frozen_trunk = freeze_trunk
        if freeze_trunk:
            self.trunk.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_trunk:
            self.trunk.eval()  # a frozen trunk keeps its BatchNorm statistics (Keras' trainable=False)
        return self

    def block_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = self.trunk.blocks(x)
        return {f"block{b}": outputs[f"block{b}"] for b in self.blocks}

    def pooled(self, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The fused feature vector: each block's (mixed) activations, globally average-pooled."""
        return torch.cat([self.mixers[name](a).mean(dim=(2, 3)) if name in self.mixers else a.mean(dim=(2, 3))
                          for name, a in acts.items()], dim=1)

    def fuse(self, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        """From the block activations to logits (the Grad-CAM head)."""
        return self.head(self.pooled(acts))

    def embedding(self, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The penultimate layer: FC2's output, what the output layer reads (the domain check's features)."""
        return self.head[:-1](self.pooled(acts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.block_outputs(x))
