"""Backbone files: `mammodesk-train pretrain --method simclr` writes the
encoder's weights (`NAME.pt`, plain tensors, loaded with weights_only=True)
and `NAME.json` (architecture, width, stem, input, the data and the hashed
patient keys it saw, the loss curve). `fit --init NAME.pt` starts a family's
ResNet50V2 or VGG16 trunk from it; the run records which CV patients the
pretraining saw.

Two kinds of input: whole breasts at the preset's size (the study's SimCLR),
or `windows` random in-breast windows per image at MIAS scale (0.2 mm per
pixel), the scale the ROI families work at - every unlabelled pixel we have,
cut the way the ROI models will see it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from mammodesk_train.app import Image
from mammodesk_train.app import PipelineSpec, crop_frame

from mammodesk_train.backbones.resnet_v2 import ResNet50V2
from mammodesk_train.backbones.vgg import VGG
from mammodesk_train.data.builders import _normal_positions, to_chw
from mammodesk_train.data.sources import MIAS_SPACING_MM, Record, load_source
from mammodesk_train.engine import pick_device
from mammodesk_train.simclr.model import ARCHITECTURES
from mammodesk_train.simclr.pretrain import pretrain, save_backbone
from mammodesk_train.splits import patient_key_hash

UNKNOWN_SPACING_ROWS = 1024  # no pixel spacing: scale the image to MIAS's 1024 rows (about 20 cm of film)


def pretrain_backbone(data: str | Sequence[str], out: Path, preset, *, seed: int = 0, device: str = "auto",
                      progress: bool = True, architecture: str = "resnet50v2", windows: int = 0,
                      window: int = 120) -> dict:
    """Pretrain on every image of `data` (labels unused); returns the description written beside it."""
    sources = [data] if isinstance(data, str) else list(data)
    records = [record for source in sources for record in load_source(source)]
    if windows:
        images = window_views(records, windows, window, preset.size, seed)
        spec = {"windows_per_image": windows, "window_px": window, "spacing_mm": MIAS_SPACING_MM,
                "size": preset.size, "intensity": "bit-depth range (absolute intensity kept)"}
    else:
        whole = preset.spec()
        images = np.stack([to_chw(whole.apply(record.load()).array) for record in records])
        spec = json.loads(whole.to_json())
    small_input = not windows  # 32-pixel whole breasts: SimCLR's small-input stem; windows: the standard one
    net, history = pretrain(images, preset.pretrain, width=preset.width, seed=seed, device=pick_device(device),
                            augment=preset.augment, progress=progress, architecture=architecture,
                            small_input=small_input)
    about = {
        "method": "simclr", "architecture": ARCHITECTURES[architecture], "naming": "mammodesk",
        "stem": ("VGG16" if architecture == "vgg16" else "small-input: 3x3 stride-1 convolution, no max-pool"
                 if small_input else "standard: 7x7 stride-2 convolution and max-pool"),
        "width": preset.width, "in_channels": int(images.shape[1]), "input_size": preset.size, "spec": spec,
        "data": [f"{kind}:{Path(location).name}" for kind, _, location in (s.partition(":") for s in sources)],
        "images": len(records), "views": int(len(images)),
        "patient_key_hashes": sorted({patient_key_hash(r.patient_key) for r in records}),
        "config": {k: getattr(preset.pretrain, k) for k in vars(preset.pretrain)},
        "augment": {k: getattr(preset.augment, k) for k in vars(preset.augment)}, "seed": seed,
        "final_loss": history[-1]["loss"], "views_per_s": float(np.median([h["views_per_s"] for h in history])),
        "history": history,
    }
    save_backbone(out, net, about)
    return about


def mias_scale(image: Image) -> np.ndarray:
    """The image's pixels resampled to 0.2 mm per pixel (its spacing, or 1024 rows when unknown)."""
    spacing = image.meta.pixel_spacing_mm
    factor = spacing[0] / MIAS_SPACING_MM if spacing else UNKNOWN_SPACING_ROWS / image.shape[0]
    if abs(factor - 1.0) < 1e-3:
        return image.pixels
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image.pixels, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)


def window_views(records: Sequence[Record], count: int, window: int, size: int, seed: int) -> np.ndarray:
    """(N * count, 1, size, size): random windows (90 % breast) at MIAS scale, intensity by bit depth."""
    rng = np.random.default_rng(seed)
    spec = PipelineSpec([{"op": "resize", "params": {"width": size, "height": size, "keep_aspect": False}},
                         {"op": "normalise", "params": {"mode": "range"}}])
    views = []
    for record in records:
        image = record.load()
        scaled = Image(mias_scale(image), image.meta)
        for top, left in _normal_positions(scaled.pixels, window, count, rng, 0.9):
            views.append(to_chw(spec.run(crop_frame(scaled, top, left, window, window)).array))
    if not views:
        raise ValueError("no breast windows found in the pretraining images")
    return np.stack(views)


def read_about(path: Path) -> dict:
    about_path = Path(path).with_suffix(".json")
    if not about_path.is_file():
        raise ValueError(f"{path}: no {about_path.name} beside it; was it written by mammodesk-train pretrain?")
    return json.loads(about_path.read_text())


FIRST_LAYER = {ResNet50V2: "stem.", VGG: "features.0."}


def init_backbone(encoder: nn.Module, path: Path) -> list[str]:
    """Load a backbone file into a ResNet50V2 or VGG16 of the same width. A first layer
    that takes 3 channels where the file's took 1 gets the grey filters split over the
    three (exact for grey images repeated to RGB); a first layer of another shape (a 3x3
    small-input stem into a 7x7 one) is relearned and returned. Any other mismatch is an
    error naming it."""
    kind = next((k for k in FIRST_LAYER if isinstance(encoder, k)), None)
    about = read_about(path)
    if kind is None or about.get("architecture") != kind.__name__.replace("VGG", "VGG16"):
        raise ValueError(f"{path}: a {about.get('architecture')} backbone cannot start a {type(encoder).__name__}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    target = encoder.state_dict()
    first = FIRST_LAYER[kind]
    problems, skipped = [], []
    for name, tensor in target.items():
        if name not in state:
            problems.append(f"missing {name}")
        elif state[name].shape != tensor.shape:
            if name.startswith(first) and name.endswith("weight") and state[name].shape[1] == 1 \
                    and state[name].shape[2:] == tensor.shape[2:] and tensor.shape[1] == 3:
                state[name] = state[name].repeat(1, 3, 1, 1) / 3  # grey filters over repeated channels
            elif name.startswith(first):
                skipped.append(name)
            else:
                problems.append(f"{name}: file {tuple(state[name].shape)}, model {tuple(tensor.shape)}")
    if skipped:
        skipped = [name for name in target if name.startswith(first)]
    problems += [f"unexpected {name}" for name in state if name not in target]
    if problems:
        width = about.get("width")
        raise ValueError(f"{path} (width {width}) does not fit this {type(encoder).__name__}: "
                         + "; ".join(problems[:6]) + (f" (+{len(problems) - 6} more)" if len(problems) > 6 else ""))
    with torch.no_grad():
        for name, tensor in target.items():
            if name not in skipped:
                tensor.copy_(state[name])
    return skipped


def seen_patients(path: Path, groups) -> int:
    """How many of these patients' images the backbone's pretraining saw (unlabelled)."""
    seen = set(read_about(path).get("patient_key_hashes", []))
    return len({patient_key_hash(g) for g in groups} & seen)
