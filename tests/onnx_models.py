"""Tiny contract-conformant ONNX models built with onnx.helper (no torch).

The graph: m = mean(image) per sample; logits = m * W + B, so with the
default weights class 1 wins when the processed input's mean is above 0.5;
cams = 0 * m + C, a constant map with one hot cell at `cam_peak`, so tests
know exactly where the explanation points in model space."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mammodesk.inference import CamOutput, InputLayout, RoiMode, build_metadata
from mammodesk.preprocessing import PipelineSpec

WHOLE_SPEC = [{"op": "crop_to_breast"}, {"op": "flip_laterality"},
              {"op": "resize", "params": {"width": 64, "height": 64, "keep_aspect": False}}, {"op": "normalise"}]


def build_model(path: Path, *, mode: str = "whole", labels=("normal", "abnormal"), size: int = 64,
                channels: int = 1, activation: str = "softmax", spec: list | None = None, cams: bool = True,
                cam_hw: tuple[int, int] = (8, 8), cam_peak: tuple[int, int] = (2, 5), roi: dict | None = None,
                graph_size: int | None = None, graph_classes: int | None = None, branches: bool = False,
                threshold: float = 0.5, digest: bool = True, embedding: bool = False,
                metadata: dict[str, Any] | None = None, drop_keys: tuple[str, ...] = ()) -> Path:
    """`digest` records the graph's sha256 as mammodesk-train does (False: an older export);
    `embedding` adds an `embedding` output, the input's mean (N x 1), for the domain check."""
    classes = graph_classes or (1 if activation == "sigmoid" and len(labels) == 2 else len(labels))
    side = graph_size or size
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Flatten", ["m"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["scaled"]),
        helper.make_node("Add", ["scaled", "B"], ["logits"]),
    ]
    weights = np.linspace(-10, 10, classes, dtype=np.float32)[None] if classes > 1 else np.array([[20.0]], np.float32)
    bias = -weights * threshold  # the positive class wins when the mean exceeds `threshold`
    inits = [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias.astype(np.float32), "B")]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])]
    cam_outputs: dict[str, CamOutput] = {}
    if cams:
        peak = np.zeros((1, classes, *cam_hw), np.float32)
        peak[:, :, cam_peak[0], cam_peak[1]] = 1.0
        peak[:, 0] *= 2.0  # class 0's map also peaks there, twice as high, and is negative elsewhere
        peak[:, 0] -= 0.1
        inits += [numpy_helper.from_array(peak, "C"), numpy_helper.from_array(np.zeros((), np.float32), "zero")]
        nodes += [helper.make_node("Mul", ["m", "zero"], ["m0"]), helper.make_node("Add", ["m0", "C"], ["cams"])]
        outputs.append(helper.make_tensor_value_info("cams", TensorProto.FLOAT, ["N", classes, *cam_hw]))
        cam_outputs["combined"] = CamOutput("cams", "block5")
        if branches:
            nodes.append(helper.make_node("Neg", ["cams"], ["cams_b"]))
            outputs.append(helper.make_tensor_value_info("cams_b", TensorProto.FLOAT, ["N", classes, *cam_hw]))
            cam_outputs["branch_b"] = CamOutput("cams_b", "b.block")
    if embedding:
        outputs.append(helper.make_tensor_value_info("flat", TensorProto.FLOAT, ["N", 1]))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", channels, side, side])],
        outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tests")
    model.ir_version = 8
    roi_mode = RoiMode(**(roi or {"mode": mode}))
    if spec is None:
        spec = list(WHOLE_SPEC)
        if mode != "whole":
            spec = [{"op": "median", "params": {"ksize": 3}},
                    {"op": "resize", "params": {"width": roi_mode.size or size, "height": roi_mode.size or size}},
                    {"op": "normalise"}]
        if channels == 3:
            spec = spec + [{"op": "to_rgb"}]
    props = build_metadata(
        family="test", name=path.stem, task="normal_vs_abnormal", labels=list(labels), spec=PipelineSpec(spec),
        input=InputLayout("image", channels, size, size), activation=activation, roi=roi_mode,
        training={"dataset": "synthetic", "split": "none"}, metrics={"how": "not evaluated"},
        weights_sha256="0" * 64, tool_version="test", cams=cam_outputs or None, embedding="flat" if embedding else None)
    props.update({f"mammodesk.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    for key in drop_keys:
        props.pop(f"mammodesk.{key}", None)
    if digest:
        import hashlib

        props["mammodesk.graph_sha256"] = hashlib.sha256(model.graph.SerializeToString()).hexdigest()
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path
