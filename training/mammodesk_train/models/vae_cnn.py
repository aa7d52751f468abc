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
    def __init__(self, classes: int, filters: int = 16):
        super().__init__()
        self.conv = nn.Conv1d(3, filters, kernel_size=3)
        self.fc = nn.Linear(filters, classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(_conv1d_by_slices(features, self.conv)).mean(dim=2))


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
