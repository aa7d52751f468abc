"""SimCLR recipe (MODELS.md family 2) under the `run_cv` protocol: in each
fold the encoder is pretrained contrastively on the training fold's images
only (their labels unused), then frozen under a linear probe trained on the
same fold; the test fold's patients are never seen by either. The
`-random` presets skip pretraining: the same probe on a randomly initialised
encoder, the baseline the pretraining has to beat."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from mammodesk_train.app import CamOutput, InputLayout, RoiMode, build_metadata
from mammodesk_train.app import PipelineSpec

from mammodesk_train import __version__
from mammodesk_train.data.builders import Samples, whole_images
from mammodesk_train.data.sources import Record
from mammodesk_train.data.tasks import Task
from mammodesk_train.engine import (
    FitConfig, batched_logits, cross_entropy_loss, fit, pick_device, seed_everything,
)
from mammodesk_train.export import ExportReport, MethodModule, export_with_cams, trust_metadata, weights_sha256
from mammodesk_train.frozen import embed
from mammodesk_train.simclr.augment import AugmentConfig
from mammodesk_train.simclr.backbone import init_backbone
from mammodesk_train.simclr.model import LinearProbe, SimCLRNet
from mammodesk_train.simclr.pretrain import PretrainConfig, ProbeConfig, pretrain, train_probe
from mammodesk_train.families.protocol import FamilyBase
from mammodesk_train.families.registry import register_family


@dataclass(frozen=True)
class SimCLRPreset:
    name: str
    description: str
    size: int
    width: float
    pretrain: PretrainConfig | None  # None: random-init encoder (the baseline)
    probe: ProbeConfig = ProbeConfig()
    augment: AugmentConfig = AugmentConfig()
    finetune: FitConfig | None = None  # after the probe: train encoder and head together
    family: str = "simclr"

    def spec(self) -> PipelineSpec:
        return PipelineSpec([{"op": "crop_to_breast"}, {"op": "flip_laterality"},
                             {"op": "resize", "params": {"width": self.size, "height": self.size,
                                                         "keep_aspect": False}},
                             {"op": "normalise"}])

    def build(self, classes: int) -> LinearProbe:
        return LinearProbe(SimCLRNet(1, self.width).encoder, classes)

    def scaled(self, epochs_factor: float) -> "SimCLRPreset":
        scale = lambda n: max(1, int(n * epochs_factor))  # noqa: E731
        pre = replace(self.pretrain, epochs=scale(self.pretrain.epochs)) if self.pretrain else None
        tune = replace(self.finetune, epochs=scale(self.finetune.epochs)) if self.finetune else None
        return replace(self, pretrain=pre, probe=replace(self.probe, epochs=scale(self.probe.epochs)), finetune=tune)


_LITE = ("ResNet50V2 small-input encoder at 1/4 width (1.8M parameters) for 2 CPU cores, 32x32 whole "
         "breasts (cropped, chest wall left)")
PRESETS = {
    "simclr-paper": SimCLRPreset(
        "simclr-paper", "MODELS.md: small-input ResNet (V2 form) at full width, 2048->2048->128 projection, "
        "32x32 input, NT-Xent t=0.5, batch 128 (256 views), LARS with warm-up + cosine, 60 epochs; linear "
        "probe with SGD + momentum, 40 epochs", 32, 1.0, PretrainConfig()),
    "simclr-lite": SimCLRPreset(
        "simclr-lite", f"{_LITE}; 100 pretraining epochs, batch 32 (64 views), LARS at 0.075 x sqrt(batch) "
        "(the paper's small-batch rule), t=0.5; linear probe", 32, 0.25,
        PretrainConfig(epochs=100, batch_size=32, lr=0.075, lr_scaling="sqrt")),
    "simclr-lite-geometric": SimCLRPreset(
        "simclr-lite-geometric", "simclr-lite with geometric views only (flips, crops, blur; no brightness or "
        "contrast jitter): an ablation for tasks where intensity is the signal (density)", 32, 0.25,
        PretrainConfig(epochs=100, batch_size=32, lr=0.075, lr_scaling="sqrt"),
        augment=AugmentConfig(brightness=0.0, contrast_p=0.0)),
    "simclr-lite-finetune": SimCLRPreset(
        "simclr-lite-finetune", "simclr-lite, then full fine-tuning: encoder and linear head together, SGD "
        "momentum 0.9 at 0.01 with cosine decay for 30 epochs, flipped views", 32, 0.25,
        PretrainConfig(epochs=100, batch_size=32, lr=0.075, lr_scaling="sqrt"),
        finetune=FitConfig(epochs=30, batch_size=32, lr=0.01, optimizer="sgd", momentum=0.9, schedule="cosine",
                           weight_decay=1e-4)),
    "simclr-lite-random": SimCLRPreset(
        "simclr-lite-random", "the simclr-lite probe on a randomly initialised encoder (no pretraining): "
        "the baseline for the pretraining gain", 32, 0.25, None),
}


class Flipped(TensorDataset):
    """Fine-tuning views: random horizontal and vertical flips (geometry only)."""

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
        if torch.rand(()) < 0.5:
            x = x.flip(-2)
        return x, y



@register_family("simclr", presets=PRESETS)
class SimCLRFamily(FamilyBase):
    def __init__(self, preset: SimCLRPreset, device: str = "auto", progress: bool = True):
        self.preset = preset
        self.device = pick_device(device)
        self.progress = progress
        self.init: Path | None = None  # a backbone file: probe it instead of pretraining per fold

    def build_samples(self, records: list[Record], task: Task) -> tuple[Samples, None]:
        return whole_images(records, task, self.preset.spec()), None

    def train(self, samples: Samples, _unused, train_index: np.ndarray, classes: int, seed: int,
              out_dir: Path | None = None) -> LinearProbe:
        seed_everything(seed)
        x = samples.x[train_index]
        if self.init is not None:
            encoder = SimCLRNet(x.shape[1], self.preset.width).encoder
            init_backbone(encoder, self.init)
        elif self.preset.pretrain is None:
            encoder = SimCLRNet(x.shape[1], self.preset.width).encoder
        else:  # unlabelled images of the training fold only
            net, _ = pretrain(x, self.preset.pretrain, width=self.preset.width, seed=seed, device=self.device,
                              augment=self.preset.augment, log=out_dir / "simclr.jsonl" if out_dir else None,
                              progress=self.progress)
            encoder = net.encoder
        probe = train_probe(encoder, x, samples.y[train_index], classes, self.preset.probe, seed=seed,
                            device=self.device)
        if self.preset.finetune is not None:
            probe.encoder.requires_grad_(True)
            data = Flipped(torch.from_numpy(x), torch.from_numpy(samples.y[train_index]))
            fit(probe, cross_entropy_loss, data, replace(self.preset.finetune, seed=seed), device=self.device,
                out_dir=out_dir, name="finetune", progress=self.progress)
            probe = probe.cpu().eval()
        return probe

    def predict(self, model: LinearProbe, x: np.ndarray) -> np.ndarray:
        return torch.softmax(batched_logits(model, x, self.device), dim=1).numpy()

    def embed(self, model: LinearProbe, x: np.ndarray) -> np.ndarray:
        """The standardised pooled encoder features (what the linear head reads)."""
        model.eval().to(self.device)
        features = embed(lambda batch: model.features(model.maps(batch)), x, self.device)
        model.cpu()
        return features

    def export(self, model: LinearProbe, task: Task, path: Path, training: dict, metrics: dict,
               name: str, trust: dict | None = None) -> ExportReport:
        p = self.preset
        metadata = build_metadata(
            family=p.family, name=name, task=task.name, labels=list(task.classes), spec=p.spec(),
            input=InputLayout("image", 1, p.size, p.size), activation="softmax", roi=RoiMode("whole"),
            training=training, metrics=metrics, weights_sha256=weights_sha256(model),
            tool_version=f"mammodesk-train {__version__}",
            cams={"combined": CamOutput("cams", "encoder's last stage (post BN-ReLU)")},
            description=f"{p.name}: {p.description}", **trust_metadata(trust))
        report = export_with_cams(MethodModule(model.maps), MethodModule(model.head), torch.rand(2, 1, p.size, p.size),
                                  path, metadata, classes=len(task.classes), embedding=MethodModule(model.features))
        return report.check()
