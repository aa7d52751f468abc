"""The work behind one "run": called on a worker thread, returns a finished
`Opinion` (an answer or an error that says what to do). Qt-free."""

from __future__ import annotations

from typing import Callable

import numpy as np

from mammodesk.errors import MammoDeskError
from mammodesk.inference import (
    ModelContractError,
    ModelEntry,
    ModelInputError,
    ModelLibrary,
)
from mammodesk.inference.exam import view_answer
from mammodesk.inference.modes.base import to_nchw
from mammodesk.inference.scan import scan
from mammodesk.io import Image
from mammodesk.state.opinion import Opinion, Target
from mammodesk.state.viewer import Document

def run_opinion(library: ModelLibrary, entry: ModelEntry, document: Document, image: Image, target: Target, *,
                prefer_gpu: bool = True, progress: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> Opinion:
    opinion = Opinion(document, entry, target)
    try:
        runner = library.runner(entry.path, prefer_gpu=prefer_gpu)
        if target.kind == "scan":
            result = scan(image, runner, progress=progress, should_stop=should_stop, anatomy=document.anatomy)
            opinion.scan = result
            opinion.prediction = result.predictions[result.ranked()[0]]
        else:
            opinion.prediction = runner.predict(image, target.box, view=document.anatomy.view)
            levels = runner.card.level_rules
            if levels is not None:
                opinion.view = view_answer(image, opinion.prediction, document.name, levels, document.anatomy,
                                           document.outline)
            if progress is not None:
                progress(1, 1)
        _prepare_display(opinion)
        decoder = entry.companions.get("vae-reconstruction")
        if decoder is not None and target.kind == "whole":
            opinion.reconstruction = reconstruct(library.companion_session(decoder),
                                                 runner.card.spec.apply(image).array)
    except InterruptedError:
        opinion.error = "stopped"
    except ModelInputError as exc:
        opinion.error = str(exc)
    except ModelContractError as exc:
        opinion.error = f"{exc} - the file does not follow MammoDesk's model contract; re-export it with " \
                        "mammodesk-train export"
    except MemoryError:
        opinion.error = "out of memory running the model; close other images or run on a smaller ROI"
    except (MammoDeskError, RuntimeError, ValueError, OSError) as exc:  # onnxruntime raises RuntimeError kinds
        opinion.error = f"{type(exc).__name__}: {exc}"
    return opinion


def _prepare_display(opinion: Opinion) -> None:
    """Resample the map a view shows first (the scan map, else the predicted class's Grad-CAM) to
    source pixels and to its display copy here, in the worker, so the UI thread only draws it."""
    prediction = opinion.prediction
    shown = None
    if opinion.scan is not None:
        shown = opinion.scan.map
    elif prediction is not None and prediction.heatmaps is not None and prediction.heatmaps.names:
        name = prediction.heatmaps.names[0]
        shown = prediction.heatmaps.source(prediction.map_class(name), name)  # the map overlay_map shows
    if shown is not None and np.isfinite(shown.values).any():
        shown.display()
        shown.peak()


def reconstruct(session, model_input: np.ndarray) -> np.ndarray:
    """(model input, VAE reconstruction), both H x W float, for the reconstruction view."""
    batch = to_nchw(model_input[None])
    output = session.run(None, {session.get_inputs()[0].name: batch})[0]  # type: ignore[attr-defined]
    return np.stack([batch[0, 0], output[0, 0]]).astype(np.float32)
