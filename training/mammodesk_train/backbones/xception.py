"""Xception (Chollet 2017) layer for layer as Keras' `Xception(include_top=False)`:
entry flow (two 3x3 convolutions without padding, three separable blocks with
1x1 stride-2 residuals), middle flow (8 blocks of three separable convolutions
at 728 channels), exit flow (1024, then 1536 and 2048 channels). Modules carry
the Keras layer names, so Keras weights map by name (`backbones/weights.py`).
Keras pads its 3x3 stride-2 max-pools "same" (extra row/column at the end);
that is reproduced with -inf padding, which a max-pool may fold into its own."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3  # Keras' default


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (no bias): a depthwise 3x3 then a pointwise 1x1."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def max_pool_same(x: torch.Tensor) -> torch.Tensor:
    rows, cols = x.shape[-2:]
    pad_rows = max((math.ceil(rows / 2) - 1) * 2 + 3 - rows, 0)
    pad_cols = max((math.ceil(cols / 2) - 1) * 2 + 3 - cols, 0)
    x = F.pad(x, (pad_cols // 2, pad_cols - pad_cols // 2, pad_rows // 2, pad_rows - pad_rows // 2),
              value=float("-inf"))
    return F.max_pool2d(x, 3, stride=2)


class Xception(nn.Module):
    def __init__(self, in_channels: int = 3, width: float = 1.0, middle_blocks: int = 8):
        super().__init__()
        c = lambda n: max(8, int(n * width))  # noqa: E731
        self.layers = nn.ModuleDict()
        self.middle_blocks = middle_blocks
        self._conv("block1_conv1", in_channels, c(32), stride=2)
        self._conv("block1_conv2", c(32), c(64))
        entry = [(2, c(64), c(128)), (3, c(128), c(256)), (4, c(256), c(728))]
        for index, (block, cin, cout) in enumerate(entry):
            self._residual(index, cin, cout)
            self._sep(f"block{block}_sepconv1", cin, cout)
            self._sep(f"block{block}_sepconv2", cout, cout)
        for block in range(5, 5 + middle_blocks):
            for i in (1, 2, 3):
                self._sep(f"block{block}_sepconv{i}", c(728), c(728))
        exit_block = 5 + middle_blocks
        self._residual(3, c(728), c(1024))
        self._sep(f"block{exit_block}_sepconv1", c(728), c(728))
        self._sep(f"block{exit_block}_sepconv2", c(728), c(1024))
        self._sep(f"block{exit_block + 1}_sepconv1", c(1024), c(1536))
        self._sep(f"block{exit_block + 1}_sepconv2", c(1536), c(2048))
        self.out_channels = c(2048)

    def _conv(self, name: str, cin: int, cout: int, stride: int = 1) -> None:
        self.layers[name] = nn.Conv2d(cin, cout, 3, stride=stride, bias=False)
        self.layers[f"{name}_bn"] = nn.BatchNorm2d(cout, eps=BN_EPS)

    def _sep(self, name: str, cin: int, cout: int) -> None:
        self.layers[name] = SeparableConv(cin, cout)
        self.layers[f"{name}_bn"] = nn.BatchNorm2d(cout, eps=BN_EPS)

    def _residual(self, index: int, cin: int, cout: int) -> None:
        suffix = f"_{index}" if index else ""  # Keras' automatic names for these unnamed layers
        self.layers[f"conv2d{suffix}"] = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.layers[f"batch_normalization{suffix}"] = nn.BatchNorm2d(cout, eps=BN_EPS)

    def _conv_bn(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.layers[f"{name}_bn"](self.layers[name](x))

    def blocks(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        L = self.layers
        x = F.relu(self._conv_bn("block1_conv1", x))
        x = F.relu(self._conv_bn("block1_conv2", x))
        outputs = {"block1": x}
        for index, block in enumerate((2, 3, 4)):
            suffix = f"_{index}" if index else ""
            residual = L[f"batch_normalization{suffix}"](L[f"conv2d{suffix}"](x))
            y = x if block == 2 else F.relu(x)
            y = F.relu(self._conv_bn(f"block{block}_sepconv1", y))
            y = max_pool_same(self._conv_bn(f"block{block}_sepconv2", y))
            x = y + residual
            outputs[f"block{block}"] = x
        for block in range(5, 5 + self.middle_blocks):
            y = x
            for i in (1, 2, 3):
                y = self._conv_bn(f"block{block}_sepconv{i}", F.relu(y))
            x = x + y
        outputs["middle"] = x
        exit_block = 5 + self.middle_blocks
        residual = L["batch_normalization_3"](L["conv2d_3"](x))
        y = self._conv_bn(f"block{exit_block}_sepconv1", F.relu(x))
        y = max_pool_same(self._conv_bn(f"block{exit_block}_sepconv2", F.relu(y)))
        x = y + residual
        x = F.relu(self._conv_bn(f"block{exit_block + 1}_sepconv1", x))
        outputs["exit"] = F.relu(self._conv_bn(f"block{exit_block + 1}_sepconv2", x))
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps after the last separable convolution's ReLU: the Grad-CAM target."""
        return self.blocks(x)["exit"]
