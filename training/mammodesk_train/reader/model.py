"""The whole-mammogram reader (after Shen et al. 2019, Sci Rep 9:12495): an
ImageNet EfficientNet-Lite trunk, up to the end of its fifth stage (stride 16,
112 channels at Lite0), read fully convolutionally over the breast at a fixed
spacing; a patch classifier applied to every cell of that feature map (a 1x1
convolution: the same linear layer a patch classifier puts after global
pooling); and the image logit pooled from the `k` most suspicious breast cells
(top-k MIL). One pass per view gives the answer, the patch map (the heat map)
and the location. The fifth stage, not the last: on MIAS its finer cells
(6.4 mm at 0.4 mm per pixel) separated abnormal from normal images at AUC 0.68
where the 32-pixel top layer gave 0.58-0.61 (5-fold CV, one fold seed, a
fixed grid; measured once to choose the design, before the nested runs).
The spacing is the preset's: the shipped reader reads at 0.5 mm per pixel
(8 mm cells), chosen on screening fold seeds (see `run.PRESETS`).

With a linear head, Grad-CAM of the image logit at the trunk's output equals
the patch-logit map (minus its bias) times a positive constant: the
gradient-weighted sum of activations is the head applied to them. With one
hidden layer (chosen in inner CV where a preset offers it) the map is the patch
classifier's probability per cell: the same pass, no longer exactly a CAM."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mammodesk_train.app import BREAST_CELL  # a cell at least this much breast is pooled (and shown)

from mammodesk_train.backbones.efficientnet import EfficientNet
from mammodesk_train.backbones.imagenet import lite0_input

STRIDE = 16  # the feature map's stride: one map cell per 16 input pixels
STAGES = 5  # the trunk's stages kept (stem, then stages 1-5)
NOT_BREAST = -1.0e4  # the logit a non-breast cell gets before pooling


class WholeImageReader(nn.Module):
    def __init__(self, trunk: EfficientNet, k: int, flip_reading: bool = False):
        super().__init__()
        self.stem = trunk.stem
        self.stages = nn.Sequential(*trunk.stages[:STAGES])
        channels = self.stages[-1][-1].project[0].out_channels
        self.head = nn.Conv2d(channels, 1, 1)
        self.k = int(k)
        self.flip_reading = flip_reading  # also read the breast upside down (see `read`)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x 3 x H x W in 0..1 (the spec's output) -> N x C x H/16 x W/16."""
        return self.stages(self.stem(lite0_input(x)))

    def breast_cells(self, x: torch.Tensor) -> torch.Tensor:
        """N x h x w bool: cells that are mostly breast (the spec blacks out everything else)."""
        return F.avg_pool2d((x[:, :1] > 0).float(), STRIDE)[:, 0] >= BREAST_CELL

    def pool(self, patch_logits: torch.Tensor, breast: torch.Tensor) -> torch.Tensor:
        """N x h x w logits -> N x 1: the mean of the k highest breast cells."""
        return top_k_mean(patch_logits.flatten(1), breast.flatten(1), self.k)[:, None]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(image logit N x 1, patch logits N x 1 x h x w)."""
        return self.read(x, self.features(x))

    def read(self, x: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The answer from the trunk's `features` of x. With `flip_reading`, x is also read upside down (a
        vertical flip: the chest wall stays left; H is a multiple of the stride, so the cells coincide), its
        map flipped back onto the same cells: the image logit is the mean of the two pooled logits, the map
        the mean of the two maps (the same as training's `fit.reader_logits` and `fit.reader_patch_logits`)."""
        breast = self.breast_cells(x)
        patch = self.head(features)
        logit = self.pool(patch[:, 0], breast)
        if not self.flip_reading:
            return logit, patch
        flipped = self.head(self.features(torch.flip(x, dims=[2]))).flip(dims=[2])
        return (logit + self.pool(flipped[:, 0], breast)) / 2, (patch + flipped) / 2

    def patch_logit(self, patch: torch.Tensor) -> torch.Tensor:
        """The patch classifier: a patch's pooled features through the same linear layer (N x 1)."""
        pooled = self.features(patch).mean(dim=(2, 3), keepdim=True)
        return self.head(pooled).flatten(1)


def top_k_mean(logits: torch.Tensor, breast: torch.Tensor, k: int) -> torch.Tensor:
    """N x cells logits -> N: the mean of the k highest breast cells, or of all of them when a breast has
    fewer than k (off-breast cells never enter the mean)."""
    values = logits.masked_fill(~breast, NOT_BREAST).topk(min(k, logits.shape[1]), dim=1).values
    counted = (values > NOT_BREAST / 2).to(values.dtype)
    return (values * counted).sum(dim=1) / counted.sum(dim=1).clamp(min=1.0)


def head_from_standardised(net: nn.Module, mean: torch.Tensor, sd: torch.Tensor) -> nn.Module:
    """A patch classifier fitted on standardised features ((f - mean) / sd), per cell, as 1x1 convolutions
    on raw features: the standardisation folded into the first layer; dropout (training only) gone."""
    layers: list[nn.Module] = []
    for module in (net if isinstance(net, nn.Sequential) else [net]):
        if isinstance(module, nn.Linear):
            conv = nn.Conv2d(module.in_features, module.out_features, 1)
            with torch.no_grad():
                weight, bias = module.weight.detach(), module.bias.detach()
                if not layers:
                    scaled = weight / sd.flatten()[None]
                    weight, bias = scaled, bias - scaled @ mean.flatten()
                conv.weight.copy_(weight[:, :, None, None])
                conv.bias.copy_(bias)
            layers.append(conv)
        elif isinstance(module, nn.ReLU):
            layers.append(nn.ReLU())
        elif not isinstance(module, nn.Dropout):
            raise TypeError(f"cannot fold a {type(module).__name__} into the whole-image head")
    if not layers or not isinstance(layers[0], nn.Conv2d):
        raise TypeError("the patch classifier must start with a linear layer")
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)
