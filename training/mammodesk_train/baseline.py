"""The plain baseline every model must beat: intensity and texture statistics
of the region the model looks at, plus logistic regression, trained in the
same patient-level folds as the model.

The region is the sample's source window for ROI tasks (the same 120-pixel
square the model gets, before any preprocessing) and the breast mask for
whole-image tasks. Values are scaled by the image's bit depth only
(0..2^bits - 1 -> 0..1), so absolute intensity, which carries much of the
signal on mammograms, is kept. The features (`FEATURES`, 22 of them):

- intensity: mean, sd, 5/25/50/75/95th percentiles, skewness, excess
  kurtosis, entropy of a 32-bin histogram, share of values above 0.5;
- texture: mean gradient magnitude (central differences); grey-level co-occurrence (32
  levels, distances 1 and 3 pixels, 4 directions averaged) contrast,
  homogeneity, energy and correlation;
- shape of the region: centre-minus-surround mean (the central half of the
  window against its border; 0 for whole images) and the share of the window
  that is breast (the breast's share of the image for whole images).

The classifier is `StandardScaler` + `LogisticRegression(C=1, balanced class
weights)`, fixed, never tuned on the data it is scored on."""

from __future__ import annotations

import numpy as np
from skimage.feature import graycomatrix, graycoprops
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mammodesk_train.app import Image
from mammodesk_train.app import breast_mask, crop_frame
from mammodesk_train.app import value_range
from mammodesk_train.app import Frame

from mammodesk_train.data.builders import Samples

LEVELS = 32
DISTANCES = (1, 3)
GLCM_PROPS = ("contrast", "homogeneity", "energy", "correlation")
FEATURES = ("mean", "sd", "p05", "p25", "p50", "p75", "p95", "skewness", "kurtosis", "entropy", "bright_share",
            "gradient", *(f"glcm_{p}_d{d}" for d in DISTANCES for p in GLCM_PROPS), "centre_minus_surround",
            "breast_share")
DESCRIPTION = ("plain baseline: 22 intensity/texture statistics of the raw region (ROI window or breast mask; "
               "histogram, percentiles, gradient, co-occurrence) + logistic regression (C=1, balanced)")


def region_features(values: np.ndarray, mask: np.ndarray, *, roi: bool) -> np.ndarray:
    """The 22 statistics of `values` (floats in 0..1) over `mask`."""
    share = float(mask.mean())
    contrast = _centre_minus_surround(values, mask) if roi else 0.0
    if mask.any():  # every statistic below sees the mask's pixels and their neighbours only: a digital
        box = _around(mask)  # view's breast box, not its 8 Mpx
        values, mask = values[box], mask[box]
    inside = values[mask] if mask.any() else values.ravel()
    hist = np.histogram(inside, bins=LEVELS, range=(0.0, 1.0))[0] / max(1, inside.size)
    nonzero = hist[hist > 0]
    percentiles = np.percentile(inside, [5, 25, 50, 75, 95])
    mean, sd = float(inside.mean()), float(inside.std())
    z = (inside - mean) / sd if sd > 1e-6 else np.zeros(1, np.float32)  # flat regions: no skew, no kurtosis
    squared = z * z  # powers by products: `z ** 3` on millions of pixels costs ten times as much
    skew, kurt = float((squared * z).mean()), float((squared * squared).mean() - 3.0) if z.any() else 0.0
    gradient = _gradient_magnitude(values.astype(np.float32))[mask].mean() if mask.any() else 0.0
    return np.array([mean, sd, *percentiles, skew, kurt, float(-(nonzero * np.log(nonzero)).sum()),
                     float((inside > 0.5).mean()), float(gradient), *_glcm(values, mask), contrast, share], np.float64)


def _around(mask: np.ndarray) -> tuple[slice, slice]:
    """The mask's bounding box grown by one pixel (a gradient's and a co-occurrence's neighbours), within the
    image: outside it no pixel of the mask and none of their neighbours."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return (slice(max(0, rows[0] - 1), rows[-1] + 2), slice(max(0, cols[0] - 1), cols[-1] + 2))


def _gradient_magnitude(values: np.ndarray) -> np.ndarray:
    """|np.gradient(values)| (central differences inside, one-sided at the edges), without its copies."""
    gy, gx = np.empty_like(values), np.empty_like(values)
    np.subtract(values[2:], values[:-2], out=gy[1:-1])
    np.subtract(values[:, 2:], values[:, :-2], out=gx[:, 1:-1])
    gy[1:-1] /= 2
    gx[:, 1:-1] /= 2
    gy[0], gy[-1] = values[1] - values[0], values[-1] - values[-2]
    gx[:, 0], gx[:, -1] = values[:, 1] - values[:, 0], values[:, -1] - values[:, -2]
    return np.sqrt(gx * gx + gy * gy)


def _centre_minus_surround(values: np.ndarray, mask: np.ndarray) -> float:
    """The central half of an ROI window against its border, inside the mask."""
    rows, cols = values.shape
    centre = np.zeros_like(mask)
    centre[rows // 4: rows - rows // 4, cols // 4: cols - cols // 4] = True
    core, ring = values[centre & mask], values[~centre & mask]
    return float(core.mean() - ring.mean()) if core.size and ring.size else 0.0


def _glcm(values: np.ndarray, mask: np.ndarray) -> list[float]:
    """Co-occurrence statistics inside the mask: level 0 marks outside and is dropped (so a pair with a pixel
    outside the mask never counts, wherever the image is cut around it)."""
    levels = np.clip(values * LEVELS, 0, LEVELS - 1).astype(np.uint8) + np.uint8(1)  # below 0: the lowest level
    quantised = np.where(mask, levels, np.uint8(0))
    matrix = graycomatrix(quantised, DISTANCES, (0, np.pi / 4, np.pi / 2, 3 * np.pi / 4), levels=LEVELS + 1)
    matrix = matrix[1:, 1:].astype(np.float64)
    totals = matrix.sum(axis=(0, 1), keepdims=True)
    matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    out = []
    for d in range(len(DISTANCES)):
        for prop in GLCM_PROPS:
            value = graycoprops(matrix[:, :, d:d + 1, :], prop).mean()
            out.append(float(np.nan_to_num(value)))
    return out


def _scaled(frame_or_image) -> tuple[np.ndarray, tuple[float, float]]:
    lo, hi = value_range(frame_or_image)
    return (frame_or_image.pixels.astype(np.float32) - lo) / (hi - lo), (lo, hi)


def image_features(image: Image, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Features of one sample: an ROI window (top, left, rows, cols) or the whole breast."""
    if window is not None:
        frame = crop_frame(image, *(int(v) for v in window))
        values, _ = _scaled(frame)
        return region_features(values, frame.mask, roi=True)  # the window's pixels inside the image
    frame = Frame(pixels=image.pixels, geometry=None, meta=image.meta, mask=None)
    values, (lo, hi) = _scaled(frame)
    valid = None if image.meta.padding_mask is None else ~image.meta.padding_mask
    mask = breast_mask(image.pixels, valid, value_lo=lo, value_hi=hi)
    return region_features(values, mask, roi=False)


def sample_features(samples: Samples) -> np.ndarray:
    """(N, 22) features of every sample, reading each record's image once."""
    out = np.zeros((len(samples), len(FEATURES)))
    cached: tuple[int, Image] | None = None
    for i, record in enumerate(samples.record_index.tolist()):
        if cached is None or cached[0] != record:
            cached = (record, samples.records[record].load())
        window = None if samples.windows is None else tuple(samples.windows[i])
        out[i] = image_features(cached[1], window)
    return out


def make_classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000))


def fit_predict(features: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
                classes: int) -> np.ndarray:
    """Fit on the training indices only; (len(test), classes) probabilities."""
    model = make_classifier().fit(features[train], y[train])
    probs = np.zeros((len(test), classes))
    probs[:, model.classes_] = model.predict_proba(features[test])
    return probs


MIN_FOLDS = 5  # fewer folds give a fold spread too rough to judge by
RULE = ("ships only if the mean paired per-fold AUC difference (model - baseline) exceeds the larger of the "
        f"two fold standard deviations, over at least {MIN_FOLDS} folds")


def compare(model_folds: list[dict], baseline_folds: list[dict], metric: str = "auc") -> dict:
    """Model vs baseline in the same folds: means, sds, paired differences and the shipping rule."""
    model = np.array([m[metric] for m in model_folds], float)
    base = np.array([b[metric] for b in baseline_folds], float)
    diff = model - base
    sd = (lambda v: float(v.std(ddof=1)) if len(v) > 1 else 0.0)
    spread = max(sd(model), sd(base))
    return {"metric": metric, "model": {"mean": float(model.mean()), "sd": sd(model), "folds": model.tolist()},
            "baseline": {"mean": float(base.mean()), "sd": sd(base), "folds": base.tolist()},
            "difference": {"mean": float(diff.mean()), "sd": sd(diff), "folds": diff.tolist()},
            "folds_won": int((diff > 0).sum()), "spread": spread,
            "beats_baseline": bool(diff.mean() > spread and len(diff) >= MIN_FOLDS),
            **({} if len(diff) >= MIN_FOLDS else {"cannot_judge": f"{len(diff)} folds (the check needs at least "
                                                                  f"{MIN_FOLDS})"}),
            "rule": RULE, "baseline_method": DESCRIPTION}


def one_class_only(pooled: dict) -> str | None:
    """Why a model's out-of-fold answers say nothing, whatever its AUC: it never answers some class (a
    two-class model with sensitivity or specificity 0). None when it answers every class."""
    never = [name for name, figures in pooled.get("per_class", {}).items()
             if figures.get("support", 0) > 0 and figures.get("recall", 1.0) == 0.0]
    if not never:
        return None
    return f"it never answers {', '.join(never)} out of fold (" + ", ".join(
        f"{name} recall {figures['recall']:.2f}" for name, figures in pooled["per_class"].items()) + ")"


def gate(comparison: dict, pooled: dict) -> dict:
    """The shipping rule with the degenerate case refused: a model that answers one class only does not ship,
    however its AUC compares."""
    why = one_class_only(pooled)
    return comparison if why is None else {**comparison, "beats_baseline": False, "degenerate": why}


def verdict(comparison: dict) -> str:
    """One line: 'CV AUC 0.91 ± 0.03 vs 0.85 ± 0.05 plain baseline (+0.06 ± 0.04 paired; beats it)'."""
    m, b, d = comparison["model"], comparison["baseline"], comparison["difference"]
    outcome = "beats it" if comparison["beats_baseline"] else "does NOT beat it by more than the fold spread"
    if comparison.get("cannot_judge"):
        outcome = f"cannot judge with {comparison['cannot_judge']}: does NOT ship"
    if comparison.get("degenerate"):
        outcome = f"does NOT ship: {comparison['degenerate']}"
    return (f"CV {comparison['metric'].upper()} {m['mean']:.2f} ± {m['sd']:.2f} vs {b['mean']:.2f} ± {b['sd']:.2f} "
            f"plain baseline ({d['mean']:+.2f} ± {d['sd']:.2f} paired, {comparison['folds_won']}/{len(d['folds'])} "
            f"folds won; {outcome})")
