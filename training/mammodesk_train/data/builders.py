"""Dataset builders on top of the app's readers and preprocessing spec:
whole images, ROI crops around findings (plus random normal ROIs inside the
breast), and random patches from ROIs. They return plain arrays, each sample
tagged with its record so splits stay at the patient level. Augmentation is
not here: it happens after splitting, on training samples only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from mammodesk_train.app import Finding, FindingKind, MaskRef
from mammodesk_train.app import ImageReadError
from mammodesk_train.app import ImageMeta, read_image
from mammodesk_train.app import PipelineSpec, breast_mask, crop_frame

from mammodesk_train.data.sources import Record
from mammodesk_train.data.tasks import Task


@dataclass
class Samples:
    x: np.ndarray              # N x C x H x W float32
    y: np.ndarray              # N int64
    record_index: np.ndarray   # N: which record each sample came from
    records: list[Record]
    hashes: dict[int, str] = field(default_factory=dict)  # record index -> pixel sha256
    windows: np.ndarray | None = None  # N x 4 source (top, left, rows, cols) of ROI samples; None: whole images
    metas: dict[int, ImageMeta] = field(default_factory=dict)  # record index -> the image's metadata

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask_or_index) -> "Samples":
        windows = None if self.windows is None else self.windows[mask_or_index]
        return Samples(self.x[mask_or_index], self.y[mask_or_index], self.record_index[mask_or_index],
                       self.records, self.hashes, windows, self.metas)

    def sample_metas(self, index=slice(None)) -> list[ImageMeta]:
        """The image metadata of each sample (of `index`)."""
        return [self.metas[i] for i in self.record_index[index].tolist()]

    @property
    def groups(self) -> np.ndarray:
        """Patient key of each sample (for grouped splitting)."""
        return np.array([self.records[i].patient_key for i in self.record_index])


def to_chw(array: np.ndarray) -> np.ndarray:
    return (array[None] if array.ndim == 2 else array.transpose(2, 0, 1)).astype(np.float32)


def whole_images(records: Sequence[Record], task: Task, spec: PipelineSpec) -> Samples:
    xs, ys, index, hashes, metas = [], [], [], {}, {}
    for i, record in enumerate(records):
        label = task.label(record, None)
        if label is None:
            continue
        image = record.load()
        hashes[i], metas[i] = image.pixel_hash, image.meta
        xs.append(to_chw(spec.apply(image).array))
        ys.append(label)
        index.append(i)
    return _samples(xs, ys, index, records, hashes, metas=metas)


def roi_crops(records: Sequence[Record], task: Task, spec: PipelineSpec, size: int, *,
              normals_per_image: int = 1, seed: int = 0, min_breast_fraction: float = 0.9,
              findings: bool = True) -> Samples:
    """Square `size`-pixel ROIs centred on each located finding (unless `findings`
    is False), and `normals_per_image` random ROIs inside the breast of normal images
    (at least `min_breast_fraction` tissue). Findings whose centre lies off the
    breast mask (MIAS mdb212-style quirks) are kept: the label is the truth."""
    rng = np.random.default_rng(seed)
    normal = Finding(FindingKind.NORMAL)
    xs, ys, index, hashes, windows, metas = [], [], [], {}, [], {}
    for i, record in enumerate(records):
        located = [f for f in record.labels.located_findings if findings and task.label(record, f) is not None]
        wants_normals = normals_per_image > 0 and record.labels.is_normal and task.label(record, normal) is not None
        if not located and not wants_normals:
            continue
        image = record.load()
        hashes[i], metas[i] = image.pixel_hash, image.meta
        for finding in located:
            box = finding_box(finding)
            if box is None:
                continue  # a CBIS-DDSM ROI mask that is missing or unreadable
            x0, y0, x1, y1 = box
            top, left = int(round((y0 + y1) / 2 - size / 2)), int(round((x0 + x1) / 2 - size / 2))
            xs.append(to_chw(spec.run(crop_frame(image, top, left, size, size)).array))
            ys.append(task.label(record, finding))
            index.append(i)
            windows.append((top, left, size, size))
        if wants_normals:
            for top, left in _normal_positions(image.pixels, size, normals_per_image, rng, min_breast_fraction):
                xs.append(to_chw(spec.run(crop_frame(image, top, left, size, size)).array))
                ys.append(task.label(record, normal))
                index.append(i)
                windows.append((top, left, size, size))
    return _samples(xs, ys, index, records, hashes, np.asarray(windows, np.int64).reshape(-1, 4), metas)


def finding_box(finding: Finding) -> tuple[float, float, float, float] | None:
    """The finding's box in source pixels; CBIS-DDSM findings are mask files, read here."""
    if not isinstance(finding.shape, MaskRef):
        return finding.shape.bbox()
    try:
        mask = read_image(finding.shape.path).pixels
    except ImageReadError:
        return None
    rows, cols = np.nonzero(mask)
    if not len(rows):
        return None
    return float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max())


def _normal_positions(pixels: np.ndarray, size: int, count: int, rng: np.random.Generator,
                      min_fraction: float) -> list[tuple[int, int]]:
    mask = breast_mask(pixels)
    rows, cols = mask.shape
    integral = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    positions: list[tuple[int, int]] = []
    for _ in range(count * 200):  # rejection sampling; gives up quietly on tiny breasts
        if len(positions) == count or rows <= size or cols <= size:
            break
        top, left = int(rng.integers(0, rows - size)), int(rng.integers(0, cols - size))
        inside = (integral[top + size, left + size] - integral[top, left + size]
                  - integral[top + size, left] + integral[top, left])
        if inside >= min_fraction * size * size:
            positions.append((top, left))
    return positions


def random_patches(rois: Samples, patch: int, per_class: dict[int, int], seed: int = 0) -> Samples:
    """`per_class[c]` random `patch`-pixel crops from each ROI of class c."""
    rng = np.random.default_rng(seed)
    _, _, height, width = rois.x.shape
    if height < patch or width < patch:
        raise ValueError(f"ROIs of {width}x{height} are smaller than {patch}-pixel patches")
    xs, ys, index = [], [], []
    for roi, label, record in zip(rois.x, rois.y, rois.record_index):
        for _ in range(per_class.get(int(label), 0)):
            top, left = rng.integers(0, height - patch + 1), rng.integers(0, width - patch + 1)
            xs.append(roi[:, top:top + patch, left:left + patch])
            ys.append(label)
            index.append(record)
    return _samples(xs, ys, index, rois.records, rois.hashes, metas=rois.metas)


def _samples(xs, ys, index, records, hashes, windows=None, metas=None) -> Samples:
    if not xs:
        raise ValueError("no samples: no record has a label for this task")
    return Samples(np.stack(xs).astype(np.float32), np.asarray(ys, np.int64), np.asarray(index, np.int64),
                   list(records), dict(hashes), windows, dict(metas or {}))
