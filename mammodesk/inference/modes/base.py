"""What every reading mode provides, and the registry of modes (see the package's docstring)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, TypeVar

import numpy as np

from mammodesk.errors import MammoDeskError
from mammodesk.inference.results import Prediction
from mammodesk.preprocessing import Geometry, ProcessedImage

if TYPE_CHECKING:
    from mammodesk.inference.contract import ModelCard
    from mammodesk.inference.levels import Levels
    from mammodesk.inference.runner import ModelRunner
    from mammodesk.io import Image

MODES: dict[str, "ReadingMode"] = {}


class ModelInputError(MammoDeskError, ValueError):
    """The image or ROI cannot be given to this model (e.g. an ROI model without an ROI)."""

_M = TypeVar("_M", bound=type)


def reading_mode(cls: _M) -> _M:
    """Class decorator: register a mode under its `name` (one instance: modes hold no state)."""
    if cls.name in MODES:
        raise ValueError(f"reading mode {cls.name!r} is registered twice")
    MODES[cls.name] = cls()
    return cls


class ReadingMode:
    name: ClassVar[str]
    words: ClassVar[str]  # what the panel calls the region it reads ("Drawn ROI")
    reads_whole_image: ClassVar[bool] = False  # False: it classifies a region the user (or a scan) gives
    whole_mammogram: ClassVar[bool] = False  # a reader of the breast with one score per view, breast and exam
    votes: ClassVar[bool] = False  # its answer is a vote of patches (the CSV has vote columns)
    scan_overlap: ClassVar[float] = 0.5  # a breast scan's windows share this much with each neighbour

    # --- the contract -----------------------------------------------------
    def check(self, card: "ModelCard") -> str | None:
        """What is wrong with a card of this mode, None when nothing is (the rest of the contract is
        checked for every mode alike). Per-level answers and bilateral reading belong to whole-mammogram
        readers only."""
        if card.levels is not None:
            return "mammodesk.levels: it is for image readers (roi.mode image) only"
        if card.bilateral is not None:
            return "mammodesk.bilateral is for image readers (roi.mode image) only"
        return None

    def check_spec_output(self, card: "ModelCard", height: int, width: int) -> str | None:
        """Whether the spec's last resize (`height` x `width`) gives what the graph takes."""
        if (height, width) != (card.input.height, card.input.width):
            return (f"the spec resizes to {width}x{height} but the model input is "
                    f"{card.input.width}x{card.input.height}")
        return None

    def levels(self, card: "ModelCard") -> "Levels | None":
        """The score and answer per view, breast and exam; None: the model answers per image only."""
        return None

    # --- reading ----------------------------------------------------------
    def predict(self, runner: "ModelRunner", processed: ProcessedImage, timings: dict[str, float],
                view: str | None) -> Prediction:
        """The answer for one prepared image (or ROI crop). `view`: its view code, when known."""
        start = time.perf_counter()
        outputs = runner.run_graph(to_nchw(processed.array[None]))
        timings["inference"] = milliseconds(start)
        return self.answer(runner, outputs, 0, processed, timings, view)

    def answer(self, runner: "ModelRunner", outputs: dict[str, np.ndarray], index: int,
               processed: ProcessedImage, timings: dict[str, float], view: str | None) -> Prediction:
        """Row `index` of a batch's graph outputs as a prediction, with the class heat maps if any."""
        card = runner.card
        probabilities = runner.probabilities(outputs[card.logits_output][index:index + 1])[0]
        return Prediction(model=card.name, labels=card.labels, probabilities=probabilities,
                          provider=runner.providers[0], heatmaps=runner.class_maps(outputs, index, processed.geometry),
                          roi_box=self.region(processed.geometry), timings_ms=timings,
                          weights_sha256=card.weights_sha256,
                          embedding=runner.embedding(outputs, slice(index, index + 1)))

    def region(self, geometry: Geometry) -> tuple[int, int, int, int] | None:
        """The source box the answer is about, shown with it; None: the whole image."""
        return source_box(geometry)

    def patch_positions(self, card: "ModelCard", shape: tuple[int, int]) -> np.ndarray | None:
        """Where the patches of a window are cut from its prepared crop; None: the crop is read whole."""
        return None

    def needs_roi(self, card: "ModelCard") -> str:
        """Why a model of this mode cannot answer without an ROI."""
        return f"{card.name} classifies ROIs: give it an ROI (x0, y0, x1, y1), or scan the breast"

    def notes(self, card: "ModelCard", image: "Image", roi) -> list[str]:
        """Caveats about how this image was read."""
        size, spacing = card.roi.size, card.roi.spacing_mm
        if roi is None or not size or not spacing or image.meta.pixel_spacing_mm:
            return []
        return [f"the image has no pixel spacing, so the ROI was taken as {size} pixels; the model was "
                f"trained at {spacing} mm per pixel, so the ROI's physical size may be wrong"]


def to_nchw(batch: np.ndarray) -> np.ndarray:
    """(N, H, W[, C]) float -> contiguous (N, C, H, W) float32."""
    batch = batch[:, None] if batch.ndim == 3 else batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32)


def source_box(geometry: Geometry) -> tuple[int, int, int, int]:
    """The source x0, y0, x1, y1 a prepared image was cut from."""
    y0, x0, rows, cols = geometry.source_window()
    return x0, y0, x0 + cols, y0 + rows


def milliseconds(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0

