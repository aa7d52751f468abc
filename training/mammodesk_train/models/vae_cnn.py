"""Family 1 (MODELS.md): a VAE learns a latent code of whole mammograms
without labels; a tiny Conv1d network classifies the (latent, 3) sequence of
[mu, sigma, z].

Encoder: three Conv2d(3x3, ReLU) + MaxPool blocks, flatten, dense layers to
mean and log-variance. Decoder: dense, reshape, three upsample +
ConvTranspose2d(3x3) blocks back to the input size. Classifier: Conv1d over
the latent axis with mu, sigma, z as its three input channels, ReLU, global
average pooling, one dense layer (softmax in the loss); with 16 filters and 4
classes it has the paper's 228 parameters.

At inference z = mu (the posterior mean), so predictions are deterministic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VAE(nn.Module):
    def __init__(self, height: int, width: int, channels: tuple[int, ...], latent: int):
        super().__init__()
        if height % 8 or width % 8:
            raise ValueError(f"input {width}x{height} must be divisible by 8 (three 2x pools)")
        layers, previous = [], 1
        for out in channels:
            layers += [nn.Conv2d(previous, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            previous = out
        self.convs = nn.Sequential(*layers)
        self.grid = (channels[-1], height // 8, width // 8)
        flat = channels[-1] * (height // 8) * (width // 8)
        self.fc_mu = nn.Linear(flat, latent)
        self.fc_logvar = nn.Linear(flat, latent)
        self.fc_decode = nn.Linear(latent, flat)
        ups, previous = [], channels[-1]
        for out in (*reversed(channels[:-1]), channels[0]):
            ups += [nn.Upsample(scale_factor=2), nn.ConvTranspose2d(previous, out, 3, padding=1), nn.ReLU()]
            previous = out
        self.deconvs = nn.Sequential(*ups, nn.Conv2d(previous, 1, 3, padding=1))
        self.latent = latent

    def last_conv(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of the encoder's last convolution (after ReLU, before its pool): the CAM layer."""
        return self.convs[:-1](x)

    def encode_from_last_conv(self, acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = self.convs[-1](acts).flatten(1)
        return self.fc_mu(flat), self.fc_logvar(flat)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_from_last_conv(self.last_conv(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.deconvs(self.fc_decode(z).view(-1, *self.grid)))

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar

    def dense_weights(self) -> list[torch.Tensor]:
        return [self.fc_mu.weight, self.fc_logvar.weight, self.fc_decode.weight]


def vae_loss(model: nn.Module, batch: tuple, l1: float = 1e-5, l2: float = 1e-4) -> torch.Tensor:
    """Reconstruction (binary cross-entropy, summed over pixels) + KL, per image;
    plus L1/L2 penalties on the dense layers (MODELS.md)."""
    (x,) = batch[:1]
    recon, mu, logvar = model(x)
    core = model.module if hasattr(model, "module") else model
    reconstruction = F.binary_cross_entropy(recon.float(), x.float().clamp(0, 1), reduction="sum") / len(x)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
    penalty = sum(l1 * w.abs().sum() + l2 * w.pow(2).sum() for w in core.dense_weights())
    return reconstruction + kl + penalty


def latent_features(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(N, latent) -> (N, 3, latent): [mu, sigma, z] with z = mu."""
    return torch.stack([mu, torch.exp(0.5 * logvar), mu], dim=1)


class LatentClassifier(nn.Module):
    """The paper's classifier pools over the latent axis, which makes it blind to which latent
    dimension carries what (on MIAS density it learnt little); `flatten=latent` keeps the
    Conv1d but reads every position (the lite0 preset's choice)."""

    def __init__(self, classes: int, filters: int = 16, flatten: int | None = None):
        super().__init__()
        self.conv = nn.Conv1d(3, filters, kernel_size=3)
        self.flatten = flatten
        self.fc = nn.Linear(filters * (flatten - 2) if flatten else filters, classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps = F.relu(_conv1d_by_slices(features, self.conv))
        return self.fc(maps.flatten(1) if self.flatten else maps.mean(dim=2))


class LiteVAE(nn.Module):
    """The VAE with ImageNet EfficientNet-Lite0 as its convolutional encoder (frozen): the
    stages' pooled features (784) -> dense -> mean and log-variance of the latent; the decoder
    (dense, reshape, two upsampling ConvTranspose2d) reconstructs the breast at 40x32. Same
    interface as `VAE`; `core` is the trainable part, trained on cached pooled features."""

    def __init__(self, latent: int = 64, reconstruction: tuple[int, int] = (40, 32)):
        super().__init__()
        from mammodesk_train.models.fusion import Lite0Trunk

        self.trunk = Lite0Trunk(3)
        self.trunk.requires_grad_(False)
        features = sum(self.trunk.block_channels)
        self.core = nn.ModuleDict({
            "norm": nn.BatchNorm1d(features, affine=False),
            "encoder": nn.Sequential(nn.Linear(features, 256), nn.ReLU()),
            "mu": nn.Linear(256, latent), "logvar": nn.Linear(256, latent),
            "decoder": nn.Sequential(nn.Linear(latent, 16 * (reconstruction[0] // 4) * (reconstruction[1] // 4)),
                                     nn.ReLU()),
            "deconvs": nn.Sequential(nn.Upsample(scale_factor=2), nn.ConvTranspose2d(16, 8, 3, padding=1), nn.ReLU(),
                                     nn.Upsample(scale_factor=2), nn.ConvTranspose2d(8, 1, 3, padding=1)),
        })
        self.latent, self.reconstruction = latent, reconstruction

    def train(self, mode: bool = True):
        super().train(mode)
        self.trunk.eval()  # frozen: ImageNet BatchNorm statistics
        return self

    def last_conv(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.trunk.blocks(x)

    def pooled(self, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([a.mean(dim=(2, 3)) for a in acts.values()], dim=1)

    def encode_pooled(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.core["encoder"](self.core["norm"](pooled))
        return self.core["mu"](hidden), self.core["logvar"](hidden)

    def encode_from_last_conv(self, acts) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_pooled(self.pooled(acts))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_from_last_conv(self.last_conv(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        rows, cols = self.reconstruction
        grid = self.core["decoder"](z).view(-1, 16, rows // 4, cols // 4)
        return torch.sigmoid(self.core["deconvs"](grid))

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar


def lite_vae_loss(vae: LiteVAE, aux: "LatentClassifier", beta: float, supervision: float):
    """The LossFn on (pooled features, low-resolution image, label): reconstruction + beta x KL,
    plus `supervision` x the cross entropy of an auxiliary latent classifier, so the latent
    keeps what the labels need (the unsupervised latent alone lost to the plain baseline)."""

    def loss(module: nn.Module, batch: tuple) -> torch.Tensor:
        pooled, target, labels = batch
        mu, logvar = vae.encode_pooled(pooled)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = vae.decode(z)
        reconstruction = F.binary_cross_entropy(recon, target.clamp(0, 1), reduction="sum") / len(pooled)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(pooled)
        return reconstruction + beta * kl + supervision * F.cross_entropy(aux(latent_features(mu, logvar)), labels)

    return loss


def _conv1d_by_slices(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """The same valid, stride-1 convolution as `conv(x)`, written as shifted slices
    and an einsum: Grad-CAM's in-graph backward then needs no convolution_backward,
    which the ONNX exporter cannot translate."""
    k = conv.kernel_size[0]
    length = x.shape[2] - k + 1
    windows = torch.stack([x[:, :, i:i + length] for i in range(k)], dim=-1)  # N, C, L', k
    return torch.einsum("nclk,fck->nfl", windows, conv.weight) + conv.bias[None, :, None]


class VaeCnnHead(nn.Module):
    """From the encoder's last conv activations to class logits (for export with CAMs)."""

    def __init__(self, vae: VAE, classifier: LatentClassifier):
        super().__init__()
        self.vae, self.classifier = vae, classifier

    def forward(self, acts: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.vae.encode_from_last_conv(acts)
        return self.classifier(latent_features(mu, logvar))


class VaeLatentMean(nn.Module):
    """From the encoder's last conv activations to the latent mean mu (the embedding output)."""

    def __init__(self, vae: VAE):
        super().__init__()
        self.vae = vae

    def forward(self, acts: torch.Tensor) -> torch.Tensor:
        return self.vae.encode_from_last_conv(acts)[0]


class VaeCnnTrunk(nn.Module):
    def __init__(self, vae: VAE):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.last_conv(x)


def classifier_loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    features, labels = batch
    return F.cross_entropy(model(features), labels)
