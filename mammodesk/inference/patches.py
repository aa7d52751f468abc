"""Patch models (deep-fusion VGG): deterministic patch positions inside a
processed ROI, majority votes, and mosaics of per-patch maps."""

from __future__ import annotations

import cv2
import numpy as np


def patch_positions(shape: tuple[int, int], patch: int, count: int, seed: int) -> np.ndarray:
    """(count, 2) top-left (y, x) of patches inside an ROI of `shape`,
    uniformly random but identical for the same shape, size, count and seed."""
    rows, cols = shape
    if rows < patch or cols < patch:
        raise ValueError(f"ROI {cols}x{rows} is smaller than the {patch}-pixel patches")
    rng = np.random.default_rng(seed)
    ys = rng.integers(0, rows - patch + 1, size=count)
    xs = rng.integers(0, cols - patch + 1, size=count)
    return np.stack([ys, xs], axis=1)


def cut_patches(array: np.ndarray, positions: np.ndarray, patch: int) -> np.ndarray:
    """(count, patch, patch[, C]) crops of an H x W[ x C] array."""
    return np.stack([array[y:y + patch, x:x + patch] for y, x in positions])


def count_votes(probabilities: np.ndarray, classes: int) -> np.ndarray:
    """Votes per class from (count, classes) patch probabilities."""
    return np.bincount(np.argmax(probabilities, axis=1), minlength=classes)


def mosaic(maps: np.ndarray, positions: np.ndarray, patch: int, shape: tuple[int, int]) -> np.ndarray:
    """Average per-patch maps (count, K, h, w) over an ROI of `shape`: each map is
    resized to the patch and laid at its position; NaN where no patch fell."""
    count, classes = maps.shape[:2]
    total = np.zeros((classes, *shape), np.float32)
    hits = np.zeros(shape, np.float32)
    for (y, x), per_class in zip(positions, maps):
        for k in range(classes):
            total[k, y:y + patch, x:x + patch] += cv2.resize(per_class[k].astype(np.float32), (patch, patch),
                                                             interpolation=cv2.INTER_LINEAR)
        hits[y:y + patch, x:x + patch] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(hits > 0, total / hits, np.nan).astype(np.float32)


def vote_map(probabilities: np.ndarray, positions: np.ndarray, patch: int, shape: tuple[int, int]) -> np.ndarray:
    """(K, H, W): the fraction of the patches covering each pixel that voted for each class."""
    classes = probabilities.shape[1]
    one_hot = np.eye(classes, dtype=np.float32)[np.argmax(probabilities, axis=1)]
    return mosaic(one_hot[:, :, None, None], positions, patch, shape)
