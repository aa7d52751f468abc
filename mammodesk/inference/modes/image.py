"""`image`: the whole-mammogram reader (Shen et al. 2019). One pass over the breast resampled to
`roi.spacing_mm`; its image logit is pooled from a map of patch logits (`output.map`), which is the heat
map and gives the answer's location. It answers per view, breast and exam (`levels.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mammodesk.inference.calibration import apply_calibration
from mammodesk.inference.levels import Levels, check_levels
from mammodesk.inference.location import peak_box, tissue_cells
from mammodesk.inference.modes.base import ModelInputError, ReadingMode, reading_mode
from mammodesk.inference.results import PATCH_MAP, HeatMaps, Prediction
from mammodesk.io.views import VIEW_FAMILY
from mammodesk.preprocessing import ProcessedImage

if TYPE_CHECKING:
    from mammodesk.inference.contract import ModelCard
    from mammodesk.inference.runner import ModelRunner
    from mammodesk.io import Image

BREAST_CELL = 0.25  # a map cell at least this much breast is read


@reading_mode
class WholeMammogram(ReadingMode):
    name = "image"
    words = "Whole mammogram"
    reads_whole_image = True
    whole_mammogram = True

    def check(self, card: "ModelCard") -> str | None:
        if not card.map_output or len(card.labels) != 2 or not card.roi.spacing_mm:
            return ("an image reader (roi.mode image) needs two labels, output.map (its patch-logit map) and "
                    "roi.spacing_mm (the spacing it reads at)")
        why = check_levels(card.levels) if card.levels is not None else None
        return f"mammodesk.levels: {why}" if why else None

    def levels(self, card: "ModelCard") -> Levels:
        """An older card's single operating point serves as the view's, with no band and no score."""
        return Levels.from_card(card.levels, card.threshold)

    def answer(self, runner: "ModelRunner", outputs: dict[str, np.ndarray], index: int,
               processed: ProcessedImage, timings: dict[str, float], view: str | None) -> Prediction:
        """The location keeps off the pectoral muscle except on CC views."""
        card, geometry = runner.card, processed.geometry
        logits = outputs[card.map_output][index, 0]
        breast = breast_cells(processed.array, logits.shape)
        if not breast.any():
            raise ModelInputError(f"{card.name}: no breast found in the image (nothing to read)")
        patch_map = patch_probabilities(logits, breast, card.calibration)
        tissue = tissue_cells(processed.array, breast, VIEW_FAMILY.get((view or "").upper()))
        return Prediction(
            model=card.name, labels=card.labels,
            probabilities=runner.probabilities(outputs[card.logits_output][index:index + 1])[0],
            provider=runner.providers[0],
            heatmaps=HeatMaps({PATCH_MAP: np.stack([1.0 - patch_map, patch_map])}, geometry, normalise=False),
            roi_box=peak_box(logits, tissue, geometry, spacing_mm=card.roi.spacing_mm,
                             window=card.roi.location_window),
            timings_ms=timings, weights_sha256=card.weights_sha256,
            embedding=runner.embedding(outputs, slice(index, index + 1)))

    def notes(self, card: "ModelCard", image: "Image", roi) -> list[str]:
        if image.meta.pixel_spacing_mm:
            return []
        resample = next((op for op in card.spec.ops if op.name == "resample"), None)
        height = f"{resample.fallback_height_mm:g} mm" if resample is not None else "a typical film"
        return [f"the image states no pixel spacing, so it was taken to be {height} tall; state its "
                "spacing (No spacing: assume, or --assume-spacing) for a reading at the right scale"]


def breast_cells(model_input: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The map cells an image reader pools, as its graph finds them: at least BREAST_CELL of the cell's
    input pixels above 0 (the spec blacks out everything but the breast)."""
    grey = model_input[..., 0] if model_input.ndim == 3 else model_input
    rows, cols = shape
    step_y, step_x = grey.shape[0] // rows, grey.shape[1] // cols
    cells = (grey[:rows * step_y, :cols * step_x] > 0).reshape(rows, step_y, cols, step_x).mean(axis=(1, 3))
    return cells >= BREAST_CELL


def patch_probabilities(logits: np.ndarray, breast: np.ndarray, calibration=None) -> np.ndarray:
    """An image reader's patch-logit map as probabilities on the image answer's calibrated scale (the image
    logit is a mean of patch logits, so a cell reads as the answer an image of its level would get); NaN on
    cells that are not breast (the reader pools over breast cells only, so those say nothing)."""
    raw = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    if calibration:
        raw = apply_calibration(calibration, np.column_stack([1.0 - raw.ravel(), raw.ravel()]))[:, 1].reshape(raw.shape)
    probabilities = raw.astype(np.float32)
    probabilities[~breast] = np.nan
    return probabilities
