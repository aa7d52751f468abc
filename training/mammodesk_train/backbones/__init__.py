"""Backbones in plain PyTorch (no torchvision, no timm), each exposing its block outputs by name."""

from typing import Callable

from torch import nn

from mammodesk_train.backbones.efficientnet import VARIANTS as EFFICIENTNET_VARIANTS
from mammodesk_train.backbones.efficientnet import EfficientNet, efficientnet
from mammodesk_train.backbones.resnet import ResNet50
from mammodesk_train.backbones.resnet_v2 import ResNet50V2, keras_parameter_count
from mammodesk_train.backbones.vgg import VGG, vgg16, vgg19
from mammodesk_train.backbones.xception import Xception

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "vgg16": vgg16, "vgg19": vgg19, "resnet50": ResNet50, "resnet50v2": ResNet50V2, "xception": Xception,
    **{f"efficientnet_{v}": (lambda v=v, **kw: efficientnet(v, **kw)) for v in EFFICIENTNET_VARIANTS},
}

__all__ = ["BACKBONES", "EfficientNet", "ResNet50", "ResNet50V2", "VGG", "Xception", "efficientnet", "keras_parameter_count", "vgg16",
           "vgg19"]
