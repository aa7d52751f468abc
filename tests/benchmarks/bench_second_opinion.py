"""Second-opinion benchmark (run on demand, offscreen, needs torch and the runs
the bundled models were exported from):

  .venv/bin/python tests/benchmarks/bench_second_opinion.py --runs runs [--repeat 5] [--image mdb010.pgm]

Per bundled model, on one MIAS image (ROI models on one ROI at the image centre):
- app: from `run` in the main window to the heat map shown on the canvas
  (worker hand-off, preprocessing by the model's spec, onnxruntime with the
  in-graph Grad-CAM for every class, mapping to source pixels, colouring, paint);
- baseline: the same network in torch eager (the run's final weights), the same
  preprocessing, and the autograd Grad-CAM a researcher writes, for the
  predicted class only (patch models: all 25 patches as one batch).
Reported as median ms and the ratio app / baseline, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from conftest import MIAS_ARCHIVE  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

from mammodesk.inference import ModelLibrary  # noqa: E402
from mammodesk.inference.patches import cut_patches, patch_positions  # noqa: E402
from mammodesk.inference.modes.base import to_nchw  # noqa: E402
from mammodesk.io import read_image  # noqa: E402
from mammodesk.preprocessing import crop_frame  # noqa: E402
from mammodesk.qt.app import MainWindow  # noqa: E402


def torch_parts(entry, run: Path):
    """(trunk, head) of the run's final torch model, split where the export splits it."""
    import json

    from mammodesk_train.cv import load_weights
    from mammodesk_train.data.tasks import get_task
    from mammodesk_train.export import MethodModule
    from mammodesk_train.families.registry import PRESETS, empty_model
    from mammodesk_train.families.vae_cnn import VaeCnnHead, VaeCnnTrunk

    config = json.loads((run / "run.json").read_text())
    preset = PRESETS[config["preset"]]
    model = load_weights(empty_model(preset, len(get_task(config["task"]).classes)), run / "final")
    family = entry.card.family
    if family == "vae-cnn":
        return VaeCnnTrunk(model.vae).eval(), VaeCnnHead(model.vae, model.classifier).eval(), None
    model = model.eval()
    if family == "fusion-vgg":
        return MethodModule(model.block_outputs), MethodModule(model.fuse), "block5"
    return MethodModule(model.branches), MethodModule(model.combine), "resnet50v2"


def baseline(entry, trunk, head, branch, image, roi) -> None:
    from mammodesk_train.export import autograd_gradcam

    card = entry.card
    if roi is None:
        array = card.spec.apply(image).array[None]
    else:
        x0, y0, x1, y1 = (int(v) for v in roi)
        array = card.spec.run(crop_frame(image, y0, x0, y1 - y0, x1 - x0)).array
        if card.roi.mode == "patches":
            positions = patch_positions(array.shape[:2], card.roi.patch_size, card.roi.patches, card.roi.seed)
            array = cut_patches(array, positions, card.roi.patch_size)
        else:
            array = array[None]
    x = torch.from_numpy(to_nchw(array))
    with torch.no_grad():
        acts = trunk(x)
        logits = head(acts)
    index = int(logits.mean(0).argmax()) if logits.shape[1] > 1 else 0
    keys = {"block5": "block5", "resnet50v2": "resnet50v2"}
    autograd_gradcam(trunk, head, x, index, keys.get(branch) if isinstance(acts, dict) else None)


def app_latency(app, window, entry, roi, repeat: int) -> list[float]:
    state, opinion = window.opinions, window.second_opinion
    document = window.state.documents[0]
    times = []
    for _ in range(repeat + 1):
        state._cache.clear()
        state.rois[document.id] = [roi] if roi is not None else []
        done = []
        opinion.idle.connect(lambda finished=done: finished.append(1))
        start = time.perf_counter()
        opinion.run(entry, "auto")
        while not done:
            app.processEvents()
            time.sleep(0.0005)
        opinion.idle.disconnect()
        app.processEvents()  # the overlay repaint
        canvas = window.area.canvases[0]
        assert window.second_opinion.layer.overlay_on(canvas).item.isVisible() and document is canvas.document
        times.append((time.perf_counter() - start) * 1000)
    return times[1:]  # the first run creates the onnxruntime session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=Path, required=True, help="folder with one run folder per bundled model")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--image", default="mdb010.pgm")
    args = parser.parse_args()
    import tarfile
    import tempfile

    folder = Path(tempfile.mkdtemp())
    with tarfile.open(MIAS_ARCHIVE) as archive:
        archive.extract(f"mias/{args.image}", folder, filter="data")
    path = folder / "mias" / args.image
    image = read_image(path)
    torch.set_num_threads(os.cpu_count() or 1)
    app = QtWidgets.QApplication([])
    window = MainWindow(QtCore.QSettings(str(folder / "s.ini"), QtCore.QSettings.Format.IniFormat))
    window.resize(1400, 900)
    window.show()
    window.open_paths([str(path)])
    while not window.state.documents:
        app.processEvents()
        time.sleep(0.01)
    rows, cols = image.shape
    print(f"{args.image} {cols}x{rows}; torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"median of {args.repeat} after a warm-up")
    print(f"{'model':32} {'app run->overlay':>17} {'torch eager+autograd':>21} {'ratio':>6}")
    for entry in ModelLibrary().entries:
        if entry.card is None:
            continue
        run = args.runs / entry.name
        if not (run / "final").is_dir():
            print(f"{entry.name:32} skipped: no run folder {run}")
            continue
        roi = None if entry.card.roi.mode == "whole" else (cols / 2 - 60, rows / 2 - 60, cols / 2 + 60, rows / 2 + 60)
        app_ms = float(np.median(app_latency(app, window, entry, roi, args.repeat)))
        trunk, head, branch = torch_parts(entry, run)
        baseline(entry, trunk, head, branch, image, roi)  # warm-up
        eager = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            baseline(entry, trunk, head, branch, image, roi)
            eager.append((time.perf_counter() - start) * 1000)
        eager_ms = float(np.median(eager))
        print(f"{entry.name:32} {app_ms:15.1f} ms {eager_ms:19.1f} ms {app_ms / eager_ms:6.2f}")
    window.close()


if __name__ == "__main__":
    main()
