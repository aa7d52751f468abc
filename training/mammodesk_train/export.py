"""Export a trained network to a contract-conformant ONNX file with Grad-CAM
computed inside the graph, then verify it (timm's "export means export and
verify"): onnx.checker, onnxruntime vs torch logits, ONNX CAMs vs autograd.

Recipe (measured in DESIGN.md): split the network into `trunk` (input ->
target activations) and `head` (activations -> logits); in `forward`, get the
head's vector-Jacobian product for every class with `torch.func.vjp`; trace
with make_fx (symbolic, with decompositions for pooling backward), export
the traced graph with the dynamo exporter into a single file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import onnx
import torch
from torch import nn
from torch._decomp import get_decompositions
from torch.fx.experimental.proxy_tensor import make_fx

Activations = torch.Tensor | dict[str, torch.Tensor]
_DECOMPOSITIONS = get_decompositions([
    torch.ops.aten.max_pool2d_with_indices_backward,
    torch.ops.aten._adaptive_avg_pool2d_backward,
    torch.ops.aten.avg_pool2d_backward,
])


class GradCamGraph(nn.Module):
    """forward(x) -> (logits, cams[, cams per branch]). Raw Grad-CAM: the sum over
    channels of activations weighted by the spatial mean of d logit_k / d activation.
    When the trunk returns a dict of activations, CAMs are computed for `cam_keys`
    (default: all) and the combined map is their sum, which for branches on one grid
    is exactly Grad-CAM on their concatenation; other entries (e.g. the earlier VGG
    blocks of deep fusion) still feed the head."""

    def __init__(self, trunk: nn.Module, head: nn.Module, classes: int, cam_keys: list[str] | None = None,
                 branch_outputs: bool = False, embedding: nn.Module | None = None):
        super().__init__()
        self.trunk, self.head, self.classes = trunk, head, classes
        self.cam_keys, self.branch_outputs = cam_keys, branch_outputs
        self.embedding = embedding  # activations -> the penultimate-layer embedding (an extra output)

    def forward(self, x: torch.Tensor):
        acts = self.trunk(x)
        logits, vjp = torch.func.vjp(self.head, acts)
        per_class = []
        for k in range(self.classes):
            seed = torch.zeros_like(logits)
            seed[:, k] = 1.0
            (grads,) = vjp(seed)
            per_class.append(_weighted(acts, grads, self.cam_keys))
        extra = (self.embedding(acts),) if self.embedding is not None else ()
        if isinstance(acts, torch.Tensor):
            return (logits, torch.stack(per_class, dim=1), *extra)
        names = self.cam_keys or list(acts)
        branches = [torch.stack([cams[n] for cams in per_class], dim=1) for n in names]
        combined = branches[0]
        for branch in branches[1:]:
            combined = combined + branch
        return (logits, combined, *branches, *extra) if self.branch_outputs else (logits, combined, *extra)


class MethodModule(nn.Module):
    """A bound method (e.g. `FusionNet.block_outputs`) as a module, to split a network into trunk and head."""

    def __init__(self, method):
        super().__init__()
        self.owner = method.__self__  # registers the owner's parameters
        self.method_name = method.__name__

    def forward(self, x):
        return getattr(self.owner, self.method_name)(x)


def _weighted(acts: Activations, grads: Activations, keys: list[str] | None = None):
    if isinstance(acts, torch.Tensor):
        return (grads.mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1)
    return {n: (grads[n].mean(dim=(2, 3), keepdim=True) * acts[n]).sum(dim=1) for n in keys or acts}


def autograd_gradcam(trunk: nn.Module, head: nn.Module, x: torch.Tensor, class_index: int,
                     branch: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference a researcher writes: forward, backward of one logit, raw Grad-CAM."""
    acts = trunk(x)
    leaves = {n: a.detach().requires_grad_(True) for n, a in acts.items()} if isinstance(acts, dict) else \
        acts.detach().requires_grad_(True)
    logits = head(leaves)
    target = leaves[branch] if branch else leaves
    if isinstance(target, dict):
        raise ValueError("name a branch for multi-branch activations")
    (grad,) = torch.autograd.grad(logits[:, class_index].sum(), target)
    return logits.detach(), (grad.mean(dim=(2, 3), keepdim=True) * target).sum(dim=1).detach()


def trust_metadata(trust: Mapping | None, embedding: bool = True) -> dict:
    """build_metadata's calibration, domain and embedding keywords: a run's trust record, and
    whether the graph has the `embedding` output."""
    trust = trust or {}
    return {"calibration": trust.get("calibration"), "domain": trust.get("domain"),
            "embedding": "embedding" if embedding else None}


def weights_sha256(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class ExportReport:
    path: Path
    max_logit_error: float
    cam_correlation: dict[str, float]

    def check(self, logit_tolerance: float = 1e-4, min_correlation: float = 0.99) -> "ExportReport":
        if self.max_logit_error > logit_tolerance:
            raise RuntimeError(f"{self.path.name}: onnxruntime logits differ from torch by {self.max_logit_error:.2e}")
        weak = {k: v for k, v in self.cam_correlation.items() if v < min_correlation}
        if weak:
            raise RuntimeError(f"{self.path.name}: ONNX CAMs disagree with autograd Grad-CAM (correlation {weak})")
        return self

    def summary(self) -> str:
        cams = ", ".join(f"{name} {value:.4f}" for name, value in self.cam_correlation.items())
        return f"max logit difference {self.max_logit_error:.1e}; CAM correlation with autograd Grad-CAM: {cams}"


def export_with_cams(trunk: nn.Module, head: nn.Module, example: torch.Tensor, path: str | Path,
                     metadata: Mapping[str, str], *, classes: int, input_name: str = "image",
                     branch_outputs: Mapping[str, str] | None = None, cam_keys: list[str] | None = None,
                     embedding: nn.Module | None = None, verify: bool = True) -> ExportReport:
    """Trace, export, embed the contract metadata, and verify against torch.

    `example` is one input batch (N >= 2 so the batch dimension stays symbolic).
    `branch_outputs` maps branch names (keys of the trunk's dict) to output names;
    `cam_keys` picks which dict entries the combined CAM covers (default: the branches, or all);
    `embedding` (activations -> penultimate features) adds the output `embedding` the domain check reads.
    """
    path = Path(path)
    keys = list(branch_outputs) if branch_outputs else cam_keys
    wrapper = GradCamGraph(trunk, head, classes, keys, branch_outputs=bool(branch_outputs),
                           embedding=embedding).eval()
    if example.shape[0] < 2:
        example = example.expand(2, *example.shape[1:]).contiguous()
    names = ["logits", "cams", *(branch_outputs or {}).values(), *(["embedding"] if embedding is not None else [])]
    with _quiet_exporter():
        traced = make_fx(wrapper, tracing_mode="symbolic", decomposition_table=_DECOMPOSITIONS,
                         _allow_non_fake_inputs=True)(example)
        program = torch.onnx.export(traced, (example,), dynamo=True, external_data=False,
                                    input_names=[input_name], output_names=names,
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                                    verbose=False)
    proto = program.model_proto
    _set_metadata(proto, metadata)
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(proto, path)
    return verify_export(wrapper, path, example, branch_outputs) if verify else ExportReport(path, 0.0, {})


def _set_metadata(proto: onnx.ModelProto, metadata: Mapping[str, str] | None) -> None:
    """The contract's metadata plus the digest of the graph (nodes and weights) the app checks at load."""
    digest = hashlib.sha256(proto.graph.SerializeToString()).hexdigest()
    onnx.helper.set_model_props(proto, {**dict(metadata or {}), "mammodesk.graph_sha256": digest})


def _save(proto: onnx.ModelProto, path: Path) -> None:
    """Save, then check that the stored graph is the one the digest describes."""
    from mammodesk_train.app import graph_sha256

    onnx.save(proto, path)
    recorded = {p.key: p.value for p in proto.metadata_props}["mammodesk.graph_sha256"]
    if graph_sha256(path) != recorded:
        raise RuntimeError(f"{path.name}: the saved graph does not match its digest (serialisation changed it)")


def export_plain(module: nn.Module, example: torch.Tensor, path: str | Path, *, input_name: str = "image",
                 output_names: tuple[str, ...] = ("output",), metadata: Mapping[str, str] | None = None) -> Path:
    """A plain forward export (no CAMs) with a dynamic batch, in one file."""
    path = Path(path)
    if example.shape[0] < 2:
        example = example.expand(2, *example.shape[1:]).contiguous()
    with _quiet_exporter():
        program = torch.onnx.export(module.eval(), (example,), dynamo=True, external_data=False,
                                    input_names=[input_name], output_names=list(output_names),
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    proto = program.model_proto
    _set_metadata(proto, metadata)
    onnx.checker.check_model(proto)
    _save(proto, path)
    return path


def verify_export(wrapper: GradCamGraph, path: Path, example: torch.Tensor,
                  branch_outputs: Mapping[str, str] | None = None) -> ExportReport:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.cat([example, torch.flip(example, dims=[0])])[: max(3, example.shape[0])]  # a new batch size
    feeds = {session.get_inputs()[0].name: x.numpy()}
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    with torch.no_grad():
        acts = wrapper.trunk(x)
        reference_logits = wrapper.head(acts)
        if wrapper.embedding is not None:  # the embedding output must match torch too
            reference_embedding = wrapper.embedding(acts).numpy()
            scale = max(1.0, float(np.abs(reference_embedding).max()))
            if np.abs(outputs["embedding"] - reference_embedding).max() > 1e-4 * scale:
                raise RuntimeError(f"{path.name}: the ONNX embedding differs from torch's")
    error = float(np.abs(outputs["logits"] - reference_logits.numpy()).max())
    branches = dict(branch_outputs or {})
    combined_keys = wrapper.cam_keys or list(branches)
    correlation: dict[str, float] = {}
    for output, branch in {"cams": None, **{out: name for name, out in branches.items()}}.items():
        worst = 1.0
        for k in range(wrapper.classes):
            if branch is None and combined_keys:  # combined map = sum of the chosen maps
                reference = sum(autograd_gradcam(wrapper.trunk, wrapper.head, x, k, name)[1] for name in combined_keys)
            else:
                reference = autograd_gradcam(wrapper.trunk, wrapper.head, x, k, branch)[1]
            worst = min(worst, _correlation(outputs[output][:, k], reference.numpy()))
        correlation[output] = worst
    return ExportReport(path, error, correlation)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; constant maps count as agreeing only if they are equal
    (a near-zero map must not pass as a perfect match)."""
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.allclose(a, b, rtol=1e-5, atol=0) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


@contextlib.contextmanager
def _quiet_exporter():
    """The dynamo exporter prints progress lines to stdout and warns a lot."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
