"""`patches`: a region is classified by the vote of patches cut from it (the deep-fusion network)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from mammodesk.inference.modes.base import ModelInputError, ReadingMode, milliseconds, reading_mode, source_box, to_nchw
from mammodesk.inference.patches import count_votes, cut_patches, mosaic, patch_positions, vote_map
from mammodesk.inference.results import HeatMaps, Prediction
from mammodesk.preprocessing import ProcessedImage

if TYPE_CHECKING:
    from mammodesk.inference.contract import ModelCard
    from mammodesk.inference.runner import ModelRunner


@reading_mode
class Patches(ReadingMode):
    name = "patches"
    words = "Drawn ROI"
    votes = True
    scan_overlap = 0.25  # each window already votes over patches spread across it

    def check(self, card: "ModelCard") -> str | None:
        roi = card.roi
        if not (roi.patch_size and roi.patches and roi.patches > 0):
            return "patch models need roi.patch_size and roi.patches (votes per ROI)"
        return super().check(card)

    def check_spec_output(self, card: "ModelCard", height: int, width: int) -> str | None:
        size = card.roi.patch_size
        if (card.input.height, card.input.width) != (size, size):
            return f"patch size {size} does not match the model input {card.input.height}x{card.input.width}"
        if height < size or width < size:
            return f"the spec makes {width}x{height} ROIs, smaller than the {size}-pixel patches"
        return None

    def needs_roi(self, card: "ModelCard") -> str:
        return f"{card.name} classifies ROI patches: give it an ROI (x0, y0, x1, y1), or scan the breast"

    def patch_positions(self, card: "ModelCard", shape: tuple[int, int]) -> np.ndarray:
        try:
            return patch_positions(shape, card.roi.patch_size, card.roi.patches, card.roi.seed)
        except ValueError as exc:
            raise ModelInputError(str(exc)) from exc

    def predict(self, runner: "ModelRunner", processed: ProcessedImage, timings: dict[str, float],
                view: str | None) -> Prediction:
        card, array = runner.card, processed.array
        size = card.roi.patch_size
        positions = self.patch_positions(card, array.shape[:2])
        start = time.perf_counter()
        outputs = runner.run_graph(to_nchw(cut_patches(array, positions, size)))
        timings["inference"] = milliseconds(start)
        probs = runner.probabilities(outputs[card.logits_output])
        maps = {name: mosaic(outputs[cam.output], positions, size, array.shape[:2]) for name, cam in card.cams.items()}
        heat = HeatMaps(maps, processed.geometry, card.binary_sigmoid) if maps else None
        votes = vote_map(probs, positions, size, array.shape[:2])
        boxes = np.column_stack([positions[:, 1], positions[:, 0], positions[:, 1] + size, positions[:, 0] + size])
        return Prediction(
            model=card.name, labels=card.labels, probabilities=probs.mean(axis=0), provider=runner.providers[0],
            heatmaps=heat, votes=count_votes(probs, len(card.labels)),
            vote_maps=HeatMaps({"votes": votes}, processed.geometry, normalise=False),
            patch_boxes=boxes, roi_box=source_box(processed.geometry), timings_ms=timings,
            weights_sha256=card.weights_sha256, embedding=runner.embedding(outputs, slice(None)))
