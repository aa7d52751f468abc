"""What the reader learns from: every image through the reader's spec once, the
frozen trunk's feature map of it, which map cells are breast, which cells hold
a located finding, the image label, the woman it belongs to, and the plain
baseline's features of the same image. Built once per run (the trunk is frozen:
its features do not change between folds), on records split later by patient."""

from __future__ import annotations

import hashlib
import os
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mammodesk_train.app import read_anatomy
from mammodesk_train.app import input_statistics
from mammodesk_train.app import tissue_cells
from mammodesk_train.app import with_assumed_spacing
from mammodesk_train.app import ImageMeta
from mammodesk_train.app import VIEW_FAMILY
from mammodesk_train.app import Geometry
from mammodesk_train.app import outline_breast
from mammodesk_train.app import PipelineSpec
from mammodesk_train.app import decode_all

from mammodesk_train import baseline
from mammodesk_train.data.sources import Record
from mammodesk_train.data.tasks import get_task
from mammodesk_train.progress import Progress
from mammodesk_train.reader.cache import Entry, FeatureCache, Rows, image_key
from mammodesk_train.reader.model import STRIDE, WholeImageReader

READS = get_task("normal_abnormal")  # what the reader learns: normal vs any abnormality, benign included


@dataclass
class ReaderData:
    ids: list[str]
    y: np.ndarray  # 0 normal, 1 abnormal (image label)
    groups: np.ndarray  # patient keys
    features: torch.Tensor | Rows  # N x cells x C: indexing gives float32 (cells row-major over the map)
    breast: torch.Tensor  # N x cells bool
    finding: torch.Tensor  # N x cells bool: cells within a located finding (its radius, at least 3/4 cell)
    located: np.ndarray  # N bool: the image has at least one located finding
    centres: list[list[tuple[float, float]]]  # per image: its located findings' centres, in map cells (row, col)
    base_features: np.ndarray  # N x F, the plain baseline's
    map_shape: tuple[int, int]
    metas: list  # the source ImageMeta of each image (domain record)
    inputs_mean_sd: np.ndarray  # N x 2: mean and sd of each processed input's breast pixels (domain record)
    sides: list  # "L", "R" or None per image (its anatomy, as the app reads it)
    view_families: list  # "CC", "MLO" or None per image
    cell_mm: float  # the side of one map cell on the breast
    flipped: torch.Tensor | Rows | None = None  # N x cells x C: each image read upside down, on the same cells
    tissue: torch.Tensor | None = None  # N x cells bool: where a mark may sit (`location.tissue_cells`)
    provenance: str = ""  # what the features were read from and how (the cache's keys): kept folds must match

    def partners(self) -> np.ndarray:
        """Per image, the index of the same woman's other breast in the same view family (-1: none)."""
        return partner_index(self.groups, self.sides, self.view_families)

    def __len__(self) -> int:
        return len(self.ids)


def partner_index(groups, sides, families) -> np.ndarray:
    """Per image, the first image of the same patient, other side, same view family (-1: none)."""
    first: dict[tuple, int] = {}
    for j in range(len(groups)):
        first.setdefault((groups[j], sides[j], families[j]), j)
    out = np.full(len(groups), -1)
    for i in range(len(groups)):
        other = {"R": "L", "L": "R"}.get(sides[i] or "")
        if other is not None and families[i] is not None:
            out[i] = first.get((groups[i], other, families[i]), -1)
    return out


def finding_cells(record: Record, geometry, map_shape: tuple[int, int],
                  input_shape: tuple[int, int]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """(h x w bool: map cells whose centre lies within a located finding of the record, at least 3/4 of a
    cell from its centre: a finding smaller than a cell still owns the cell it sits in; the findings'
    centres in map cells, (row, column))."""
    h, w = map_shape
    step_y, step_x = input_shape[0] / h, input_shape[1] / w
    yy, xx = np.meshgrid((np.arange(h) + 0.5) * step_y - 0.5, (np.arange(w) + 0.5) * step_x - 0.5, indexing="ij")
    cells = np.zeros(map_shape, bool)
    centres = []
    scale = abs(float(geometry.matrix[1, 1]))
    for finding in record.labels.located_findings:
        box = finding.shape.bbox() if hasattr(finding.shape, "bbox") else None
        if box is None:
            continue
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        radius = max(box[2] - box[0], box[3] - box[1]) / 2 * scale
        (ox, oy), = geometry.forward_points([[cx, cy]])
        cells |= (xx - ox) ** 2 + (yy - oy) ** 2 <= max(radius, 0.75 * max(step_x, step_y)) ** 2
        centres.append(((oy + 0.5) / step_y, (ox + 0.5) / step_x))
    return cells, centres


def prepare(records: list[Record], spec: PipelineSpec, reader: WholeImageReader, *, spacing_mm: float,
            flip_reading: bool = False, progress: bool = True, cache_root: Path | None = None,
            trunk: str = "frozen", device: torch.device | str = "cpu", rebuild=None,
            workers: int | None = None) -> ReaderData:
    """`spacing_mm`: what the spec resamples to (a map cell is STRIDE such pixels). `flip_reading`: also each
    image read upside down (`WholeImageReader.read`), its feature map flipped back onto the same cells.
    Each image's work is kept on disk (`cache.FeatureCache`, under `cache_root`, default the data folder's
    cache/reader-features): an image read once, by this run or an earlier one, is never read again, and the
    feature maps stay on disk (memory-mapped), so memory does not grow with them.

    `rebuild`: what builds `reader` again (a preset whose `.build()` gives the same reader: its features are
    cached under `trunk`'s name). With it, on the CPU, the images not in the cache are read by `workers`
    processes (default: one per core, at most `READERS`), each with its own copy of the reader, each image within
    `READ_LIMIT_S`; else here, one after the other. A file that cannot be read (or, in a worker, hangs its
    decoder) stops the run with its name; the images read before it stay in the cache."""
    from mammodesk_train.app import data_dir

    reader.eval().to(device)
    readings = ("upright", "flipped") if flip_reading else ("upright",)
    cache = FeatureCache(cache_root or data_dir() / "cache" / "reader-features",
                         {"trunk": trunk, "spec": spec.to_dict(),
                          "spacing_mm": spacing_mm, "flip_reading": flip_reading}, readings)
    looking = Progress(len(records), "looking for the images in the cache", "files") if progress else None
    keys: list[str] = []
    entries: list[Entry | None] = []
    for record in records:  # each file's digest first: an image in the cache is never read
        keys.append(image_key(record.path, {"assumed_spacing_mm": record.assumed_spacing_mm,
                                            "laterality": record.labels.laterality, "view": record.labels.view}))
        entries.append(cache.get(keys[-1]))
        if looking:
            looking.step()
    counter = Progress(len(records), "reading images through the trunk") if progress else None
    for _ in range(sum(entry is not None for entry in entries) if counter else 0):
        counter.step(cached=True)
    named: dict[str, list[int]] = {}  # the records naming each image not in the cache: it is read once
    for i, entry in enumerate(entries):
        if entry is None:
            named.setdefault(keys[i], []).append(i)
    with closing(_readings(records, [same[0] for same in named.values()], spec, reader, flip_reading, device,
                           rebuild, workers)) as results:
        for i, result in results:
            if isinstance(result, Exception):
                raise ValueError(f"could not read {records[i].image_id}: {result} (the images read so far stay in "
                                 "the cache: the same command goes on from there)") from result
            entry = cache.put(keys[i], *result)
            for same in named[keys[i]]:
                entries[same] = entry
                if counter:
                    counter.step()
    data = _assemble(records, entries, cache, spacing_mm, flip_reading)
    data.provenance = hashlib.sha256((cache.folder.name + "".join(keys)).encode()).hexdigest()
    return data


def _readings(records: list[Record], index: list[int], spec: PipelineSpec, reader: WholeImageReader,
              flip_reading: bool, device, rebuild, workers: int | None):
    """(i, `_read`'s result or why it failed) for each i of `index`, in order: in worker processes where
    `prepare` says so, else here. Closing it stops the workers."""
    if workers is None:
        workers = min(READERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1)
    if rebuild is not None and str(device) == "cpu" and workers > 1 and len(index) > workers:
        tasks = [(records[i], spec.to_dict(), rebuild, flip_reading) for i in index]
        with closing(decode_all(_read_task, tasks, workers=workers, timeout_s=READ_LIMIT_S)) as done:
            for i, (_, result) in zip(index, done):
                yield i, result
        return
    for i in index:
        try:
            result = _read(records[i], spec, reader, flip_reading)
        except Exception as exc:  # noqa: BLE001 - the file's reason, said with its name
            result = exc
        yield i, result


READERS = 8  # worker processes reading images at most, one per core (each reads whole images, one thread each:
# the decode, spec and statistics are single-threaded, so more processes beat more threads)
READ_LIMIT_S = 600.0  # one image's reading in a worker (a digital view takes about half a second)
_WORKER_READERS: dict = {}  # in a worker process: the reader of each preset, built once


def _read_task(task) -> tuple[dict, Entry]:
    """In a worker process: one image through the spec and the reader `rebuild` builds (one thread: the
    workers share the cores)."""
    record, spec, rebuild, flip_reading = task
    if rebuild not in _WORKER_READERS:
        torch.set_num_threads(1)
        _WORKER_READERS[rebuild] = rebuild.build().eval()
    return _read(record, PipelineSpec.from_dict(spec), _WORKER_READERS[rebuild], flip_reading)


def read_input(record: Record, spec: PipelineSpec):
    """(the image, the spec's result, the network's input: 1 x 3 x H x W float32 on the CPU)."""
    image = with_assumed_spacing(record.load(), record.assumed_spacing_mm)
    processed = spec.apply(image)
    return image, processed, torch.from_numpy(np.ascontiguousarray(processed.array.transpose(2, 0, 1)))[None].float()


def _read(record: Record, spec: PipelineSpec, reader: WholeImageReader, flip_reading: bool) -> tuple[dict, Entry]:
    """One image through the spec and the frozen trunk: its feature maps (cells x C per reading) and the rest."""
    image, processed, x = read_input(record, spec)
    anatomy = read_anatomy(image, outline_breast(image))
    family = VIEW_FAMILY.get((anatomy.view or "").upper())
    x = x.to(next(reader.parameters()).device)
    with torch.no_grad():
        fmap = reader.features(x)[0]
        maps = {"upright": fmap.flatten(1).T.cpu().numpy()}
        cells = reader.breast_cells(x)[0].cpu()
        if flip_reading:
            maps["flipped"] = reader.features(torch.flip(x, dims=[2]))[0].flip(dims=[1]).flatten(1).T.cpu().numpy()
    meta = image.meta
    acquisition = {"format": meta.format, "bits_stored": meta.bits_stored,
                   "pixel_spacing_mm": list(meta.pixel_spacing_mm) if meta.pixel_spacing_mm else None,
                   "conversion": str(meta.tags.get("ConversionType", "")), "map_shape": list(fmap.shape[1:]),
                   "source_shape": list(processed.geometry.source_shape)}
    entry = Entry(-1, cells.flatten().numpy(), tissue_cells(processed.array, cells.numpy(), family).ravel(),
                  baseline.image_features(image), np.asarray(input_statistics(processed.array, over="breast")),
                  anatomy.laterality or "", family or "", processed.geometry.matrix, processed.array.shape[:2],
                  acquisition)
    return maps, entry


def _assemble(records: list[Record], entries: list[Entry], cache: FeatureCache, spacing_mm: float,
              flip_reading: bool) -> ReaderData:
    """The run's data from its entries; the located findings are the records' (labels may change between runs
    that share a cache), the feature maps stay on disk."""
    h, w = entries[0].acquisition["map_shape"]
    finding, centres = [], []
    for record, entry in zip(records, entries):
        geometry = Geometry(tuple(entry.acquisition["source_shape"]), tuple(entry.input_shape), entry.matrix)
        hits, where = finding_cells(record, geometry, (h, w), entry.input_shape)
        finding.append(torch.from_numpy(hits.ravel()))
        centres.append(where)
    rows = [e.row for e in entries]
    metas = [ImageMeta(format=e.acquisition["format"], bits_stored=int(e.acquisition["bits_stored"]),
                       pixel_spacing_mm=tuple(e.acquisition["pixel_spacing_mm"]) if e.acquisition["pixel_spacing_mm"]
                       else None, tags={"ConversionType": e.acquisition["conversion"]}) for e in entries]
    return ReaderData([r.image_id for r in records], np.asarray([READS.label(r, None) for r in records]),
                      np.asarray([r.patient_key for r in records]), cache.rows("upright", rows),
                      torch.from_numpy(np.stack([e.breast for e in entries])), torch.stack(finding),
                      np.asarray([bool(f.any()) for f in finding]), centres, np.stack([e.base for e in entries]),
                      (h, w), metas, np.stack([e.stats for e in entries]), [e.side or None for e in entries],
                      [e.family or None for e in entries], STRIDE * spacing_mm,
                      cache.rows("flipped", rows) if flip_reading else None,
                      torch.from_numpy(np.stack([e.tissue for e in entries])))
