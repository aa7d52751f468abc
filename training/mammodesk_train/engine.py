"""The fit loop every family uses: seeded, AMP and channels-last on CUDA
(fp32 on CPU), warm-up + cosine or step schedules, early stopping,
checkpoints with resume, one JSON line per epoch, and DistributedDataParallel
when launched with torchrun (per-rank batch = global batch / world size)."""

from __future__ import annotations

import datetime
import gc
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from mammodesk_train.app import write_atomic_with

LossFn = Callable[[nn.Module, tuple], torch.Tensor]


@dataclass
class FitConfig:
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    optimizer: str = "adam"        # adam | adamw | rmsprop | sgd
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"     # constant | cosine | step | plateau (x gamma after `plateau_patience` flat epochs)
    warmup_epochs: int = 0
    step_size: int = 30
    gamma: float = 0.1
    plateau_patience: int = 3
    patience: int | None = None    # early stopping on validation loss
    min_lr: float = 0.0
    seed: int = 0
    shuffle: bool = True
    amp: bool = True               # CUDA only
    channels_last: bool = True     # CUDA only
    workers: int = 0


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = math.inf
    stopped_early: bool = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(requested: str = "auto") -> torch.device:
    local_rank = int(os.environ.get("LOCAL_RANK", 0))  # set by torchrun: one GPU per process
    if requested == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {requested} asked for, but torch sees no CUDA device (torch {torch.__version__}; "
                         "--device cpu, or a CUDA build of torch)")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ValueError(f"--device {requested!r}: auto, cpu or cuda")
    return torch.device(requested)


def init_distributed_from_env() -> bool:
    """Join the process group when launched by torchrun (NCCL on GPUs, gloo on CPUs)."""
    if "RANK" not in os.environ or torch.distributed.is_initialized():
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    # long: the other ranks wait at a barrier while the first reads every image once (the reader's caches)
    torch.distributed.init_process_group(backend, timeout=datetime.timedelta(hours=6))
    return True


def leave_distributed() -> None:
    """Leave the process group cleanly (no-op when not in one). Every rank waits for the others, DDP's
    reducers are freed while the group still exists, then the group goes: ranks that tear down at
    different moments otherwise abort in gloo ("terminate called without an active exception")."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    torch.distributed.barrier()
    gc.collect()  # a DistributedDataParallel wrapper left in a reference cycle must die before the group
    torch.distributed.destroy_process_group()


def distributed() -> tuple[int, int]:
    """(rank, world size); (0, 1) when not launched by torchrun."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def make_optimizer(model: nn.Module, config: FitConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                               weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


def lr_factor(config: FitConfig, epoch: int) -> float:
    """Learning-rate multiplier for `epoch` (0-based): linear warm-up, then the schedule."""
    if epoch < config.warmup_epochs:
        return (epoch + 1) / (config.warmup_epochs + 1)
    if config.schedule == "cosine":
        span = max(1, config.epochs - config.warmup_epochs)
        progress = (epoch - config.warmup_epochs) / span
        floor = config.min_lr / config.lr if config.lr else 0.0
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if config.schedule == "step":
        return config.gamma ** ((epoch - config.warmup_epochs) // config.step_size)
    return 1.0


def fit(model: nn.Module, loss_fn: LossFn, train: Dataset, config: FitConfig, *, val: Dataset | None = None,
        device: torch.device | None = None, out_dir: Path | None = None, resume: bool = False,
        name: str = "fit", progress: bool = True) -> FitResult:
    device = device or pick_device()
    rank, world = distributed()
    seed_everything(config.seed + rank)
    cuda = device.type == "cuda"
    model.to(device)
    if cuda and config.channels_last:
        model.to(memory_format=torch.channels_last)
    core = model
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    optimizer = make_optimizer(core, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_factor(config, e))
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=config.gamma,
                                                         patience=config.plateau_patience) \
        if config.schedule == "plateau" else None
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and config.amp)
    loader = _loader(train, config, shuffle=config.shuffle, rank=rank, world=world)
    val_loader = _loader(val, config, shuffle=False, rank=rank, world=world) if val is not None else None
    result = FitResult()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / f"{name}.ckpt" if out_dir else None
    start_epoch = 0
    if resume and checkpoint and checkpoint.is_file():
        start_epoch = _load_checkpoint(checkpoint, core, optimizer, scheduler, result)
    log = (out_dir / f"{name}.jsonl").open("a") if out_dir and rank == 0 else None
    stale = 0
    try:
        for epoch in range(start_epoch, config.epochs):
            _seed_epoch(loader, config.seed, epoch)
            started = time.perf_counter()
            train_loss = _run_epoch(model, loss_fn, loader, device, optimizer, scaler, cuda, config)
            val_loss = _run_epoch(model, loss_fn, val_loader, device, None, None, cuda, config) \
                if val_loader is not None else None
            entry = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                     "lr": optimizer.param_groups[0]["lr"], "seconds": round(time.perf_counter() - started, 3)}
            monitored = val_loss if val_loss is not None else train_loss
            if plateau is not None:
                plateau.step(monitored)
            else:
                scheduler.step()
            result.history.append(entry)
            improved = monitored < result.best_val_loss - 1e-7
            if improved:
                result.best_val_loss, result.best_epoch, stale = monitored, epoch + 1, 0
            else:
                stale += 1
            if log:
                log.write(json.dumps(entry) + "\n")
                log.flush()
            if progress and rank == 0:
                shown = f" val {val_loss:.4f}" if val_loss is not None else ""
                print(f"  [{name}] epoch {epoch + 1}/{config.epochs} loss {train_loss:.4f}{shown} "
                      f"({entry['seconds']:.1f}s)", file=sys.stderr, flush=True)
            if checkpoint and rank == 0:
                _save_checkpoint(checkpoint, core, optimizer, scheduler, result, epoch + 1)
            if config.patience is not None and stale >= config.patience:
                result.stopped_early = True
                break
            if config.min_lr and optimizer.param_groups[0]["lr"] < config.min_lr:
                break
    finally:
        if log:
            log.close()
    return result


def _seed_epoch(loader: DataLoader, seed: int, epoch: int) -> None:
    """Each epoch's order depends only on (seed, epoch), so a resumed run replays it exactly."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    elif loader.generator is not None:
        loader.generator.manual_seed(seed * 100_003 + epoch)


def _loader(data: Dataset, config: FitConfig, *, shuffle: bool, rank: int, world: int) -> DataLoader:
    batch = max(1, config.batch_size // world)
    generator = torch.Generator().manual_seed(config.seed)
    if world > 1:
        sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=shuffle, seed=config.seed)
        return DataLoader(data, batch_size=batch, sampler=sampler, num_workers=config.workers)
    return DataLoader(data, batch_size=batch, shuffle=shuffle, generator=generator, num_workers=config.workers)


def _run_epoch(model, loss_fn, loader, device, optimizer, scaler, cuda, config) -> float:
    training = optimizer is not None
    model.train(training)
    total, count = 0.0, 0
    with torch.set_grad_enabled(training):
        for batch in _progress(loader, training):
            batch = tuple(t.to(device, non_blocking=True) for t in batch)
            if cuda and config.channels_last and batch[0].dim() == 4:
                batch = (batch[0].contiguous(memory_format=torch.channels_last), *batch[1:])
            with torch.autocast("cuda", enabled=cuda and config.amp):
                loss = loss_fn(model, batch)
            if training:
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            total += float(loss.detach()) * len(batch[0])
            count += len(batch[0])
    stats = torch.tensor([total, count], dtype=torch.float64)
    if distributed()[1] > 1:
        torch.distributed.all_reduce(stats)
    return float(stats[0] / max(1.0, float(stats[1])))


def _progress(loader: DataLoader, training: bool):
    """A batch progress bar on an interactive terminal (tqdm); plain iteration in logs and CI."""
    if not (training and sys.stderr.isatty() and distributed()[0] == 0):
        return loader
    try:
        from tqdm import tqdm
    except ImportError:
        return loader
    return tqdm(loader, leave=False, unit="batch", dynamic_ncols=True)


def _save_checkpoint(path: Path, model, optimizer, scheduler, result: FitResult, epoch: int) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "epoch": epoch, "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
             "history": json.dumps(result.history), "torch_rng": torch.get_rng_state()}
    write_atomic_with(path, lambda temporary: torch.save(state, temporary))


def _load_checkpoint(path: Path, model, optimizer, scheduler, result: FitResult) -> int:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    result.history = json.loads(state["history"])
    result.best_epoch, result.best_val_loss = int(state["best_epoch"]), float(state["best_val_loss"])
    return int(state["epoch"])


def cross_entropy_loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    """The LossFn of plain classifiers: (images, class indices) -> mean cross entropy."""
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


@torch.no_grad()
def batched_logits(model: nn.Module, x: np.ndarray, device: torch.device, batch: int = 64) -> torch.Tensor:
    """Eval-mode logits of a numpy batch, `batch` samples at a time; the model ends on the CPU."""
    model.eval().to(device)
    logits = torch.cat([model(torch.from_numpy(x[i:i + batch]).to(device)).cpu() for i in range(0, len(x), batch)])
    model.cpu()
    return logits

