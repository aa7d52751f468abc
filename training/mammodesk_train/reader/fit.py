"""Fitting the reader's patch classifier on frozen trunk features, and choosing
its settings honestly.

Loss per image batch: binary cross entropy of the pooled image logit against
the image label (MIL over breast cells), plus, with `cell_weight` > 0, the
patch classifier's own loss on the cells that are known: finding cells
positive, every breast cell of a normal image negative (cells of abnormal
images away from their located findings are not known, so not used).

Settings (`Setting`: k, weight decay, cell weight) are chosen by inner
patient-level CV on the outer training fold only (`choose`), so the outer test
fold never influences them; `nested_cv` reports the outer folds. The weights
comparing the two breasts are fitted on the chosen setting's inner out-of-fold
logits of the training fold, and applied to the outer head's test logits."""

from __future__ import annotations

import hashlib

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from mammodesk_train.app import location_cells, peak_centre  # the app's location rule

from mammodesk_train import kept
from mammodesk_train.reader.bilateral import compared_logits, fit_bilateral
from mammodesk_train.reader.data import ReaderData
from mammodesk_train.reader.levels import exam_logits, exam_table, fit_exam_rule
from mammodesk_train.reader.model import NOT_BREAST, top_k_mean
from mammodesk_train.splits import patient_kfold

FINDING_WEIGHT = 20.0  # finding cells are ~1 % of the known cells
LOCATION_WINDOWS = (1, 2, 3)  # the location is the best block of this many cells a side: chosen in inner folds


@dataclass(frozen=True)
class Setting:
    k: int  # breast cells pooled into the image logit
    weight_decay: float
    cell_weight: float  # weight of the patch classifier's own loss (0: image labels only)
    hidden: int = 0  # 0: a linear patch classifier; else one hidden ReLU layer of this width

    def text(self) -> str:
        head = f", hidden layer {self.hidden}" if self.hidden else ""
        return f"k={self.k}, weight decay {self.weight_decay:g}, cell loss weight {self.cell_weight:g}{head}"


@dataclass(frozen=True)
class Schedule:
    epochs: int = 30
    lr: float = 3e-3
    batch: int = 32


DROPOUT = 0.2  # on the hidden layer while training (a patch classifier with a hidden layer)


def patch_classifier(channels: int, hidden: int) -> torch.nn.Module:
    """Per cell: linear (zero start) or one hidden ReLU layer, on standardised features."""
    if not hidden:
        linear = torch.nn.Linear(channels, 1)
        torch.nn.init.zeros_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
        return linear
    return torch.nn.Sequential(torch.nn.Linear(channels, hidden), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT),
                               torch.nn.Linear(hidden, 1))


def folded_head(channels: int, setting: Setting) -> torch.nn.Module:
    """An empty head of the shape `head_from_standardised` gives a fitted one of `setting` (1x1
    convolutions), for kept weights to be loaded into."""
    from mammodesk_train.reader.model import head_from_standardised

    return head_from_standardised(patch_classifier(channels, setting.hidden), torch.zeros(channels),
                                  torch.ones(channels))


@dataclass
class Head:
    """A patch classifier on standardised features ((f - mean) / sd)."""

    net: torch.nn.Module  # N x cells x C -> N x cells x 1, in eval mode
    mean: torch.Tensor  # C
    sd: torch.Tensor  # C
    k: int

    def patch_logits(self, features: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net((features - self.mean) / self.sd)[..., 0]

    def image_logits(self, features: torch.Tensor, breast: torch.Tensor) -> np.ndarray:
        return pool(self.patch_logits(features), breast, self.k).numpy()


pool = top_k_mean  # the model's own pooling (`WholeImageReader.pool`), on N x cells logits


CHUNK = 256  # images read from disk at a time


def in_chunks(index: np.ndarray):
    """`index` a CHUNK of images at a time: the feature maps stay on disk, a chunk is read at once."""
    for start in range(0, len(index), CHUNK):
        yield index[start:start + CHUNK]


def reader_logits(head: Head, data: ReaderData, index: np.ndarray) -> np.ndarray:
    """The reader's image logits of `index`, as the exported model computes them (`WholeImageReader.read`):
    with the flipped reading, the mean of the upright and the flipped pooled logits."""
    out = []
    for part in in_chunks(index):
        logits = head.image_logits(data.features[part], data.breast[part])
        out.append(logits if data.flipped is None else (logits + head.image_logits(data.flipped[part],
                                                                                   data.breast[part])) / 2)
    return np.concatenate(out) if out else np.zeros(0)


def reader_patch_logits(head: Head, data: ReaderData, index: np.ndarray) -> torch.Tensor:
    """The reader's map (N x cells): with the flipped reading, the mean of both maps."""
    out = []
    for part in in_chunks(index):
        logits = head.patch_logits(data.features[part])
        out.append(logits if data.flipped is None else (logits + head.patch_logits(data.flipped[part])) / 2)
    return torch.cat(out) if out else torch.zeros(0, data.breast.shape[1])


def fit_head(data: ReaderData, index: np.ndarray, setting: Setting, schedule: Schedule, seed: int) -> Head:
    return fit_heads(data, index, [setting], schedule, seed)[0]


def fit_heads(data: ReaderData, index: np.ndarray, settings: list[Setting], schedule: Schedule,
              seed: int) -> list[Head]:
    """One head per setting on the images `index`, fitted together: each as `fit_head` alone would fit it.

    Every setting's fit alone starts from the same seed: the same batches, the same start of a hidden layer
    and the same dropout masks (its only draws). Fitted together they share the rows, one product of the
    rows with every setting's first layer, and one dropout mask per batch; each setting keeps its own
    parameters, weight decay, pooling and loss, and the sum of the losses gives each its own gradient. So the
    heads equal the heads fitted one by one, up to rounding (`tests/test_reader.py`), at a fraction of the
    cost. Only the cells a loss sees (breast and finding cells) pass through the heads, and the rows are
    read from the feature files a batch at a time: memory does not grow with the images."""
    widths = sorted({s.hidden for s in settings} - {0}) or [0]
    heads: dict[int, Head] = {}
    for width in widths:  # one dropout stream per hidden width; the linear settings go with the first
        group = [j for j, s in enumerate(settings) if s.hidden == width or (not s.hidden and width == widths[0])]
        with torch.random.fork_rng():  # the hidden layer's start and dropout, repeatable, the caller's RNG untouched
            heads.update(zip(group, _fit_heads(data, index, [settings[j] for j in group], schedule, seed)))
    return [heads[j] for j in range(len(settings))]


def _fit_heads(data: ReaderData, index: np.ndarray, settings: list[Setting], schedule: Schedule,
               seed: int) -> list[Head]:
    generator = torch.Generator().manual_seed(seed)
    readings = [data.features] if data.flipped is None else [data.features, data.flipped]
    # training rows: each image once per reading (upright, and read upside down as augmentation)
    breast, finding = torch.cat([data.breast[index]] * len(readings)), torch.cat([data.finding[index]] * len(readings))
    y = torch.as_tensor(np.tile(data.y[index], len(readings)), dtype=torch.float32)
    mean, sd = standardisation(readings, index)
    used = breast | finding  # the cells a loss sees: only these pass through the heads
    known = breast & (y[:, None] == 0) | finding
    nets = []
    for setting in settings:  # each net's start as its own fit's: from the seed
        torch.manual_seed(seed)
        nets.append(patch_classifier(len(mean), setting.hidden).train())
    hidden = sorted({s.hidden for s in settings} - {0})  # at most one width (`fit_heads`)
    if hidden:  # the global RNG where a hidden setting's own fit starts its dropout: after its start
        torch.manual_seed(seed)
        patch_classifier(len(mean), hidden[0])
    linear = [net for net, s in zip(nets, settings) if not s.hidden]
    deep = [net for net, s in zip(nets, settings) if s.hidden]
    order = [s for s in settings if not s.hidden] + [s for s in settings if s.hidden]  # the logits' columns
    ks = torch.tensor([s.k for s in order])
    cell_weights = torch.tensor([s.cell_weight for s in order])
    optimiser = torch.optim.Adam([{"params": net.parameters(), "weight_decay": s.weight_decay}
                                  for net, s in zip(nets, settings)], lr=schedule.lr)
    balance = torch.tensor(float((y == 0).sum() / max(1.0, float(y.sum()))))  # abnormal images' weight
    finding_weight = torch.tensor(FINDING_WEIGHT)
    for _ in range(schedule.epochs):
        for batch in torch.randperm(len(y), generator=generator).split(schedule.batch):
            cells = used[batch]
            rows = (training_rows(readings, index, batch)[cells] - mean) / sd  # read from disk, packed: cells x C
            weight = torch.cat([n.weight for n in linear] + [n[0].weight for n in deep])
            first = F.linear(rows, weight, torch.cat([n.bias for n in linear] + [n[0].bias for n in deep]))
            logits = first[:, :len(linear)]  # packed cells x settings, in `order`
            if deep:  # every hidden layer at once, each with the dropout its own fit would draw
                noise = torch.empty(len(rows), hidden[0]).bernoulli_(1 - DROPOUT).div_(1 - DROPOUT)
                active = first[:, len(linear):].relu().unflatten(1, (len(deep), hidden[0])) * noise[:, None]
                outputs = (active * torch.cat([n[3].weight for n in deep])).sum(2)
                logits = torch.cat([logits, outputs + torch.cat([n[3].bias for n in deep])], dim=1)
            image = torch.full((*cells.shape, len(order)), NOT_BREAST).index_put((cells,), logits)
            loss = F.binary_cross_entropy_with_logits(
                pooled(image.transpose(1, 2), breast[batch], ks), y[batch, None].expand(-1, len(order)),
                pos_weight=balance, reduction="none").mean(0).sum()
            scored = known[batch][cells]  # among the packed cells
            if scored.any() and bool((cell_weights > 0).any()):
                targets = finding[batch][cells][scored].float()[:, None].expand(-1, len(order))
                loss = loss + (cell_weights * F.binary_cross_entropy_with_logits(
                    logits[scored], targets, pos_weight=finding_weight, reduction="none").mean(0)).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return [Head(net.eval(), mean, sd, s.k) for net, s in zip(nets, settings)]


def pooled(logits: torch.Tensor, breast: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
    """B x S x cells logits -> B x S: column s pooled as `pool` with k = ks[s] (over the breast cells). One top-k
    per k, never the first k of one larger top-k: where cells tie (a linear head's zero start) the two pick
    different cells, and the heads would no longer be those fitted alone."""
    out = torch.empty(logits.shape[:2])
    for k in ks.unique().tolist():
        columns = torch.nonzero(ks == k)[:, 0]
        part = logits[:, columns]
        values = pool(part.flatten(0, 1), breast.repeat_interleave(len(columns), dim=0), int(k))
        out[:, columns] = values.view(len(part), len(columns))
    return out


def training_rows(readings: list, index: np.ndarray, batch: torch.Tensor) -> torch.Tensor:
    """Feature maps (B x cells x C, float32) of training rows `batch`: row j is reading j // len(index) of
    image index[j % len(index)]."""
    batch = batch.numpy()
    reading, image = batch // len(index), index[batch % len(index)]
    if len(readings) == 1:
        return readings[0][image]
    out = torch.empty(len(batch), *readings[0].shape[1:])
    for r, source in enumerate(readings):
        chosen = np.flatnonzero(reading == r)
        if len(chosen):
            out[chosen] = source[image[chosen]]
    return out


def standardisation(readings: list, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel over every cell of the training rows: (mean, sd + 1e-3), a chunk of images at a time (the
    rows stay on disk)."""
    total = squares = None
    count = 0
    for source in readings:
        for part in in_chunks(index):
            rows = source[part].double().flatten(0, 1)
            total = rows.sum(0) if total is None else total + rows.sum(0)
            squares = (rows * rows).sum(0) if squares is None else squares + (rows * rows).sum(0)
            count += len(rows)
    mean = total / count
    variance = (squares - count * mean * mean).clamp(min=0.0) / max(1, count - 1)
    return mean.float(), variance.sqrt().float() + 1e-3


def auc(y: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(y, scores)) if len(set(y.tolist())) == 2 else float("nan")


def choose(data: ReaderData, index: np.ndarray, settings: list[Setting], schedule: Schedule, seed: int,
           inner_folds: int = 3) -> tuple[Setting, dict[str, float], np.ndarray, int]:
    """The setting with the best mean inner-CV AUC on `index` only (patient-level folds of it), every
    setting's score, the chosen setting's inner out-of-fold image logits (over all images: NaN outside
    `index`), and the location window whose box held the most inner-fold findings for that setting (ties:
    the smaller window)."""
    inner = patient_kfold(data.y[index], data.groups[index], inner_folds, seed + 1000)
    names = [setting.text() for setting in settings]
    aucs: dict[str, list[float]] = {name: [] for name in names}
    logits = {name: np.full(len(data), np.nan) for name in names}
    box_hits = {name: {window: [] for window in LOCATION_WINDOWS} for name in names}
    for fold in inner:  # every setting's head of an inner fold fitted together: as if one by one
        test = index[fold.test]
        for name, head in zip(names, fit_heads(data, index[fold.train], settings, schedule, seed)):
            logits[name][test] = reader_logits(head, data, test)
            aucs[name].append(auc(data.y[test], logits[name][test]))
            for window, hits in box_hits[name].items():
                hits += pointing_hits(head, data, test, window)[1]
    scores = {name: float(np.nanmean(aucs[name])) for name in names}
    best = max(settings, key=lambda s: scores[s.text()])
    hits = box_hits[best.text()]
    window = max(LOCATION_WINDOWS, key=lambda w: (float(np.mean(hits[w])) if hits[w] else 0.0, -w))
    return best, scores, logits[best.text()], window


def pointing_hits(head: Head, data: ReaderData, index: np.ndarray, window: int = 1) -> tuple[list[bool], list[bool]]:
    """For each image with a located finding: (is its most suspicious breast cell a finding cell?, does the
    location box the app reports, LOCATION_MM wide around `peak_centre` with this window, hold a
    finding's centre?)."""
    cell_hits, box_hits = [], []
    half = location_cells(data.cell_mm) / 2
    logits = reader_patch_logits(head, data, index).masked_fill(~data.breast[index], NOT_BREAST)
    for row, i in enumerate(index):
        if data.located[i]:
            peak = int(logits[row].argmax())
            cell_hits.append(bool(data.finding[i][peak]))
            marks = data.breast[i] if data.tissue is None else data.tissue[i]
            py, px = peak_centre(logits[row].reshape(data.map_shape).numpy(),
                                 marks.reshape(data.map_shape).numpy(), window)
            box_hits.append(any(abs(cy - py) <= half and abs(cx - px) <= half
                                for cy, cx in data.centres[i]))
    return cell_hits, box_hits


def _outer_fold(data: ReaderData, fold, settings: list[Setting], schedule: Schedule, seed: int,
                partners: np.ndarray) -> dict:
    best, inner_scores, inner_logits, window = choose(data, fold.train, settings, schedule, seed + fold.index)
    head = fit_head(data, fold.train, best, schedule, seed + fold.index)
    everything = reader_logits(head, data, np.arange(len(data)))  # the outer head's (test ones used)
    # both breasts compared: weights fitted on the training fold's inner out-of-fold logits only
    bilateral = fit_bilateral(inner_logits, partners, data.y, fold.train)
    compared = compared_logits(bilateral, everything, partners, fold.test)
    # the exam rule: fitted on the training fold's inner out-of-fold logits only
    _, inner_exams, inner_y = exam_table(inner_logits, data.y, data.groups, data.sides, fold.train)
    rule = fit_exam_rule(inner_exams, inner_y, seed + fold.index)
    keys, test_exams, _ = exam_table(everything, data.y, data.groups, data.sides, fold.test)
    exam = dict(zip(keys, exam_logits(rule[0], test_exams))) if rule is not None else {}
    fold_hits, fold_box_hits = pointing_hits(head, data, fold.test, window)
    test = everything[fold.test]
    detail = {"fold": fold.index + 1, "auc": auc(data.y[fold.test], test),
              "chosen": asdict(best), "inner_auc": inner_scores, "location_window": window,
              "pointing": float(np.mean(fold_hits)) if fold_hits else None,
              "bilateral_auc": auc(data.y[fold.test], compared) if np.isfinite(compared).all() else None,
              "bilateral_weights": None if bilateral is None else
              {"own": bilateral.own, "contralateral": bilateral.contralateral, "bias": bilateral.bias},
              "exam_rule": None if rule is None else {**asdict(rule[0]), "chosen": rule[1]},
              "test_images": int(len(fold.test))}
    return {"oof": test.tolist(), "compared": np.asarray(compared, float).tolist(),
            "exam": {k: float(v) for k, v in exam.items()}, "hits": [bool(h) for h in fold_hits],
            "box_hits": [bool(h) for h in fold_box_hits], "detail": detail}


def _fingerprint(data: ReaderData, settings: list[Setting], schedule: Schedule, folds: int, seed: int,
                 tuning: str = "") -> str:
    """What a kept fold depends on: the images (their files and how they were read), their labels, located
    findings and patients, the settings, the schedule, the folds, the fine-tuning, this code. Anything else
    is fitted again."""
    return kept.fingerprint({
        "ids": list(data.ids), "y": data.y, "groups": data.groups, "features": data.provenance,
        "findings": hashlib.sha256(data.finding.numpy().tobytes()).hexdigest(),
        "settings": [asdict(s) for s in settings], "schedule": asdict(schedule), "folds": folds, "seed": seed,
        **({"tuning": tuning} if tuning else {})})


def nested_cv(data: ReaderData, settings: list[Setting], schedule: Schedule, folds: int, seed: int,
              progress: bool = True, checkpoints: Path | None = None, tuning=None) -> dict:
    """Outer patient-level folds; settings chosen inside each outer training fold. Returns out-of-fold
    image logits, per-fold AUCs, chosen settings, pointing hits and the folds themselves. With `checkpoints`,
    each finished outer fold is kept there and a later call on the same data and settings takes it from there
    (every fit is seeded, so a resumed run gives the same figures). With `tuning` (`finetune.Tuning`), each
    outer fold reads features of a trunk fine-tuned on its own training images."""
    from mammodesk_train.outer import FoldClock, kept_folds

    outer = patient_kfold(data.y, data.groups, folds, seed)
    oof = np.full(len(data), np.nan)
    detail = []
    hits: list[bool] = []
    box_hits: list[bool] = []
    partners = data.partners()
    compared = np.full(len(data), np.nan)
    exam_oof: dict[str, float] = {}
    key = _fingerprint(data, settings, schedule, folds, seed, repr(tuning.config) if tuning is not None else "")
    announced = not progress

    def fit_fold(fold):
        nonlocal announced
        if not announced:
            print(f"  each outer fold: {len(settings)} settings fitted together in each of 3 inner folds, then "
                  "the fold's own head", flush=True)
            announced = True
        fold_data = data if tuning is None else tuning.tuned(fold.train, settings, schedule, seed + fold.index)[0]
        return _outer_fold(fold_data, fold, settings, schedule, seed, partners)

    where = (lambda fold: checkpoints / f"seed{seed}-fold{fold.index + 1}.json") if checkpoints is not None \
        else (lambda fold: None)
    clock = FoldClock(folds)
    for fold, result, fitted in kept_folds(outer, fit_fold, where, key):
        if progress and not fitted:
            print(f"  fold {fold.index + 1}/{folds}: kept from the stopped run ({where(fold).name})", flush=True)
        oof[fold.test] = result["oof"]
        compared[fold.test] = result["compared"]
        exam_oof.update(result["exam"])
        hits += result["hits"]
        box_hits += result["box_hits"]
        detail.append(result["detail"])
        elapsed = clock.tick(fitted)
        if progress:
            best = detail[-1]
            print(f"  fold {fold.index + 1}/{folds}: chose {Setting(**best['chosen']).text()}, location window "
                  f"{best['location_window']} (inner AUC {best['inner_auc'][Setting(**best['chosen']).text()]:.3f}); "
                  f"outer AUC {best['auc']:.3f}, location box "
                  f"{np.mean(result['box_hits']) if result['box_hits'] else float('nan'):.2f}; " + elapsed, flush=True)
    return {"oof_logits": oof, "folds": outer, "detail": detail, "pointing_hits": hits, "box_hits": box_hits,
            "oof_bilateral_logits": compared, "oof_exam_logits": exam_oof}
