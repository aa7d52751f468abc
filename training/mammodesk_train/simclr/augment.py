"""SimCLR's two views of one image (MODELS.md family 2): random horizontal and
vertical flips, a random crop of 50-80 % of the image's area resized back,
brightness jitter, contrast jitter with probability 0.2, Gaussian blur.
Parameters are drawn first (`sample`) and applied second (`apply`), so the
documented ranges can be tested. Torch's RNG, seeded by the caller."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


@dataclass(frozen=True)
class AugmentConfig:
    crop_area: tuple[float, float] = (0.5, 0.8)  # fraction of the image's area
    aspect: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5  # each of horizontal and vertical
    brightness: float = 0.4  # factor in 1 +- brightness
    contrast: float = 0.4  # factor in 1 +- contrast ...
    contrast_p: float = 0.2  # ... applied with this probability
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # in pixels of a 32-pixel view; scales with the view


@dataclass(frozen=True)
class ViewParams:
    top: int
    left: int
    height: int
    width: int
    flip_h: bool
    flip_v: bool
    brightness: float
    contrast: float | None
    blur_sigma: float | None


def sample(config: AugmentConfig, size: tuple[int, int], generator: torch.Generator | None = None) -> ViewParams:
    rows, cols = size

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    def chance(p: float) -> bool:
        return float(torch.rand((), generator=generator)) < p

    area = uniform(*config.crop_area) * rows * cols
    aspect = math.exp(uniform(math.log(config.aspect[0]), math.log(config.aspect[1])))
    height = min(rows, max(1, round(math.sqrt(area / aspect))))
    width = min(cols, max(1, round(area / height)))  # area is kept when the aspect has to give way
    height = min(rows, max(1, round(area / width)))
    top = int(torch.randint(0, rows - height + 1, (), generator=generator))
    left = int(torch.randint(0, cols - width + 1, (), generator=generator))
    return ViewParams(
        top, left, height, width, chance(config.flip_p), chance(config.flip_p),
        uniform(1 - config.brightness, 1 + config.brightness),
        uniform(1 - config.contrast, 1 + config.contrast) if chance(config.contrast_p) else None,
        uniform(*config.blur_sigma) if chance(config.blur_p) else None)


def apply(x: torch.Tensor, params: ViewParams) -> torch.Tensor:
    """One view of a C x H x W image in [0, 1], at the input's size."""
    rows, cols = x.shape[-2:]
    p = params
    view = x[:, p.top:p.top + p.height, p.left:p.left + p.width]
    view = F.interpolate(view[None], size=(rows, cols), mode="bilinear", align_corners=False)[0]
    if p.flip_h:
        view = view.flip(-1)
    if p.flip_v:
        view = view.flip(-2)
    view = view * p.brightness
    if p.contrast is not None:
        mean = view.mean(dim=(-2, -1), keepdim=True)
        view = (view - mean) * p.contrast + mean
    if p.blur_sigma is not None:
        view = gaussian_blur(view, p.blur_sigma * rows / 32)
    return view.clamp(0, 1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[0]
    padded = F.pad(x[None], (radius, radius, radius, radius), mode="reflect")
    blurred = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(blurred, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)[0]


class TwoViews(Dataset):
    """Pairs of views of unlabelled images (N x C x H x W, values in [0, 1])."""

    def __init__(self, images: torch.Tensor, config: AugmentConfig = AugmentConfig()):
        self.images, self.config = images, config

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        x = self.images[index]
        size = tuple(x.shape[-2:])
        return apply(x, sample(self.config, size)), apply(x, sample(self.config, size))
