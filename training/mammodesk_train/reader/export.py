"""The reader as a contract ONNX file (roi.mode "image"): outputs `logits` (the
image logit), `patch_logits` (the map, batch x 1 x h x w) and `embedding` (the
mean trunk feature over breast cells, for the domain check), verified against
torch: the image logit, the whole map, and the map against autograd Grad-CAM of
the image logit at the trunk's output. With a linear patch classifier they must be
the same map up to a positive scale and the head's bias; with a hidden layer (or
the flipped reading averaged in) the map is the patch classifier's own (patch
probabilities), and the correlation is reported, not required."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import nn

from mammodesk_train.export import _correlation, export_plain
from mammodesk_train.reader.model import WholeImageReader


class ReaderGraph(nn.Module):
    def __init__(self, reader: WholeImageReader):
        super().__init__()
        self.reader = reader

    def forward(self, x: torch.Tensor):
        features = self.reader.features(x)
        logit, patch = self.reader.read(x, features)
        weights = self.reader.breast_cells(x).float()[:, None]
        embedding = (features * weights).sum(dim=(2, 3)) / weights.sum(dim=(2, 3)).clamp(min=1.0)  # as it stands
        return logit, patch, embedding


def gradcam_of_image_logit(reader: WholeImageReader, x: torch.Tensor) -> torch.Tensor:
    """The reference: autograd Grad-CAM of the image logit at the trunk's output (N x h x w; the upright
    reading's, with `flip_reading`)."""
    features = reader.features(x).detach().requires_grad_(True)
    logit = reader.pool(reader.head(features)[:, 0], reader.breast_cells(x))
    (grad,) = torch.autograd.grad(logit.sum(), features)
    return (grad.mean(dim=(2, 3), keepdim=True) * features).sum(dim=1).detach()


def export_reader(reader: WholeImageReader, example: torch.Tensor, path: Path, metadata: Mapping[str, str]) -> dict:
    """Export and verify; returns the parity figures (raises when they fail)."""
    import onnxruntime as ort

    reader = reader.eval()
    graph = ReaderGraph(reader).eval()
    export_plain(graph, example, path, output_names=("logits", "patch_logits", "embedding"), metadata=metadata)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.cat([example, torch.flip(example, dims=[0])])[: max(3, example.shape[0])]
    logits, patch, embedding = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        ref_logits, ref_patch, ref_embedding = graph(x)
    cam = gradcam_of_image_logit(reader, x).numpy()
    # a hidden layer or a flipped reading: the map is the patch classifier's, not the upright reading's CAM
    linear = isinstance(reader.head, nn.Conv2d) and not reader.flip_reading
    bias = float(reader.head.bias.detach()) if linear else 0.0
    figures = {
        "max_logit_error": float(np.abs(logits - ref_logits.numpy()).max()),
        "max_map_error": float(np.abs(patch - ref_patch.numpy()).max()),
        "max_embedding_error": float(np.abs(embedding - ref_embedding.numpy()).max()),
        "map_vs_gradcam_correlation": min(_correlation(patch[i, 0] - bias, cam[i]) for i in range(len(x))),
    }
    if figures["max_logit_error"] > 1e-3 or figures["max_map_error"] > 1e-3:
        raise RuntimeError(f"{path.name}: onnxruntime differs from torch ({figures})")
    if linear and figures["map_vs_gradcam_correlation"] < 0.999:
        raise RuntimeError(f"{path.name}: the patch map is not the image logit's Grad-CAM ({figures})")
    return figures
