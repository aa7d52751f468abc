"""Fine-tuning the reader's trunk: the second step of Shen et al. 2019, whose end-to-end training of the
whole-image network gave their AUC 0.88 where frozen features give less. The last `stages` of the five
kept trunk stages are trained with the patch classifier, the earlier ones stay frozen (as do every
BatchNorm's statistics, and stochastic depth is off, so that small and sharded batches train alike).

Cheap by construction: what the frozen stages make of each image (both readings, with the flipped one) is
computed once and kept on disk, float16, memory-mapped (`early_maps`), so a fit runs the trained stages
only; each tuned trunk's features of every image are kept the same way beside its weights (`tuned_features`),
so memory does not grow with the images. The fit is the engine's (`engine.fit`): mixed precision and channels-last on CUDA, and
DistributedDataParallel when launched by torchrun (the global batch split over the ranks).

What stays honest, and what does not: `tuned_data` fine-tunes on one outer training fold only, starting
from the head the frozen pass chose in that fold's inner CV, and returns every image's features as the
tuned trunk reads them, so no outer test image or label reaches a fit that scores it. The inner folds that
then choose the fold's head setting and location window, and fit its bilateral weights and exam rule, read
features tuned on their held-out images' labels too: their out-of-fold logits are optimistic and may sit
on another scale than the outer head's, so those choices can be worse than the frozen reader's (the
shipped model's choice likewise). The reported figures stay out of fold.

The cell loss is averaged per image (each image's known cells weigh alike, and a sharded batch gives the
one-process mean); the frozen head fit averages over every known cell of its batch instead."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from mammodesk_train.backbones.imagenet import lite0_input
from mammodesk_train.progress import Progress
from mammodesk_train.reader.cache import Rows
from mammodesk_train.reader.data import ReaderData, read_input
from mammodesk_train.reader.fit import FINDING_WEIGHT, Head, Schedule, Setting, choose, fit_head
from mammodesk_train.reader.model import STAGES, WholeImageReader, head_from_standardised, top_k_mean


@dataclass(frozen=True)
class FineTune:
    stages: int = 2  # the last trunk stages trained (of the STAGES kept); the earlier ones stay frozen
    epochs: int = 4
    lr: float = 1e-4
    batch: int = 8  # images per step, over every rank together
    weight_decay: float = 1e-5
    optimizer: str = "adamw"  # or sgd (with momentum): the DDP test's, whose steps do not amplify rounding
    amp: bool = True  # mixed precision on CUDA (the engine uses fp32 on the CPU)
    shuffle: bool = True  # off: one process and several ranks see the same global batches (the DDP test)

    def __post_init__(self) -> None:
        if not 1 <= self.stages <= STAGES - 1:
            raise ValueError(f"fine-tuning trains 1 to {STAGES - 1} of the {STAGES} trunk stages, not {self.stages}")


class EarlyMaps:
    """What the frozen stages make of every image: N x readings x C x h x w, float16, on disk."""

    def __init__(self, array: np.ndarray, key: str) -> None:
        self.array, self.key = array, key

    def __len__(self) -> int:
        return len(self.array)

    def get(self, image: int, reading: int) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.array[image, reading], dtype=np.float32))


def frozen_part(reader: WholeImageReader, tune: FineTune) -> nn.Module:
    stages = reader.stages[:STAGES - tune.stages]
    return nn.Sequential(reader.stem, stages).eval()


def early_maps(records: list, spec, reader: WholeImageReader, tune: FineTune, data: ReaderData, folder: Path,
               progress: bool = True) -> EarlyMaps:
    """Every image through the spec and the frozen stages, once; a killed pass continues where it stopped
    (the rows done are counted in a file written after they are flushed)."""
    readings = 2 if data.flipped is not None else 1
    key = hashlib.sha256(json.dumps({"features": data.provenance, "frozen_stages": STAGES - tune.stages,
                                     "readings": readings}).encode()).hexdigest()[:20]
    folder.mkdir(parents=True, exist_ok=True)
    path, done_file = folder / f"early-{key}.npy", folder / f"early-{key}.done"
    frozen = frozen_part(reader, tune)
    done = int(done_file.read_text()) if done_file.is_file() and path.is_file() else 0
    array = None if not done else np.load(path, mmap_mode="r+")
    counter = Progress(len(records) - done, "reading images through the frozen stages") if progress and \
        done < len(records) else None
    where = next(frozen.parameters()).device
    for i in range(done, len(records)):
        x = read_input(records[i], spec)[2].to(where)
        with torch.no_grad():
            maps = [frozen(lite0_input(x))[0]]
            if readings == 2:
                maps.append(frozen(lite0_input(torch.flip(x, dims=[2])))[0])
        if array is None:
            array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16,
                                              shape=(len(records), readings, *maps[0].shape))
        array[i] = torch.stack(maps).cpu().numpy().astype(np.float16)
        if i % 16 == 15 or i == len(records) - 1:
            array.flush()
            done_file.write_text(str(i + 1))
        if counter:
            counter.step()
    return EarlyMaps(np.load(path, mmap_mode="r"), key)


class TunedPart(nn.Module):
    """The trained part: the last stages and the patch classifier as 1x1 convolutions."""

    def __init__(self, reader: WholeImageReader, tune: FineTune, head: nn.Module, k: int) -> None:
        super().__init__()
        self.stages = copy.deepcopy(reader.stages[STAGES - tune.stages:])
        self.head = copy.deepcopy(head)
        self.k = k
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.requires_grad_(False)
                module.bias.requires_grad_(False)

    def train(self, mode: bool = True) -> "TunedPart":
        """The stages stay in eval mode while they learn: BatchNorm keeps its ImageNet statistics (batches of
        a few breasts would ruin them) and the blocks' stochastic depth is off, so that an image's answer
        never depends on its batch or rank."""
        super().train(mode)
        self.stages.eval()
        return self

    def forward(self, early: torch.Tensor) -> torch.Tensor:
        """N x C x h x w (the frozen stages' maps) -> N x cells patch logits. The head runs in float32 under
        mixed precision: the standardisation folded into its first layer cancels large means."""
        features = self.stages(early)
        with torch.autocast(features.device.type, enabled=False):
            return self.head(features.float())[:, 0].flatten(1)


class _Rows(Dataset):
    """Row j: reading j // n of image index[j % n], with its cells in that reading's frame."""

    def __init__(self, maps: EarlyMaps, data: ReaderData, index: np.ndarray) -> None:
        self.maps, self.data, self.index = maps, data, index
        self.readings = maps.array.shape[1]
        self.shape = data.map_shape

    def __len__(self) -> int:
        return len(self.index) * self.readings

    def __getitem__(self, j: int):
        reading, image = divmod(j, len(self.index))
        i = int(self.index[image])
        breast, finding = self.data.breast[i].view(self.shape), self.data.finding[i].view(self.shape)
        if reading == 1:  # the flipped reading's map rows run the other way
            breast, finding = breast.flip(0), finding.flip(0)
        return (self.maps.get(i, reading), breast.flatten(), finding.flatten(),
                torch.tensor(float(self.data.y[i])))


def _loss(setting: Setting, balance: float):
    """The head fit's loss (`fit._fit_heads`) for one setting: pooled image BCE (abnormal images weighted to
    balance), plus the cell loss on known cells (every breast cell of a normal image, the finding cells),
    averaged per image first."""
    def loss(model: TunedPart, batch: tuple) -> torch.Tensor:
        early, breast, finding, y = batch
        patch = model(early).float()
        image = top_k_mean(patch, breast, setting.k)  # `model` may be its DDP wrapper
        total = F.binary_cross_entropy_with_logits(image, y, pos_weight=torch.tensor(balance, device=y.device))
        if setting.cell_weight > 0:  # per image, then over the batch: a sharded batch gives the same mean
            known = (breast & (y[:, None] == 0) | finding).float()
            cells = F.binary_cross_entropy_with_logits(
                patch, finding.float(), pos_weight=torch.tensor(FINDING_WEIGHT, device=y.device), reduction="none")
            total = total + setting.cell_weight * ((cells * known).sum(1) / known.sum(1).clamp(min=1.0)).mean()
        return total
    return loss


def tune(maps: EarlyMaps, data: ReaderData, index: np.ndarray, reader: WholeImageReader, head: Head,
         setting: Setting, config: FineTune, seed: int, *, device: torch.device | None = None,
         out: Path | None = None, progress: bool = False) -> TunedPart:
    """The last stages and the head trained on the images `index` (both readings), from the frozen head."""
    from mammodesk_train.engine import FitConfig, fit

    model = TunedPart(reader, config, head_from_standardised(head.net, head.mean, head.sd), setting.k)
    y = data.y[index]
    balance = float((y == 0).sum() / max(1, int(y.sum())))
    fit(model, _loss(setting, balance), _Rows(maps, data, index),
        FitConfig(epochs=config.epochs, batch_size=config.batch, lr=config.lr, optimizer=config.optimizer,
                  weight_decay=config.weight_decay, schedule="cosine", seed=seed, amp=config.amp,
                  shuffle=config.shuffle),
        device=device or torch.device("cpu"), out_dir=out, resume=out is not None, name="finetune",
        progress=progress)
    return model.cpu().eval()


@torch.no_grad()
def tuned_features(model: TunedPart, maps: EarlyMaps, folder: Path | None = None, name: str = "tuned",
                   shape: tuple[int, int] | None = None) -> tuple[torch.Tensor | Rows, torch.Tensor | Rows | None]:
    """Every image's feature map as the tuned stages read it (N x cells x C; the flipped reading's put back
    on the upright cells). With `folder` (and `shape`, cells x C): float16 files there, memory-mapped as the frozen features are
    (`cache.Rows`: memory stays flat), written once (the first rank first, under torchrun) and read back by a
    resumed run; else in memory, float32."""
    readings = maps.array.shape[1]
    where = next(model.parameters()).device

    def read(i: int, reading: int) -> torch.Tensor:
        fmap = model.stages(maps.get(i, reading)[None].to(where))[0]
        return (fmap if reading == 0 else fmap.flip(dims=[1])).flatten(1).T.cpu()

    if folder is None:
        stacked = [torch.stack([read(i, r) for i in range(len(maps))]) for r in range(readings)]
        return stacked[0], stacked[1] if readings == 2 else None
    files = [folder / f"{name}.{reading}.f16" for reading in ("upright", "flipped")[:readings]]

    def write() -> None:
        if all(f.is_file() for f in files):
            return
        for reading, path in enumerate(files):
            partial = path.with_name(f".{path.name}.partial")
            array = None
            for i in range(len(maps)):
                rows = read(i, reading).numpy().astype(np.float16)
                if array is None:
                    array = np.memmap(partial, np.float16, "w+", shape=(len(maps), *rows.shape))
                array[i] = rows
            array.flush()
            del array
            os.replace(partial, path)

    first_rank_first(write)
    opened = [Rows(path, np.arange(len(maps)), shape) for path in files]
    return opened[0], opened[1] if readings == 2 else None


def tuned_data(data: ReaderData, maps: EarlyMaps, reader: WholeImageReader, index: np.ndarray,
               settings: list[Setting], schedule: Schedule, config: FineTune, seed: int, *,
               keep: Path | None = None, device: torch.device | None = None,
               progress: bool = False) -> tuple[ReaderData, TunedPart]:
    """`data` with every image's features read by a trunk fine-tuned on `index` only. The start: the head
    the frozen features choose in inner CV of `index`. With `keep`, the tuned part and its starting setting
    are kept there (and a stopped fit resumed from its checkpoint) under a key of everything they depend on."""
    from mammodesk_train.app import write_atomic, write_atomic_with
    from mammodesk_train.engine import distributed
    from mammodesk_train.reader.fit import folded_head

    from mammodesk_train import __version__

    key = hashlib.sha256(json.dumps({
        "maps": maps.key, "index": index.tolist(), "y": data.y.tolist(), "groups": data.groups.tolist(),
        "findings": hashlib.sha256(data.finding.numpy().tobytes()).hexdigest(), "settings": [
            dataclasses.asdict(s) for s in settings], "schedule": dataclasses.asdict(schedule),
        "tune": dataclasses.asdict(config), "seed": seed, "code": __version__}).encode()).hexdigest()[:16]
    weights = keep / f"tuned-{key}.pt" if keep is not None else None
    chosen = weights.with_suffix(".json") if weights is not None else None
    if weights is not None and weights.is_file() and chosen.is_file():
        best = Setting(**json.loads(chosen.read_text()))
        model = TunedPart(reader, config, folded_head(data.features.shape[-1], best), best.k)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    else:
        best = choose(data, index, settings, schedule, seed)[0]
        head = fit_head(data, index, best, schedule, seed)
        if progress and distributed()[0] == 0:
            print(f"  fine-tuning the trunk's last {config.stages} stages on {len(index)} training images from "
                  f"{best.text()} ({config.epochs} epochs)", flush=True)
        model = tune(maps, data, index, reader, head, best, config, seed, device=device,
                     out=keep / f"tuning-{key}" if keep is not None else None, progress=progress)
        if weights is not None and distributed()[0] == 0:
            write_atomic_with(weights, lambda temporary: torch.save(model.state_dict(), temporary))
            write_atomic(chosen, json.dumps(dataclasses.asdict(best)).encode())
    features, flipped = tuned_features(model.eval().to(device or "cpu"), maps, keep, f"tuned-{key}.features",
                                       tuple(data.features.shape[1:]))
    model.cpu()
    return dataclasses.replace(data, features=features, flipped=flipped,
                               provenance=f"{data.provenance}/tuned-{key}"), model


class Tuning:
    """The fine-tuning of one reader run: the early maps read once (by the first rank first, under
    torchrun), then a tuned trunk per outer training fold and one on every image for the shipped model,
    each kept in `folder` and taken from there by a resumed run."""

    def __init__(self, config: FineTune, records: list, spec, reader: WholeImageReader, data: ReaderData,
                 folder: Path, device: torch.device | None = None, progress: bool = True) -> None:
        self.config, self.reader, self.data, self.folder, self.device = config, reader, data, folder, device
        self.progress = progress
        self.maps = first_rank_first(lambda: early_maps(records, spec, reader, config, data, folder, progress))

    def tuned(self, index: np.ndarray, settings: list[Setting], schedule: Schedule,
              seed: int) -> tuple[ReaderData, TunedPart]:
        return tuned_data(self.data, self.maps, self.reader, index, settings, schedule, self.config, seed,
                          keep=self.folder, device=self.device, progress=self.progress)


def first_rank_first(work):
    """`work()` on rank 0, then on the others (which then find what it wrote); once without torchrun."""
    from mammodesk_train.engine import distributed

    rank, world = distributed()
    if world > 1 and rank > 0:
        torch.distributed.barrier()
    result = work()
    if world > 1 and rank == 0:
        torch.distributed.barrier()
    return result


def into_reader(reader: WholeImageReader, model: TunedPart, config: FineTune) -> WholeImageReader:
    """A copy of the reader with the tuned stages in place of its last ones (the head is fitted afresh
    after). A copy: the frozen reader goes on starting every other fold's tuning."""
    tuned = copy.deepcopy(reader)
    tuned.stages = nn.Sequential(*tuned.stages[:STAGES - config.stages], *copy.deepcopy(model.stages))
    return tuned
