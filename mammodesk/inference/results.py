"""What a prediction returns: probabilities, votes for patch models, and
heat maps that know how to map themselves back to source pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from mammodesk.inference.domain import DomainCheck
from mammodesk.inference.levels import UNCLEAR, Level
from mammodesk.preprocessing import Geometry

PATCH_MAP = "patch probability"  # an image reader's heat map: p(positive) of each patch of the breast

DISPLAY_LIMIT = 1024  # longest side of the copy of a heat map that views draw
CLEAR_MARGIN = 0.2  # top-two probability gap below which an answer is "no clear answer"


@dataclass(frozen=True)
class SourceMap:
    """A map over a window of the source image: rows y0.., columns x0..
    `values` is float32 with NaN where the model saw nothing."""

    y0: int
    x0: int
    values: np.ndarray
    _display: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # derived, computed once

    def display(self, limit: int = DISPLAY_LIMIT) -> tuple[np.ndarray, float, float]:
        """(values at <= `limit` per side, x scale, y scale back to source pixels). Heat maps are
        smooth, so a view draws this copy scaled up; computed once per map (a 12 MP map takes
        about 100 ms), by the worker that made the map, off the UI thread."""
        if limit not in self._display:
            self._display[limit] = _downsampled(self.values, limit)
        return self._display[limit]

    def full(self, shape: tuple[int, int], fill: float = np.nan) -> np.ndarray:
        out = np.full(shape, fill, dtype=np.float32)
        rows, cols = self.values.shape
        out[self.y0:self.y0 + rows, self.x0:self.x0 + cols] = self.values
        return out

    def peak(self) -> tuple[int, int]:
        """(row, column) of the maximum, in source pixels (cached: a full-resolution map is large)."""
        if "peak" not in self._display:
            row, col = np.unravel_index(np.nanargmax(self.values), self.values.shape)
            self._display["peak"] = (self.y0 + int(row), self.x0 + int(col))
        return self._display["peak"]


def _downsampled(values: np.ndarray, limit: int) -> tuple[np.ndarray, float, float]:
    rows, cols = values.shape
    factor = max(rows, cols) / limit
    if factor <= 1:
        return values, 1.0, 1.0
    size = (max(1, round(cols / factor)), max(1, round(rows / factor)))
    nan = ~np.isfinite(values)
    small = cv2.resize(np.where(nan, 0, values).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    small_nan = cv2.resize(nan.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    small[small_nan] = np.nan
    return small, cols / size[0], rows / size[1]


class HeatMaps:
    """Maps in model space (one K x h x w array per CAM output) plus the
    geometry from source pixels to that space. `source()` resamples one class
    map onto the source grid, restricted to the window the model saw."""

    def __init__(self, maps: dict[str, np.ndarray], geometry: Geometry, binary_sigmoid: bool = False,
                 normalise: bool = True):
        self.raw = maps
        self.geometry = geometry
        self.binary_sigmoid = binary_sigmoid
        self.normalise = normalise
        self._cache: dict[tuple[str, int], SourceMap] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.raw)

    def model_space(self, name: str, class_index: int) -> np.ndarray:
        """Grad-CAM for one class: ReLU of the raw map, scaled to [0, 1] when `normalise`.
        A binary sigmoid model has one raw map, for the positive class; the
        negative class's Grad-CAM is its opposite."""
        raw = self.raw[name]
        if self.binary_sigmoid:
            cam = raw[0] if class_index == 1 else -raw[0]
        else:
            cam = raw[class_index]
        cam = np.maximum(np.nan_to_num(cam, nan=0.0), 0).astype(np.float32)
        if self.normalise:
            top = float(cam.max())
            cam = cam / top if top > 0 else cam
        nan = np.isnan(raw[0])
        if nan.any():
            cam[nan] = np.nan
        return cam

    def source(self, class_index: int, name: str = "combined") -> SourceMap:
        key = (name, class_index)
        if key not in self._cache:
            window = self.geometry.source_window()
            self._cache[key] = SourceMap(window[0], window[1],
                                         self.geometry.inverse_map(self.model_space(name, class_index), window=window))
        return self._cache[key]


@dataclass
class Prediction:
    model: str
    labels: tuple[str, ...]
    probabilities: np.ndarray          # one per class
    provider: str                      # the execution provider that really ran it
    heatmaps: HeatMaps | None = None   # None: the model has no explanations
    votes: np.ndarray | None = None    # patch models: patches voting for each class
    vote_maps: HeatMaps | None = None  # patch models: per-class vote fraction over the ROI
    patch_boxes: np.ndarray | None = None  # patch models: (N, 4) x0, y0, x1, y1 in processed-ROI pixels
    roi_box: tuple[int, int, int, int] | None = None  # source x0, y0, x1, y1 actually analysed
    timings_ms: dict[str, float] = field(default_factory=dict)
    weights_sha256: str = ""
    notes: list[str] = field(default_factory=list)  # caveats the user should see with the result
    raw_probabilities: np.ndarray | None = None  # before calibration
    calibrated: bool = False
    domain: DomainCheck | None = None
    embedding: np.ndarray | None = None  # (1, D) penultimate features, for the domain check
    threshold: float | None = None  # the model's operating point on p(positive); None: the most probable class
    level: Level | None = None  # image readers: the view scale (flag, clear band, score), `levels.py`

    @property
    def from_image_reader(self) -> bool:
        """Made by a whole-mammogram reader (its heat map is the patch map)."""
        return self.heatmaps is not None and PATCH_MAP in self.heatmaps.names

    def map_class(self, name: str) -> int:
        """The class a heat map is shown for: a reader's patch map is of the finding (p(normal) everywhere
        says nothing); Grad-CAM, the answer's class."""
        return len(self.labels) - 1 if name == PATCH_MAP else self.predicted_index

    @property
    def margin(self) -> float:
        """Gap between the two most probable classes; with an operating point, twice the distance of
        p(positive) from it (so 0.2 means 0.1 either side, the same as CLEAR_MARGIN's two-class gap)."""
        if self.threshold is not None:
            return float(2.0 * abs(float(self.probabilities[-1]) - self.threshold))
        top = np.sort(np.asarray(self.probabilities, float))[::-1]
        return float(top[0] - top[1]) if len(top) > 1 else 1.0

    @property
    def votes_disagree(self) -> bool:
        """Patch models: the majority of patch votes names another class than the mean probability."""
        return self.votes is not None and self.predicted_index != int(np.argmax(self.probabilities))

    @property
    def clear(self) -> bool:
        """A clear answer: in domain, outside the no-answer band, votes and probability agreeing."""
        return (self.domain is None or self.domain.in_domain) and not self.in_band and not self.votes_disagree

    @property
    def in_band(self) -> bool:
        """Where both answers stay possible: an image reader's band (`levels.py`), else near the threshold."""
        if self.level is not None:
            return self.level.answer(float(self.probabilities[-1])) == UNCLEAR
        return self.margin < CLEAR_MARGIN

    @property
    def score(self) -> int | None:
        """Image readers: the 1-10 score on the view scale (None: no score)."""
        return self.level.score(float(self.probabilities[-1])) if self.level is not None else None

    def verdict(self) -> str:
        """What a reader should take from it: the class, or 'no clear answer' and why."""
        if self.domain is not None and not self.domain.in_domain:
            return "no clear answer (outside training data)"
        if self.level is not None:
            return "no clear answer (either answer is possible at this score)" if self.in_band \
                else self.predicted_label
        if self.margin < CLEAR_MARGIN:
            return "no clear answer (near the decision threshold)"
        if self.votes_disagree:
            return "no clear answer (patch votes and mean probability disagree)"
        return self.predicted_label

    @property
    def predicted_index(self) -> int:
        if self.threshold is not None:
            return len(self.labels) - 1 if float(self.probabilities[-1]) >= self.threshold else 0
        if self.votes is not None:
            top = self.votes.max()
            tied = np.flatnonzero(self.votes == top)
            return int(tied[np.argmax(self.probabilities[tied])])  # ties: the higher mean probability
        return int(np.argmax(self.probabilities))

    @property
    def predicted_label(self) -> str:
        return self.labels[self.predicted_index]


def format_box(box: Sequence[float]) -> str:
    """x0,y0,x1,y1 in source pixels: the format `--roi` takes."""
    return ",".join(f"{float(v):g}" for v in box)


def parse_box(text: str) -> list[float]:
    """`--roi`'s x0,y0,x1,y1 (the `roi` column's format); ValueError when it is not four numbers."""
    values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    if len(values) != 4:
        raise ValueError(f"an ROI is x0,y0,x1,y1 in source pixels, got {text!r}")
    return values
