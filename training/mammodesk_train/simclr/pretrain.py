"""Contrastive pretraining and the linear probe.

Large batches on small machines: NT-Xent needs every view of the batch at
once (the other views are the negatives), so plain gradient accumulation
would shrink the set of negatives. `contrastive_step` caches gradients
instead (Gao et al. 2021, "GradCache"): embed the whole batch without a
graph, take the loss's gradient with respect to the embeddings, then
re-embed micro-batch by micro-batch with a graph and back-propagate those
cached gradients - the full-batch gradient at micro-batch memory (BatchNorm
still normalises per micro-batch)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from mammodesk_train.engine import seed_everything
from mammodesk_train.simclr.augment import AugmentConfig, TwoViews
from mammodesk_train.simclr.lars import LARS, warmup_cosine
from mammodesk_train.simclr.loss import nt_xent
from mammodesk_train.simclr.model import LinearProbe, SimCLRNet


@dataclass(frozen=True)
class PretrainConfig:
    epochs: int = 60
    batch_size: int = 128  # images; 2x as many views
    micro_batch: int | None = None  # embed this many views at a time (None: the whole batch)
    lr: float = 0.3  # LARS lr: lr * batch / 256 ("linear", the paper's main setting) or lr * sqrt(batch) ("sqrt")
    lr_scaling: str = "linear"  # the paper's appendix: sqrt (0.075 * sqrt(batch)) is better for small batches
    weight_decay: float = 1e-6
    temperature: float = 0.5
    warmup_fraction: float = 0.1


def contrastive_step(model: SimCLRNet, view1: torch.Tensor, view2: torch.Tensor, temperature: float,
                     micro_batch: int | None) -> float:
    """Gradients of NT-Xent over the whole batch into `model` (optimizer step not included)."""
    views = torch.cat([view1, view2])
    n = len(view1)
    if micro_batch is None or micro_batch >= len(views):
        z = model(views)
        loss = nt_xent(z[:n], z[n:], temperature)
        loss.backward()
        return float(loss.detach())
    with torch.no_grad():
        z = torch.cat([model(chunk) for chunk in views.split(micro_batch)])
    z.requires_grad_(True)
    loss = nt_xent(z[:n], z[n:], temperature)
    (cached,) = torch.autograd.grad(loss, z)
    for chunk, grad in zip(views.split(micro_batch), cached.split(micro_batch)):
        model(chunk).backward(grad)
    return float(loss.detach())


def pretrain(images: np.ndarray, config: PretrainConfig, *, width: float, seed: int, device: torch.device,
             augment: AugmentConfig = AugmentConfig(), log: Path | None = None, progress: bool = True,
             architecture: str = "resnet50v2", small_input: bool = True) -> tuple[SimCLRNet, list[dict]]:
    """SimCLR on unlabelled images (N x C x H x W in [0, 1]); returns the network and per-epoch log."""
    seed_everything(seed)
    model = SimCLRNet(images.shape[1], width, architecture=architecture, small_input=small_input).to(device)
    batch = min(config.batch_size, len(images))
    loader = DataLoader(TwoViews(torch.from_numpy(images), augment), batch_size=batch, shuffle=True,
                        drop_last=True, generator=torch.Generator().manual_seed(seed))
    lr = config.lr * (batch / 256 if config.lr_scaling == "linear" else batch ** 0.5)
    optimizer = LARS(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    total = config.epochs * len(loader)
    warmup = max(1, round(config.warmup_fraction * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, total, warmup))
    history = []
    for epoch in range(config.epochs):
        started, losses, seen = time.perf_counter(), [], 0
        model.train()
        for view1, view2 in loader:
            optimizer.zero_grad(set_to_none=True)
            losses.append(contrastive_step(model, view1.to(device), view2.to(device), config.temperature,
                                           config.micro_batch))
            optimizer.step()
            schedule.step()
            seen += 2 * len(view1)
        seconds = time.perf_counter() - started
        entry = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "views_per_s": seen / max(seconds, 1e-9),
                 "lr": optimizer.param_groups[0]["lr"], "seconds": round(seconds, 3)}
        history.append(entry)
        if progress:
            print(f"  [simclr] epoch {epoch + 1}/{config.epochs} NT-Xent {entry['loss']:.4f} "
                  f"({entry['views_per_s']:.0f} views/s)", file=sys.stderr, flush=True)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n".join(json.dumps(e) for e in history) + "\n")
    return model.cpu().eval(), history


@dataclass(frozen=True)
class ProbeConfig:
    epochs: int = 40
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 64


def train_probe(encoder, x: np.ndarray, y: np.ndarray, classes: int, config: ProbeConfig, *, seed: int,
                device: torch.device) -> LinearProbe:
    """Linear classifier on the frozen encoder: SGD with momentum, cross entropy (class-balanced)."""
    seed_everything(seed)
    probe = LinearProbe(encoder, classes).to(device)
    probe.encoder.requires_grad_(False).eval()
    with torch.no_grad():
        features = torch.cat([probe.encoder(torch.from_numpy(x[i:i + 128]).to(device)).mean(dim=(2, 3))
                              for i in range(0, len(x), 128)])
    probe.mean.copy_(features.mean(dim=0))
    probe.scale.copy_(1.0 / (features.std(dim=0) + 1e-6))
    standard = (features - probe.mean) * probe.scale
    targets = torch.from_numpy(y).to(device)
    counts = torch.bincount(targets, minlength=classes).clamp(min=1).float()
    weights = counts.sum() / (classes * counts)
    optimizer = torch.optim.SGD(probe.fc.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(config.epochs):
        order = torch.randperm(len(y), generator=generator).to(device)
        for start in range(0, len(y), config.batch_size):
            index = order[start:start + config.batch_size]
            loss = F.cross_entropy(probe.fc(standard[index]), targets[index], weight=weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return probe.cpu().eval()


def save_backbone(path: Path, model: SimCLRNet, about: dict) -> Path:
    """The encoder's state dict (plain tensors: loads with weights_only=True) and a JSON
    description beside it (architecture, input, data, epochs, loss curve)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.encoder.state_dict().items()}, path)
    path.with_suffix(".json").write_text(json.dumps(about, indent=2))
    return path
