"""Backbones in plain PyTorch (no torchvision, no timm)."""

from mammodesk_train.backbones.vgg import VGG, vgg16, vgg19

__all__ = ["VGG", "vgg16", "vgg19"]
