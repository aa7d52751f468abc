"""`ModelRunner`: runs any contract-conformant ONNX model on an `Image`, the
same way for every family: embedded spec, onnxruntime (CUDA first, CPU
fallback, reported honestly), probabilities, and heat maps in source pixels."""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnxruntime as ort

from mammodesk.annotations.model import Shape
from mammodesk.inference.calibration import apply_calibration
from mammodesk.inference.contract import UNVERIFIED, ModelCard, ModelContractError, check_session, load_verified
from mammodesk.inference.domain import EmbeddingModel, check
from mammodesk.inference.modes.base import ModelInputError, milliseconds, source_box, to_nchw
from mammodesk.inference.patches import count_votes, cut_patches
from mammodesk.inference.results import HeatMaps, Prediction
from mammodesk.io import Image
from mammodesk.preprocessing import Geometry, ProcessedImage, crop_frame

log = logging.getLogger(__name__)
# onnxruntime-gpu logs an ERROR whenever its CUDA library cannot load (any CPU-only machine); the runner
# reports that itself (fallback_reason), and real failures raise exceptions, so only FATAL is printed.
ort.set_default_logger_severity(4)
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
_OOM_MARKERS = ("out of memory", "failed to allocate", "cudaerrormemoryallocation", "bfc_arena")


class ModelRunner:
    """Thread-safe: `predict` may be called from worker threads concurrently."""

    def __init__(self, path: str | Path, *, prefer_gpu: bool = True, threads: int = 0, warm_up: bool = True):
        # validated and its digest checked before anything runs; the session is built from the checked bytes
        self.card, model_bytes = load_verified(path)
        self.integrity_note = UNVERIFIED if self.card.graph_sha256 is None else None
        self._threads = threads
        self._lock = threading.Lock()
        self.fallback_reason: str | None = None
        wanted = [CUDA, CPU] if prefer_gpu and CUDA in ort.get_available_providers() else [CPU]
        self._model_bytes = model_bytes
        domain = self.card.domain or {}
        self._embedding_model = EmbeddingModel.from_dict(domain["embedding"]) \
            if "embedding" in domain and self.card.embedding_output else None
        self._session = self._create_session(wanted)
        check_session(self.card, self._session)
        if warm_up:
            shape = (1, self.card.input.channels, self.card.input.height, self.card.input.width)
            self.run_graph(np.zeros(shape, np.float32))

    # --- session ---------------------------------------------------------
    def _create_session(self, providers: list[str]) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = self._threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(self._model_bytes, options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelContractError(self.card.path, f"onnxruntime cannot load the graph ({exc})") from exc
        if CUDA in providers and session.get_providers()[0] != CUDA:
            # onnxruntime-gpu falls back silently when the CUDA libraries are missing.
            self.fallback_reason = "CUDA requested but unavailable (CUDA/cuDNN libraries not found); running on CPU"
        return session

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    @property
    def device(self) -> str:
        return "CUDA" if self.providers[0] == CUDA else "CPU"

    def run_graph(self, batch: np.ndarray, cams: bool = True) -> dict[str, np.ndarray]:
        """The graph's outputs for an NCHW batch (the class heat maps too unless `cams` is False)."""
        names = [self.card.logits_output] + ([c.output for c in self.card.cams.values()] if cams else [])
        names += [self.card.embedding_output] if self.card.embedding_output else []
        names += [self.card.map_output] if self.card.map_output else []
        session = self._session
        try:
            values = session.run(names, {self.card.input.name: batch})
        except Exception as exc:
            if self.device != "CUDA" or not any(m in str(exc).lower() for m in _OOM_MARKERS):
                raise
            with self._lock:
                if self._session is session:  # first thread to hit it switches everyone to the CPU
                    log.warning("GPU out of memory running %s; retrying on the CPU", self.card.name)
                    self._session = self._create_session([CPU])
                    self.fallback_reason = f"GPU ran out of memory ({str(exc)[:120]}); switched to CPU"
            values = self._session.run(names, {self.card.input.name: batch})
        return dict(zip(names, values))

    # --- prediction -------------------------------------------------------
    def predict(self, image: Image, roi: Shape | Sequence[float] | None = None, *,
                view: str | None = None) -> Prediction:
        """`view`: the image's view as its anatomy reads it (tags, name or pixels), for where a reader's mark may
        sit; the file's own view tag otherwise."""
        if not self.card.reads_whole_image and roi is None:
            raise ModelInputError(self.card.mode.needs_roi(self.card))
        timings: dict[str, float] = {}
        start = time.perf_counter()
        processed = self._prepare(image, roi)
        timings["preprocess"] = milliseconds(start)
        prediction = self.card.mode.predict(self, processed, timings, view or image.meta.view)
        return self._trust(prediction, image, processed.array, roi)

    def _trust(self, prediction: Prediction, image: Image, model_input: np.ndarray, roi) -> Prediction:
        """Calibration, the domain check and the caveats every answer carries."""
        prediction.raw_probabilities = prediction.probabilities
        if self.card.calibration:
            prediction.probabilities = apply_calibration(self.card.calibration, prediction.probabilities)
            prediction.calibrated = True
        prediction.threshold = self.card.threshold
        levels = self.card.level_rules
        prediction.level = levels.view if levels is not None else None
        prediction.domain = check(self.card.domain, image.meta, model_input, prediction.embedding,
                                  self._embedding_model)
        prediction.notes += self.card.mode.notes(self.card, image, roi)
        if self.integrity_note:
            prediction.notes.append(self.integrity_note)
        return prediction

    def predict_many(self, images: Sequence[Image], batch_size: int = 8,
                     views: Sequence[str | None] | None = None) -> list[Prediction]:
        """Whole-image models: batched inference over several images (`views`: as `predict`'s, one per image)."""
        if not self.card.reads_whole_image:
            raise ModelInputError(f"{self.card.name} needs an ROI per image; call predict() per ROI")
        views = list(views) if views is not None else [None] * len(images)
        results: list[Prediction] = []
        for first in range(0, len(images), batch_size):
            batch = images[first:first + batch_size]
            chunk = [self._prepare(image, None) for image in batch]
            start = time.perf_counter()
            outputs = self.run_graph(to_nchw(np.stack([p.array for p in chunk])))
            elapsed = milliseconds(start) / len(chunk)
            results += [self._trust(self.card.mode.answer(self, outputs, i, p, {"inference": elapsed},
                                                          views[first + i] or image.meta.view), image, p.array, None)
                        for i, (p, image) in enumerate(zip(chunk, batch))]
        return results

    def predict_windows(self, image: Image, boxes: Sequence[Sequence[float]], *, batch_size: int = 64,
                        progress: Callable[[int, int], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> list[Prediction]:
        """ROI and patch models: the answer for every window, as `predict` gives it but without heat
        maps, in large onnxruntime batches. Each window is preprocessed on its own crop (the spec of an
        ROI model is window-local by definition: it was trained on crops), in parallel threads."""
        if self.card.reads_whole_image:
            raise ModelInputError(f"{self.card.name} classifies whole images; there are no windows")
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            processed = list(pool.map(lambda box: self._prepare(image, box), boxes))
        positions = self.card.mode.patch_positions(self.card, processed[0].array.shape[:2]) if processed else None
        patches = positions is not None

        def inputs(prepared: ProcessedImage) -> np.ndarray:
            if positions is None:
                return to_nchw(prepared.array[None])
            return to_nchw(cut_patches(prepared.array, positions, self.card.roi.patch_size))

        per_window = len(positions) if positions is not None else 1
        windows_per_batch = max(1, batch_size // per_window)  # patches are cut batch by batch: bounded memory
        logits, embeddings = [], []
        for first in range(0, len(processed), windows_per_batch):
            if should_stop is not None and should_stop():
                raise InterruptedError("scan stopped")
            chunk = processed[first:first + windows_per_batch]
            outputs = self.run_graph(np.concatenate([inputs(p) for p in chunk]), cams=False)
            logits.append(outputs[self.card.logits_output])
            if self.card.embedding_output:
                embeddings.append(outputs[self.card.embedding_output])
            if progress is not None:
                progress(first + len(chunk), len(boxes))
        probs = self.probabilities(np.concatenate(logits)) if logits else np.zeros((0, len(self.card.labels)))
        features = np.concatenate(embeddings) if embeddings else None
        results = []
        for index, (box, prepared) in enumerate(zip(boxes, processed)):
            rows = slice(index * per_window, (index + 1) * per_window)
            window = probs[rows]
            prediction = Prediction(
                model=self.card.name, labels=self.card.labels,
                probabilities=window.mean(axis=0) if patches else window[0], provider=self.providers[0],
                votes=count_votes(window, len(self.card.labels)) if patches else None,
                roi_box=source_box(prepared.geometry), weights_sha256=self.card.weights_sha256,
                embedding=None if features is None else features[rows].astype(np.float64).mean(axis=0, keepdims=True))
            results.append(self._trust(prediction, image, prepared.array, box))
        return results

    def _prepare(self, image: Image, roi) -> ProcessedImage:
        if roi is None:
            return self.card.spec.apply(image)
        y0, x0, rows, cols = self.roi_window(image, roi)
        return self.card.spec.run(crop_frame(image, y0, x0, rows, cols))

    def roi_window(self, image: Image, roi) -> tuple[int, int, int, int]:
        return roi_window(self.card, image, roi)

    def class_maps(self, outputs: dict[str, np.ndarray], index: int, geometry: Geometry) -> HeatMaps | None:
        """Row `index`'s class heat maps (Grad-CAM computed in the graph), None when the model has none."""
        if not self.card.cams:
            return None
        maps = {name: outputs[cam.output][index] for name, cam in self.card.cams.items()}
        return HeatMaps(maps, geometry, self.card.binary_sigmoid)

    def embedding(self, outputs: dict[str, np.ndarray], rows: slice) -> np.ndarray | None:
        """The sample's penultimate features (patch models: the mean over their patches)."""
        name = self.card.embedding_output
        if not name or name not in outputs:
            return None
        return outputs[name][rows].astype(np.float64).mean(axis=0, keepdims=True)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        logits = logits.astype(np.float64)
        if self.card.activation == "sigmoid":
            p = 1.0 / (1.0 + np.exp(-logits))
            return np.concatenate([1 - p, p], axis=1) if self.card.binary_sigmoid else p
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


def roi_window(card: ModelCard, image: Image, roi) -> tuple[int, int, int, int]:
    """(y0, x0, rows, cols) of the source region the model analyses for `roi`:
    the ROI's box, or a square of the model's ROI size around its centre
    (converted to this image's pixel spacing when both spacings are known)."""
    box = roi.bbox() if hasattr(roi, "bbox") else tuple(float(v) for v in roi)
    if box is None or len(box) != 4:
        raise ModelInputError("an ROI is a shape with a bounding box, or x0, y0, x1, y1")
    x0, y0, x1, y1 = box
    size = card.roi.size
    if size:
        spacing = image.meta.pixel_spacing_mm
        if card.roi.spacing_mm and spacing:
            size = size * card.roi.spacing_mm / spacing[0]
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        x0, x1, y0, y1 = cx - size / 2, cx + size / 2, cy - size / 2, cy + size / 2
    rows, cols = image.shape
    left, top = int(np.floor(x0 + 0.5)), int(np.floor(y0 + 0.5))
    width, height = max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0)))
    if left >= cols or top >= rows or left + width <= 0 or top + height <= 0:
        raise ModelInputError(f"the ROI ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f}) lies outside the "
                              f"{cols}x{rows} image")
    return top, left, height, width
