"""Hybrid concat recipe (MODELS.md family 3): lesion ROIs through the study's
chain as a spec (non-local means, threshold ROI extraction, median, CLAHE,
229x229x3), the augmentation layer as training-only transforms, ResNet50V2 ||
EfficientNet with one sigmoid unit, and one Grad-CAM per branch plus the
combined map (their sum: Grad-CAM on the concatenated channels).

The `-lite0` presets take the ImageNet EfficientNet-Lite0 as the EfficientNet
branch and keep both branches frozen (the ResNet50V2 from `--init`, a SimCLR
backbone pretrained on mammogram windows); their pooled features are computed
once, for the 8 rotations/reflections of every ROI, and only the output layer
trains per fold (`frozen.py`)."""

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
from mammodesk_train.engine import FitConfig, batched_logits, fit, pick_device, seed_everything
from mammodesk_train.export import ExportReport, MethodModule, export_with_cams, trust_metadata, weights_sha256
from mammodesk_train.frozen import FeatureCache, dihedral, embed, fit_head
from mammodesk_train.models.hybrid import HybridConcat
from mammodesk_train.families.protocol import CatalogueEntry, FamilyBase
from mammodesk_train.families.registry import register_family


@dataclass(frozen=True)
class HybridPreset:
    name: str
    description: str
    size: int
    efficientnet: str
    resnet_width: float
    efficientnet_width: float | None
    fit: FitConfig
    roi: int = 120
    pooling: str = "avg"
    denoise: str = "median"  # the second denoising pass: median (best in the study), wiener or gaussian
    threshold: float = 193.0
    filters: bool = True  # the study's chain (non-local means, threshold ROI, second denoising, CLAHE)
    intensity: str = "minmax"  # normalise mode; range keeps absolute intensity
    frozen: bool = False  # both branches fixed; only the output layer trains (on cached features)
    normals_per_image: int = 0  # random normal-tissue ROIs per normal image (0: lesion ROIs only)
    trunk_seed: int | None = None  # frozen presets: one random start for a branch without weights, every fold
    family: str = "hybrid"

    def spec(self) -> PipelineSpec:
        second = {"median": {"op": "median", "params": {"ksize": 3}}, "wiener": {"op": "wiener"},
                  "gaussian": {"op": "gaussian", "params": {"sigma": 1.0}}}[self.denoise]
        chain = [{"op": "nlmeans", "params": {"h": 10.0}},
                 {"op": "threshold_roi", "params": {"level": self.threshold}},
                 second,
                 {"op": "clahe", "params": {"clip_limit": 2.0, "tiles": 4}}] if self.filters else []
        return PipelineSpec(chain + [
            {"op": "resize", "params": {"width": self.size, "height": self.size, "keep_aspect": False}},
            {"op": "normalise", "params": {"mode": self.intensity}},
            {"op": "to_rgb"},
        ])

    def build(self, classes: int, pretrained: bool = False) -> HybridConcat:
        net = HybridConcat(classes, efficientnet=self.efficientnet, resnet_width=self.resnet_width,
                           efficientnet_width=self.efficientnet_width, pooling=self.pooling, frozen=self.frozen)
        if pretrained and self.efficientnet == "lite0":
            from mammodesk_train.backbones.imagenet import imagenet_lite0

            net.efficientnet.load_state_dict(imagenet_lite0().state_dict())
        return net

    def scaled(self, epochs_factor: float) -> "HybridPreset":
        return replace(self, fit=replace(self.fit, epochs=max(1, int(self.fit.epochs * epochs_factor))))


PRESETS = {
    "hybrid-r50v2-effb7": HybridPreset(
        "hybrid-r50v2-effb7", "MODELS.md: ResNet50V2 || EfficientNet-B7 at 229x229x3, branch dropout 0.3, GAP, "
        "dropout 0.2, one sigmoid unit (87.7M parameters); SGD Nesterov 0.9, lr 1e-4, 100 epochs; "
        "median as the second denoising pass", 229, "b7", 1.0, None,
        FitConfig(epochs=100, batch_size=16, lr=1e-4, optimizer="sgd", momentum=0.9, nesterov=True)),
    "hybrid-lite": HybridPreset(
        "hybrid-lite", "the same two-branch design for 2 CPU cores: 96x96 input, ResNet50V2 at 1/8 width and "
        "EfficientNet-B0 (not B7) at 1/4 width; Adam 1e-3 with cosine decay for 60 epochs (SGD at 1e-4 barely "
        "moves randomly initialised weights in that budget; 10 epochs left the model at the majority class)",
        96, "b0", 0.125, 0.25,
        FitConfig(epochs=60, batch_size=16, lr=1e-3, optimizer="adam", schedule="cosine", weight_decay=1e-4)),
    "hybrid-lite0": HybridPreset(
        "hybrid-lite0", "ResNet50V2 at 1/8 width || ImageNet EfficientNet-Lite0, both frozen (start the ResNet50V2 "
        "from a SimCLR backbone with --init), 224x224 ROIs with intensity scaled by bit depth (the study's "
        "threshold and CLAHE chain throws absolute intensity away), GAP of the concatenated maps, dropout 0.2, "
        "one sigmoid unit; trained on the 8 rotations/reflections of each training ROI (Adam 1e-3 cosine, "
        "60 epochs, class-balanced)", 224, "lite0", 0.125, None,
        FitConfig(epochs=60, batch_size=64, lr=1e-3, optimizer="adam", schedule="cosine", weight_decay=1e-3),
        filters=False, intensity="range", frozen=True),
}
_MASS = ("the task the data supports (--task mass_normal): mass ROIs vs one random normal-tissue ROI per normal "
         "image, 120 MIAS pixels (24 mm); hybrid-lite0's frozen branches (the ResNet50V2 from one fixed random start "
         "unless --init, so every fold reads the same features)")
PRESETS["hybrid-lite0-mass"] = replace(
    PRESETS["hybrid-lite0"], name="hybrid-lite0-mass", normals_per_image=1, trunk_seed=0,
    description=_MASS + "; intensity scaled by bit depth, no filters")
PRESETS["hybrid-lite0-mass-seed"] = replace(
    PRESETS["hybrid-lite0"], name="hybrid-lite0-mass-seed", normals_per_image=1, trunk_seed=0, filters=True,
    intensity="minmax", description=_MASS + "; the seed study's chain: non-local means, threshold-193 ROI "
    "extraction, median, CLAHE, per-ROI min-max")


class Augmented(TensorDataset):
    """The study's augmentation layer, training only: rotation up to 0.15
    turn, shifts up to 10%, zoom -10%..+1%, horizontal flip - one random
    affine per sample (torch's RNG, seeded by the engine)."""

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        angle = (torch.rand(()) * 2 - 1) * 0.15 * 2 * math.pi
        zoom = 1.0 / (0.9 + torch.rand(()) * 0.11)
        shift = (torch.rand(2) * 2 - 1) * 0.2  # affine_grid coordinates span 2: 10% of the side
        flip = -1.0 if torch.rand(()) < 0.5 else 1.0
        cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
        theta = torch.stack([torch.stack([cos * flip, -sin, shift[0]]), torch.stack([sin * flip, cos, shift[1]])])
        grid = F.affine_grid(theta[None], [1, *x.shape], align_corners=False)
        return F.grid_sample(x[None], grid, padding_mode="zeros", align_corners=False)[0], y


def _binary_cross_entropy(model: torch.nn.Module, batch: tuple) -> torch.Tensor:
    x, y = batch
    return F.binary_cross_entropy_with_logits(model(x)[:, 0], y.float())


CATALOGUE = (
    CatalogueEntry(task='benign_malignant', purpose='ROI: benign vs malignant mass', detail='ResNet50V2 and EfficientNet branches, concatenated', not_bundled='not bundled: at chance on 96 lesions', why='on the 96 MIAS lesions both the model (AUC 0.49 ± 0.14) and the plain baseline (0.52 ± 0.13) are at chance: MIAS has too few lesions for this task'),
    CatalogueEntry(task='mass_normal', purpose='ROI: mass vs normal tissue', detail="ResNet50V2 and EfficientNet branches, concatenated; the seed's filter chain or bit-depth intensity, chosen by nested CV", not_bundled='not bundled: lost to the plain baseline', why="on 211 MIAS ROIs (masses vs normal tissue, 126 women) its nested CV AUC 0.76 ± 0.07 lost to the plain baseline's 0.94 ± 0.01 (-0.18 ± 0.07 paired, 0/5 folds)"),
)


@register_family("hybrid", presets=PRESETS, unit="ROIs", catalogue=CATALOGUE)
class HybridFamily(FamilyBase):
    """The `run_cv` protocol for lesion ROIs: benign vs malignant, or (with normal ROIs) mass vs normal."""

    def __init__(self, preset: HybridPreset, device: str = "auto", progress: bool = True):
        self.preset = preset
        self.device = pick_device(device)
        self.progress = progress
        self.init: Path | None = None  # a backbone file for the ResNet50V2 branch (`pretrain`)
        self._cache = FeatureCache()

    def build_samples(self, records: list[Record], task: Task) -> tuple[Samples, None]:
        if len(task.classes) != 2:
            raise ValueError(f"the hybrid family has one sigmoid output: it needs a two-class task, "
                             f"{task.name} has {len(task.classes)}")
        return roi_crops(records, task, self.preset.spec(), self.preset.roi,
                         normals_per_image=self.preset.normals_per_image), None

    def train(self, rois: Samples, _unused, train_index: np.ndarray, classes: int, seed: int,
              out_dir: Path | None = None) -> HybridConcat:
        seed_everything(seed if self.preset.trunk_seed is None else self.preset.trunk_seed)
        model = self.preset.build(classes, pretrained=True)
        seed_everything(seed)
        if self.init is not None:
            from mammodesk_train.simclr.backbone import init_backbone

            init_backbone(model.resnet, self.init)
        if self.preset.frozen:
            features = self._cache.get(rois, model, ("dihedral",), lambda: self._dihedral_features(model, rois.x))
            labels = np.repeat(rois.y[train_index], features.shape[1])
            fit_head(model.output, features[train_index].reshape(-1, features.shape[2]), labels, classes,
                     replace(self.preset.fit, seed=seed), device=self.device, out_dir=out_dir, name="hybrid-head",
                     progress=self.progress)
            return model.cpu().eval()
        data = Augmented(torch.from_numpy(rois.x[train_index]), torch.from_numpy(rois.y[train_index]))
        fit(model, _binary_cross_entropy, data, replace(self.preset.fit, seed=seed), device=self.device,
            out_dir=out_dir, name="hybrid", progress=self.progress)
        return model.cpu().eval()

    def _dihedral_features(self, model: HybridConcat, rois: np.ndarray) -> np.ndarray:
        """(N, 8, F): pooled branch features of the 8 rotations/reflections of every ROI."""
        views = np.stack([dihedral(roi, k) for roi in rois for k in range(8)])
        model.eval().to(self.device)
        features = embed(lambda x: model.pooled(model.branches(x)), views, self.device, batch=32)
        model.cpu()
        return features.reshape(len(rois), 8, -1)

    def predict(self, model: HybridConcat, x: np.ndarray) -> np.ndarray:
        p = torch.sigmoid(batched_logits(model, x, self.device)[:, 0]).numpy()
        return np.stack([1 - p, p], axis=1)

    def embed(self, model: HybridConcat, x: np.ndarray) -> np.ndarray:
        """The pooled, concatenated branch features (what the output layer reads)."""
        model.eval().to(self.device)
        features = embed(lambda batch: model.pooled(model.branches(batch)), x, self.device, batch=32)
        model.cpu()
        return features

    def export(self, model: HybridConcat, task: Task, path: Path, training: dict, metrics: dict,
               name: str, trust: dict | None = None) -> ExportReport:
        p = self.preset
        cams = {"combined": CamOutput("cams", "concatenated branches (sum of the branch maps)"),
                "resnet50v2": CamOutput("cams_resnet50v2", "ResNet50V2 post-activation"),
                "efficientnet": CamOutput("cams_efficientnet", f"EfficientNet-{p.efficientnet.upper()} top")}
        metadata = build_metadata(
            family=p.family, name=name, task=task.name, labels=list(task.classes), spec=p.spec(),
            input=InputLayout("image", 3, p.size, p.size), activation="sigmoid",
            roi=RoiMode("roi", size=p.roi, spacing_mm=MIAS_SPACING_MM), training=training, metrics=metrics,
            weights_sha256=weights_sha256(model), tool_version=f"mammodesk-train {__version__}", cams=cams,
            description=f"{p.name}: {p.description}", **trust_metadata(trust))
        model = model.eval()
        report = export_with_cams(MethodModule(model.branches), MethodModule(model.combine),
                                  torch.rand(2, 3, p.size, p.size), path, metadata, classes=1,  # one sigmoid unit
                                  branch_outputs={"resnet50v2": "cams_resnet50v2", "efficientnet": "cams_efficientnet"},
                                  embedding=MethodModule(model.pooled))
        return report.check()
