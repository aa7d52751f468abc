"""VAE-CNN recipe: per fold, pretrain the VAE on the training fold's images
only (original and CLAHE versions, each also flipped: x4), encode, train the
latent classifier, predict the held-out fold. Then export encoder + classifier
as one ONNX file with Grad-CAM on the encoder's last convolution."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import TensorDataset

from mammodesk_train.app import CamOutput, InputLayout, RoiMode, build_metadata
from mammodesk_train.app import PipelineSpec

from mammodesk_train import __version__
from mammodesk_train.data.builders import Samples, whole_images
from mammodesk_train.data.sources import Record
from mammodesk_train.data.tasks import Task
from mammodesk_train.engine import FitConfig, fit, pick_device, seed_everything
from mammodesk_train.export import (
    ExportReport, export_plain, export_with_cams, trust_metadata, weights_sha256,
)
from mammodesk_train.families.protocol import CatalogueEntry, FamilyBase
from mammodesk_train.families.registry import register_family
from mammodesk_train.frozen import FeatureCache, embed
from mammodesk_train.models.vae_cnn import (
    VAE, LatentClassifier, LiteVAE, VaeCnnHead, VaeCnnTrunk, VaeLatentMean, classifier_loss, latent_features,
    lite_vae_loss, vae_loss,
)


@dataclass(frozen=True)
class VaeCnnPreset:
    name: str
    description: str
    width: int
    height: int
    channels: tuple[int, ...]
    latent: int
    vae: FitConfig
    classifier: FitConfig
    family: str = "vae-cnn"
    crop: bool = False  # crop to the breast (labels, tape, background out) and flip to one side first
    encoder: str = "convs"  # convs: the paper's three conv blocks; lite0: frozen ImageNet EfficientNet-Lite0
    beta: float = 1.0  # KL weight (lite0)
    supervision: float = 0.0  # weight of the auxiliary latent classifier in the VAE's loss (lite0)
    flatten_classifier: bool = False  # the Conv1d classifier reads every latent position instead of pooling

    @property
    def lite(self) -> bool:
        return self.encoder == "lite0"

    def spec(self, clahe: bool = True) -> PipelineSpec:
        ops = [{"op": "crop_to_breast"}, {"op": "flip_laterality"}] if self.crop else []
        if self.lite:  # absolute intensity kept (density is mostly intensity), three channels for ImageNet
            return PipelineSpec(ops + [
                {"op": "resize", "params": {"width": self.width, "height": self.height, "keep_aspect": False}},
                {"op": "normalise", "params": {"mode": "range"}}, {"op": "to_rgb"}])
        ops += [{"op": "clahe", "params": {"clip_limit": 2.0, "tiles": 8}}] if clahe else []
        ops += [{"op": "resize", "params": {"width": self.width, "height": self.height, "keep_aspect": False}},
                {"op": "normalise"}]
        return PipelineSpec(ops)

    def build(self, classes: int, pretrained: bool = False) -> "TrainedVaeCnn":
        classifier = LatentClassifier(classes, flatten=self.latent if self.flatten_classifier else None)
        if not self.lite:
            return TrainedVaeCnn(VAE(self.height, self.width, self.channels, self.latent), classifier)
        vae = LiteVAE(self.latent)
        if pretrained:
            from mammodesk_train.backbones.imagenet import imagenet_lite0

            vae.trunk.net.load_state_dict(imagenet_lite0().state_dict())
        return TrainedVaeCnn(vae, classifier)

    def scaled(self, epochs_factor: float) -> "VaeCnnPreset":
        """The same preset with fewer epochs (for smoke runs and tests)."""
        return replace(self, vae=replace(self.vae, epochs=max(1, int(self.vae.epochs * epochs_factor))),
                       classifier=replace(self.classifier, epochs=max(1, int(self.classifier.epochs * epochs_factor))))


PRESETS = {
    "vae-cnn-paper": VaeCnnPreset(
        "vae-cnn-paper", "MODELS.md sizes: 640x800 input, 640-d latent (channel counts are not published; "
        "(32, 64, 5) gives an encoder of 51.3M parameters, paper 52.2M); RMSprop 1e-3, 100 VAE epochs; "
        "Adam 1e-3 for the classifier (the paper's 10,000 epochs cut to 2,000)",
        640, 800, (32, 64, 5), 640,
        FitConfig(epochs=100, batch_size=16, lr=1e-3, optimizer="rmsprop"),
        FitConfig(epochs=2000, batch_size=16, lr=1e-3, optimizer="adam")),
    "vae-cnn-lite": VaeCnnPreset(
        "vae-cnn-lite", "same design scaled for 2 CPU cores: 80x96 input (1/8 per side), channels "
        "(8, 16, 16), 64-d latent, 30 VAE epochs, 400 classifier epochs",
        80, 96, (8, 16, 16), 64,
        FitConfig(epochs=30, batch_size=16, lr=1e-3, optimizer="rmsprop"),
        FitConfig(epochs=400, batch_size=16, lr=1e-3, optimizer="adam")),
}
PRESETS["vae-cnn-lite-crop"] = replace(
    PRESETS["vae-cnn-lite"], name="vae-cnn-lite-crop", crop=True,
    description="vae-cnn-lite with the breast cropped out first (crop_to_breast, flip_laterality): Grad-CAM of "
                "the uncropped model showed it using film labels, the skin line and film edges")
PRESETS["vae-cnn-lite0"] = VaeCnnPreset(
    "vae-cnn-lite0", "the VAE's encoder is ImageNet EfficientNet-Lite0, frozen (GAP of its 7 stages, 784 features, "
    "then dense layers to a 64-d latent); the decoder reconstructs the breast at 40x32; breast cropped and "
    "flipped to one side, 256x320, intensity scaled by bit depth; the VAE's loss adds an auxiliary latent "
    "classifier (weight 10, KL weight 0.1) because an unsupervised latent lost to the plain baseline in CV; "
    "the Conv1d classifier reads every latent position (the paper's pooling learnt little); 300 VAE epochs, "
    "400 classifier epochs", 256, 320, (), 64,
    FitConfig(epochs=300, batch_size=32, lr=1e-3, optimizer="adam", weight_decay=1e-4),
    FitConfig(epochs=400, batch_size=16, lr=1e-3, optimizer="adam", weight_decay=1e-3),
    crop=True, encoder="lite0", beta=0.1, supervision=10.0, flatten_classifier=True)


@dataclass
class TrainedVaeCnn:
    vae: VAE
    classifier: LatentClassifier


CATALOGUE = (
    CatalogueEntry(task='density', purpose='Density (fatty / glandular / dense)', detail='VAE latent read by a small 1D CNN', not_bundled='not bundled: lost to the plain baseline', why="its CV macro AUC 0.838 ± 0.049 did not beat the plain baseline's 0.850 ± 0.053"),
)


@register_family("vae-cnn", presets=PRESETS, catalogue=CATALOGUE)
class VaeCnnFamily(FamilyBase):
    accepts_init = False  # its encoder starts from ImageNet Lite0 or from scratch, never a backbone file

    def __init__(self, preset: VaeCnnPreset, device: str = "auto", progress: bool = True):
        self.preset = preset
        self.device = pick_device(device)
        self.progress = progress
        self._cache = FeatureCache()

    def build_samples(self, records: list[Record], task: Task) -> tuple[Samples, Samples | None]:
        """Classifier inputs (CLAHE) and the plain versions the VAE also learns from, aligned sample by
        sample; the lite0 encoder takes one input per image."""
        if self.preset.lite:
            return whole_images(records, task, self.preset.spec()), None
        clahe, plain = whole_images(records, task, self.preset.spec(True)), whole_images(records, task, self.preset.spec(False))
        if not np.array_equal(clahe.record_index, plain.record_index):  # train() indexes both with one index
            raise RuntimeError("CLAHE and plain samples are not aligned")
        return clahe, plain

    def train(self, clahe: Samples, plain: Samples | None, train_index: np.ndarray, classes: int, seed: int,
              out_dir: Path | None = None) -> TrainedVaeCnn:
        seed_everything(seed)
        p = self.preset
        if p.lite:
            return self._train_lite(clahe, train_index, classes, seed, out_dir)
        images = np.concatenate([clahe.x[train_index], plain.x[train_index]])
        images = np.concatenate([images, images[:, :, :, ::-1]])  # horizontal flips: x4 in all
        vae = VAE(p.height, p.width, p.channels, p.latent)
        fit(vae, vae_loss, TensorDataset(torch.from_numpy(np.ascontiguousarray(images))),
            replace(p.vae, seed=seed), device=self.device, out_dir=out_dir, name="vae", progress=self.progress)
        features = self.encode(vae, clahe.x[train_index])
        classifier = LatentClassifier(classes)
        labels = torch.from_numpy(clahe.y[train_index])
        fit(classifier, classifier_loss, TensorDataset(features, labels), replace(p.classifier, seed=seed),
            device=self.device, out_dir=out_dir, name="classifier", progress=False)
        return TrainedVaeCnn(vae.cpu().eval(), classifier.cpu().eval())

    def _train_lite(self, samples: Samples, train_index: np.ndarray, classes: int, seed: int,
                    out_dir: Path | None) -> TrainedVaeCnn:
        """The frozen trunk's pooled features are computed once for every image; per fold the VAE's
        dense layers and decoder (with the auxiliary classifier) train on them, then the classifier."""
        p = self.preset
        model = p.build(classes, pretrained=True)
        vae = model.vae
        pooled = self._cache.get(samples, vae, ("pooled",), lambda: self._pooled(vae, samples.x))
        rows, cols = vae.reconstruction
        targets = np.stack([cv2.resize(x[0], (cols, rows), interpolation=cv2.INTER_AREA) for x in samples.x])[:, None]
        aux = LatentClassifier(classes, flatten=p.latent)
        data = TensorDataset(torch.from_numpy(pooled[train_index]), torch.from_numpy(targets[train_index]),
                             torch.from_numpy(samples.y[train_index]))
        trainable = torch.nn.ModuleDict({"core": vae.core, "aux": aux})
        fit(trainable, lite_vae_loss(vae, aux, p.beta, p.supervision), data, replace(p.vae, seed=seed),
            device=self.device, out_dir=out_dir, name="vae", progress=self.progress)
        vae.cpu().eval()
        with torch.no_grad():
            latents = latent_features(*vae.encode_pooled(torch.from_numpy(pooled[train_index])))
        fit(model.classifier, classifier_loss, TensorDataset(latents, torch.from_numpy(samples.y[train_index])),
            replace(p.classifier, seed=seed), device=self.device, out_dir=out_dir, name="classifier", progress=False)
        return TrainedVaeCnn(vae, model.classifier.cpu().eval())

    def _pooled(self, vae: LiteVAE, x: np.ndarray) -> np.ndarray:
        vae.eval().to(self.device)
        features = embed(lambda batch: vae.pooled(vae.last_conv(batch)), x, self.device, batch=16)
        vae.cpu()
        return features

    @torch.no_grad()
    def encode(self, vae: VAE, x: np.ndarray) -> torch.Tensor:
        vae.eval().to(self.device)
        chunks = [latent_features(*vae.encode(torch.from_numpy(x[i:i + 32]).to(self.device))).cpu()
                  for i in range(0, len(x), 32)]
        return torch.cat(chunks)

    @torch.no_grad()
    def predict(self, model: TrainedVaeCnn, x: np.ndarray) -> np.ndarray:
        logits = model.classifier(self.encode(model.vae, x).cpu())
        return torch.softmax(logits, dim=1).numpy()

    def embed(self, model: TrainedVaeCnn, x: np.ndarray) -> np.ndarray:
        """The latent mean mu: what the classifier reads (as mu, sigma, z = mu)."""
        return self.encode(model.vae, x)[:, 0].numpy()

    def export(self, model: TrainedVaeCnn, task: Task, path: Path, training: dict, metrics: dict,
               name: str, trust: dict | None = None) -> ExportReport:
        p = self.preset
        trunk, head = VaeCnnTrunk(model.vae).eval(), VaeCnnHead(model.vae, model.classifier).eval()
        channels = 3 if p.lite else 1
        layer = "EfficientNet-Lite0 stage 5 (through the VAE's mu branch)" if p.lite else \
            "encoder last convolution (VAE convs[-2])"
        metadata = build_metadata(
            family=p.family, name=name, task=task.name, labels=list(task.classes), spec=p.spec(True),
            input=InputLayout("image", channels, p.height, p.width), activation="softmax", roi=RoiMode("whole"),
            training=training, metrics=metrics, weights_sha256=weights_sha256(head),
            tool_version=f"mammodesk-train {__version__}", cams={"combined": CamOutput("cams", layer)},
            description=f"{p.name}: {p.description}", **trust_metadata(trust))
        example = torch.rand(2, channels, p.height, p.width)
        report = export_with_cams(trunk, head, example, path, metadata, classes=len(task.classes),
                                  embedding=VaeLatentMean(model.vae), cam_keys=["block5"] if p.lite else None)
        report.check()
        self.export_decoder(model.vae, path.with_name(path.stem + ".decoder.onnx"))
        return report

    def export_decoder(self, vae: VAE, path: Path) -> Path:
        """The reconstruction view: image -> VAE reconstruction, as a companion file."""
        class Reconstruct(torch.nn.Module):
            def __init__(self, inner: VAE):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                recon = self.inner.decode(self.inner.encode(x)[0])  # the view shows it beside the input
                return torch.nn.functional.interpolate(recon, size=x.shape[2:], mode="bilinear", align_corners=False)

        example = torch.rand(2, 3 if self.preset.lite else 1, self.preset.height, self.preset.width)
        return export_plain(Reconstruct(vae), example, path, output_names=("reconstruction",),
                            metadata={"mammodesk.companion": "vae-reconstruction",
                                      "mammodesk.companion_of": path.name.replace(".decoder.onnx", ".onnx")})
