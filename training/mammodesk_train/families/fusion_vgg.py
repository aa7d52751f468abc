"""Deep-fusion VGG recipe (MODELS.md family 5): 120x120 ROIs around MIAS
finding centres plus random normal ROIs inside the breast (median, CLAHE,
black background cropped away, rescaled), random 72x72 training patches per
class drawn from the training fold's ROIs only, and ROI-level evaluation by
majority vote over 25 patches - at the same positions the app's engine uses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from mammodesk.inference import CamOutput, InputLayout, RoiMode, build_metadata
from mammodesk.inference.patches import cut_patches, patch_positions
from mammodesk.preprocessing import PipelineSpec

from mammodesk_train import __version__
from mammodesk_train.data.builders import Samples, random_patches, roi_crops
from mammodesk_train.data.sources import Record
from mammodesk_train.data.tasks import Task
from mammodesk_train.engine import FitConfig, cross_entropy_loss, fit, pick_device, seed_everything
from mammodesk_train.export import ExportReport, MethodModule, export_with_cams, weights_sha256
from mammodesk_train.metrics import classification_metrics
from mammodesk_train.models.fusion import FusionVGG

MIAS_SPACING_MM = 0.2  # the ROI size refers to MIAS pixels (200 micrometres)


@dataclass(frozen=True)
class FusionPreset:
    name: str
    description: str
    model: int
    width: float
    fit: FitConfig
    patches_per_class: dict[int, int] = field(default_factory=lambda: {0: 500, 1: 2000})
    blocks: tuple[int, ...] = (1, 2, 3, 4, 5)
    fc: tuple[int, int] = (256, 128)
    freeze_trunk: bool = False
    roi: int = 120
    patch: int = 72
    vote_patches: int = 25
    normals_per_image: int = 1
    balance: bool = False  # raise per-ROI patch counts until every class has as many training patches as the largest
    family: str = "fusion-vgg"

    def spec(self) -> PipelineSpec:
        return PipelineSpec([
            {"op": "median", "params": {"ksize": 3}},
            {"op": "clahe", "params": {"clip_limit": 2.0, "tiles": 4}},
            {"op": "crop_to_breast"},
            {"op": "resize", "params": {"width": self.roi, "height": self.roi, "keep_aspect": False}},
            {"op": "normalise"},
            {"op": "to_rgb"},
        ])

    def build(self, classes: int) -> FusionVGG:
        return FusionVGG(classes, model=self.model, blocks=self.blocks, width=self.width, fc=self.fc,
                         freeze_trunk=self.freeze_trunk)

    def scaled(self, epochs_factor: float) -> "FusionPreset":
        return replace(self, fit=replace(self.fit, epochs=max(1, int(self.fit.epochs * epochs_factor))))


_PAPER_FIT = FitConfig(epochs=30, batch_size=64, lr=1e-4, optimizer="adam", patience=None)
_LITE_FIT = FitConfig(epochs=8, batch_size=64, lr=1e-3, optimizer="adam", schedule="cosine", weight_decay=1e-4)
_LITE_PATCHES = {0: 6, 1: 18}  # normal, tumour: the study's 1:4 ratio cut to what 2 CPU cores train in minutes
PRESETS = {
    "fusion-vgg16-m1": FusionPreset(
        "fusion-vgg16-m1", "MODELS.md Model 1: VGG16 trunk, GAP of blocks 1-5 (1472 features), BN, FC 256, FC 128; "
        "500/2000 patches per normal/tumour ROI; trunk trainable (no ImageNet weights here: pass a local VGG16 "
        "file and freeze it to follow the study)", 1, 1.0, _PAPER_FIT),
    "fusion-vgg16-m2": FusionPreset(
        "fusion-vgg16-m2", "MODELS.md Model 2: Model 1 with per-block BatchNorm, 2x2 average pooling and 1x1 "
        "convolution before each GAP", 2, 1.0, _PAPER_FIT),
    "fusion-vgg16-m1-lite": FusionPreset(
        "fusion-vgg16-m1-lite", "Model 1 at 1/8 VGG16 width (8..64 channels) for 2 CPU cores; 6/18 patches per "
        "normal/tumour ROI, raised for the smaller class until both classes give as many patches (MIAS has more "
        "normal than tumour ROIs), random flips; 8 epochs, Adam 1e-3 cosine", 1, 0.125, _LITE_FIT,
        dict(_LITE_PATCHES), balance=True),
    "fusion-vgg16-m2-lite": FusionPreset(
        "fusion-vgg16-m2-lite", "Model 2 at 1/8 VGG16 width, same training as fusion-vgg16-m1-lite", 2, 0.125,
        _LITE_FIT, dict(_LITE_PATCHES), balance=True),
}


class RandomFlips(TensorDataset):
    """Training-only augmentation: each patch mirrored horizontally with
    probability 1/2 (torch's RNG, which the engine seeds)."""

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        return (torch.flip(x, dims=(2,)) if torch.rand(()) < 0.5 else x), y



class FusionFamily:
    """The `run_cv` protocol: samples are ROIs; training draws patches from the
    training ROIs; predictions are ROI-level vote shares."""

    def __init__(self, preset: FusionPreset, device: str = "auto", progress: bool = True):
        self.preset = preset
        self.device = pick_device(device)
        self.progress = progress

    def build_samples(self, records: list[Record], task: Task) -> tuple[Samples, None]:
        p = self.preset
        return roi_crops(records, task, p.spec(), p.roi, normals_per_image=p.normals_per_image), None

    def train(self, rois: Samples, _unused, train_index: np.ndarray, classes: int, seed: int,
              out_dir: Path | None = None) -> FusionVGG:
        seed_everything(seed)
        p = self.preset
        training = rois.subset(train_index)
        patches = random_patches(training, p.patch, self.patch_counts(training.y), seed=seed)
        model = p.build(classes)
        fit(model, cross_entropy_loss, RandomFlips(torch.from_numpy(patches.x), torch.from_numpy(patches.y)),
            replace(p.fit, seed=seed), device=self.device, out_dir=out_dir, name="fusion", progress=self.progress)
        return model.cpu().eval()

    def patch_counts(self, labels: np.ndarray) -> dict[int, int]:
        """Patches per ROI of each class; with `balance`, scaled up so that each
        class contributes as many patches as the largest one."""
        counts = dict(self.preset.patches_per_class)
        if not self.preset.balance:
            return counts
        rois = {c: int((labels == c).sum()) for c in counts}
        total = max(rois[c] * k for c, k in counts.items())
        return {c: max(k, -(-total // rois[c])) if rois[c] else k for c, k in counts.items()}

    def vote_patches(self, rois: np.ndarray) -> np.ndarray:
        """(N, 25, C, 72, 72): the patches the app's engine cuts from each ROI."""
        p = self.preset
        positions = patch_positions(rois.shape[2:], p.patch, p.vote_patches, seed=0)
        return np.stack([cut_patches(roi.transpose(1, 2, 0), positions, p.patch).transpose(0, 3, 1, 2)
                         for roi in rois])

    @torch.no_grad()
    def patch_probabilities(self, model: FusionVGG, rois: np.ndarray) -> np.ndarray:
        """(N, 25, classes) softmax outputs of each ROI's vote patches."""
        patches = self.vote_patches(rois)
        n, count = patches.shape[:2]
        flat = torch.from_numpy(np.ascontiguousarray(patches.reshape(n * count, *patches.shape[2:])))
        model.eval().to(self.device)
        probs = torch.cat([torch.softmax(model(flat[i:i + 256].to(self.device)), dim=1).cpu()
                           for i in range(0, len(flat), 256)])
        model.cpu()
        return probs.numpy().reshape(n, count, -1)

    def predict(self, model: FusionVGG, rois: np.ndarray) -> np.ndarray:
        """ROI-level scores: the share of the 25 patch votes each class got
        (argmax = the majority vote; ties go to the lower class index)."""
        probs = self.patch_probabilities(model, rois)
        votes = np.eye(probs.shape[2])[probs.argmax(axis=2)].sum(axis=1)
        return votes / probs.shape[1]

    def extra_metrics(self, model: FusionVGG, rois: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> dict:
        """Patch-level metrics: every vote patch scored against its ROI's label."""
        probs = self.patch_probabilities(model, rois)
        return {"patch_level": classification_metrics(np.repeat(y, probs.shape[1]),
                                                      probs.reshape(-1, probs.shape[2]), classes, bootstrap=0)}

    def export(self, model: FusionVGG, task: Task, path: Path, training: dict, metrics: dict,
               name: str) -> ExportReport:
        p = self.preset
        metadata = build_metadata(
            family=p.family, name=name, task=task.name, labels=list(task.classes), spec=p.spec(),
            input=InputLayout("image", 3, p.patch, p.patch), activation="softmax",
            roi=RoiMode("patches", size=p.roi, spacing_mm=MIAS_SPACING_MM, patch_size=p.patch,
                        patches=p.vote_patches, seed=0),
            training=training, metrics=metrics, weights_sha256=weights_sha256(model),
            tool_version=f"mammodesk-train {__version__}",
            cams={"combined": CamOutput("cams", "VGG block 5")}, description=f"{p.name}: {p.description}")
        example = torch.rand(2, 3, p.patch, p.patch)
        model = model.eval()
        report = export_with_cams(MethodModule(model.block_outputs), MethodModule(model.fuse), example, path,
                                  metadata, classes=len(task.classes), cam_keys=["block5"])
        return report.check()

