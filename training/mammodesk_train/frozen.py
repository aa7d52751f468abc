"""Training on a frozen trunk: the trunk's features are computed once per
sample and reused by every fold, and only the head learns. The trunk is fixed
(pretrained, never updated) and never sees a label, so sharing its features
across folds leaks nothing; the head of each fold sees only that fold's
training samples. On two CPU cores this is what makes ImageNet starts usable:
a head trains in seconds on features that took a minute to compute once."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from mammodesk_train.engine import FitConfig, fit


def dihedral(array: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 rotations/reflections of a (C, H, W) array: k % 4 quarter turns, mirrored if k >= 4."""
    out = np.rot90(array, k % 4, axes=(1, 2))
    return np.ascontiguousarray(out[:, :, ::-1] if k >= 4 else out)


@torch.no_grad()
def embed(features: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray, device: torch.device,
          batch: int = 128) -> np.ndarray:
    """features(x) for a (N, C, H, W) array, `batch` samples at a time, as float32 numpy."""
    out = [features(torch.from_numpy(np.ascontiguousarray(x[i:i + batch])).to(device)).float().cpu()
           for i in range(0, len(x), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def balanced_weights(labels: np.ndarray, classes: int) -> torch.Tensor:
    """Class weights n / (classes * n_c), as scikit-learn's class_weight="balanced"."""
    counts = np.bincount(labels, minlength=classes).clip(min=1)
    return torch.tensor(len(labels) / (classes * counts), dtype=torch.float32)


def fit_head(head: nn.Module, features: np.ndarray, labels: np.ndarray, classes: int, config: FitConfig, *,
             device: torch.device, out_dir: Path | None, name: str, progress: bool) -> nn.Module:
    """Train `head` (features -> logits) on precomputed features with class-balanced cross entropy
    (binary cross entropy when the head has one sigmoid unit for two classes)."""
    weights = balanced_weights(labels, classes).to(device)

    def loss(model: nn.Module, batch: tuple) -> torch.Tensor:
        x, y = batch
        logits = model(x)
        if logits.shape[1] == 1:
            return nn.functional.binary_cross_entropy_with_logits(logits[:, 0], y.float(), weight=weights[y])
        return nn.functional.cross_entropy(logits, y, weight=weights)

    data = TensorDataset(torch.from_numpy(features.astype(np.float32)), torch.from_numpy(labels.astype(np.int64)))
    fit(head, loss, data, replace(config, channels_last=False), device=device, out_dir=out_dir, name=name,
        progress=progress)
    return head.cpu().eval()


class FeatureCache:
    """Trunk features keyed by what they were computed from: the sample set (held, so that its id
    cannot be reused by another object), the frozen weights that computed them, and the kind of
    view. CV folds and the final fit on one pretrained trunk compute them once; a trunk that differs
    per fold (a random start seeded by the fold) computes its own."""

    def __init__(self) -> None:
        self._store: dict[tuple, tuple[object, np.ndarray]] = {}

    def get(self, samples: object, model: nn.Module, kind: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
        key = (id(samples), frozen_digest(model), kind)
        entry = self._store.get(key)
        if entry is None or entry[0] is not samples:
            entry = self._store[key] = (samples, compute())
        return entry[1]


def frozen_digest(model: nn.Module) -> str:
    """SHA-256 of the parameters that do not train (the frozen trunk)."""
    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            digest.update(name.encode())
            digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
