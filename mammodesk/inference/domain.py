"""Is this image like the ones the model learnt from? Every answer carries
`in domain` or `outside training data` with the reasons. The export records
what the training inputs looked like (`mammodesk.domain`):

- `acquisition`: the kinds of image (8-bit film, digital ...), their bits
  stored and pixel spacing. A model whose spec resamples to a fixed spacing and
  normalises the breast's intensities (`"normalised": true`, the image reader)
  is judged on the kind only: bit depth and spacing are digitisation, which its
  input no longer shows; film against digital stays a difference it would see;
- `input`: the range (0.5th-99.5th percentile over training samples) of the
  mean and standard deviation of the processed model input; `"over": "breast"`
  (the image reader, whose canvas pads the breast with black) takes them over
  the breast's pixels only, so the padding a view's shape leaves is not read as
  a darker image;
- `embedding`: a Mahalanobis distance in the top principal components of the
  penultimate-layer embedding (mean, components, variances, base64 float32)
  and its threshold, the 99th percentile of the training samples' own
  distances.

Qt-free, numpy-only."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from mammodesk.io import ImageMeta

SPACING_TOLERANCE = 1.5  # a spacing this many times finer or coarser than any seen in training is flagged
FILM, DIGITAL = "film", "digital"


@dataclass(frozen=True)
class DomainCheck:
    in_domain: bool
    reasons: tuple[str, ...] = ()
    distance: float | None = None   # embedding distance / threshold (1.0 = the threshold); None: not measured
    checked: tuple[str, ...] = field(default_factory=tuple)  # what was checked

    @property
    def label(self) -> str:
        return "in domain" if self.in_domain else "outside training data"

    def text(self) -> str:
        return self.label if self.in_domain else f"{self.label}: {'; '.join(self.reasons)}"


def acquisition_kind(meta: ImageMeta) -> str:
    """'film' (8-bit, or a DICOM whose conversion type says digitised film) or 'digital'."""
    conversion = str(meta.tags.get("ConversionType", "")).upper()
    if meta.bits_stored <= 8 or conversion in ("DF", "WSD", "DV"):
        return FILM
    return DIGITAL


def encode_array(array: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(array, np.float32)
    return {"shape": list(array.shape), "float32_base64": base64.b64encode(array.tobytes()).decode("ascii")}


def decode_array(data: Mapping[str, Any]) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(data["float32_base64"]), np.float32)
    return raw.reshape(data["shape"]).astype(np.float64)


class EmbeddingModel:
    """Mahalanobis distance in the top principal components of the training embeddings."""

    def __init__(self, mean: np.ndarray, components: np.ndarray, variances: np.ndarray, threshold: float):
        self.mean, self.components, self.variances, self.threshold = mean, components, variances, threshold

    @classmethod
    def fit(cls, embeddings: np.ndarray, components: int | None = None, percentile: float = 99.0) -> "EmbeddingModel":
        x = np.asarray(embeddings, np.float64)
        k = components or int(max(2, min(32, x.shape[1], len(x) // 10)))
        mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        k = min(k, len(s))
        variances = np.maximum(s[:k] ** 2 / max(1, len(x) - 1), 1e-12)
        model = cls(mean, vt[:k], variances, np.inf)
        model.threshold = float(np.percentile(model.distance(x), percentile))
        return model

    def distance(self, embeddings: np.ndarray) -> np.ndarray:
        projected = (np.atleast_2d(embeddings) - self.mean) @ self.components.T
        return np.sqrt((projected ** 2 / self.variances).sum(axis=1))

    def to_dict(self) -> dict[str, Any]:
        return {"mean": encode_array(self.mean), "components": encode_array(self.components),
                "variances": encode_array(self.variances), "threshold": self.threshold,
                "method": "Mahalanobis distance in the top principal components; threshold = 99th percentile "
                          "of the training samples' own distances"}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EmbeddingModel":
        return cls(decode_array(data["mean"]), decode_array(data["components"]), decode_array(data["variances"]),
                   float(data["threshold"]))


def input_statistics(model_input: np.ndarray, over: str = "input") -> tuple[float, float]:
    """The mean and standard deviation of a processed input (H x W or H x W x C); `over="breast"`: of the
    pixels the spec left as breast (above 0 in the first channel; everything else is blacked out), or of
    the whole input when nothing is."""
    values = np.asarray(model_input, np.float64)
    if over == "breast":
        grey = values[..., 0] if values.ndim == 3 else values
        inside = grey > 0
        if inside.any():
            values = values[inside]
    return float(values.mean()), float(values.std())


def input_ranges(statistics: np.ndarray, over: str = "input") -> dict[str, Any]:
    """The `input` record from N x 2 per-sample (mean, sd): the 0.5th-99.5th percentile of each."""
    statistics = np.asarray(statistics, np.float64)
    record: dict[str, Any] = {name: [float(np.percentile(statistics[:, i], 0.5)),
                                     float(np.percentile(statistics[:, i], 99.5))]
                              for i, name in enumerate(("mean", "sd"))}
    if over != "input":
        record["over"] = over
    return record


def check(domain: Mapping[str, Any] | None, meta: ImageMeta, model_input: np.ndarray | None = None,
          embedding: np.ndarray | None = None, embedding_model: EmbeddingModel | None = None) -> DomainCheck:
    """The image's acquisition, its processed input and its embedding against the training record."""
    if not domain:
        return DomainCheck(True, (), None, ("nothing: this model records no training domain",))
    reasons, checked = [], []
    seen = domain.get("acquisition", {})
    kinds, bits = seen.get("kinds", []), seen.get("bits_stored", [])
    kind = acquisition_kind(meta)
    if seen.get("normalised"):
        if kinds and kind not in kinds:
            reasons.append(f"{kind} mammogram; this model has seen only {' and '.join(kinds)} images, so how it "
                           f"reads {kind} ones is not known")
        checked.append("acquisition kind")
    elif bits and (meta.bits_stored not in bits or (kinds and kind not in kinds)):
        trained = " or ".join(f"{b}-bit" for b in bits) + (" " + "/".join(kinds) if kinds else "")
        reasons.append(f"{meta.bits_stored}-bit {kind} image; this model saw {trained}")
    if not seen.get("normalised"):
        checked.append("acquisition")
    spacing = seen.get("spacing_mm")
    if spacing and meta.pixel_spacing_mm and not seen.get("normalised"):
        value, (low, high) = meta.pixel_spacing_mm[0], spacing
        if value * SPACING_TOLERANCE < low or value > high * SPACING_TOLERANCE:
            trained_mm = f"{low:.3g}" if f"{low:.3g}" == f"{high:.3g}" else f"{low:.3g}-{high:.3g}"
            reasons.append(f"pixel spacing {value:.3g} mm; this model saw {trained_mm} mm")
        checked.append("spacing")
    ranges = domain.get("input")
    if ranges and model_input is not None:
        over = ranges.get("over", "input")
        what = "breast intensity" if over == "breast" else "input intensity"
        for name, value in zip(("mean", "sd"), input_statistics(model_input, over)):
            low, high = ranges[name]
            if not low <= value <= high:
                reasons.append(f"{what} {name} {value:.3f} outside the training range {low:.3f}-{high:.3f}")
        checked.append("input intensity")
    distance = None
    if embedding is not None and embedding_model is not None:
        distance = float(embedding_model.distance(np.asarray(embedding, np.float64))[0] / embedding_model.threshold)
        if distance > 1.0:
            reasons.append(f"features far from the training set ({distance:.1f}x the 99th percentile of training "
                           "distances)")
        checked.append("features")
    return DomainCheck(not reasons, tuple(reasons), distance, tuple(checked))


def summarise_acquisition(metas: Sequence[ImageMeta], assumed_spacing_mm: float | None = None) -> dict[str, Any]:
    """The `acquisition` record of a training set."""
    spacings = [m.pixel_spacing_mm[0] for m in metas if m.pixel_spacing_mm]
    if not spacings and assumed_spacing_mm:
        spacings = [assumed_spacing_mm]
    return {"kinds": sorted({acquisition_kind(m) for m in metas}), "bits_stored": sorted({m.bits_stored for m in metas}),
            "formats": sorted({m.format for m in metas if m.format}),
            "spacing_mm": [min(spacings), max(spacings)] if spacings else None}
