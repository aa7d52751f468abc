"""Backbone files: `mammodesk-train pretrain --method simclr` writes the
encoder's weights (`NAME.pt`, plain tensors, loaded with weights_only=True)
and `NAME.json` (architecture, width, stem, input, the data and the hashed
patient keys it saw, the loss curve). `fit --init NAME.pt` starts a family's
ResNet50V2 from it; the run records which CV patients the pretraining saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mammodesk_train.data.builders import to_chw
from mammodesk_train.data.sources import load_source
from mammodesk_train.engine import pick_device
from mammodesk_train.simclr.pretrain import pretrain, save_backbone
from mammodesk_train.splits import patient_key_hash

ARCHITECTURE = "ResNet50V2"


def pretrain_backbone(data: str, out: Path, preset, *, seed: int = 0, device: str = "auto",
                      progress: bool = True) -> dict:
    """Pretrain on every image of `data` (labels unused); returns the description written beside it."""
    records = load_source(data)
    spec = preset.spec()
    images = np.stack([to_chw(spec.apply(record.load()).array) for record in records])
    net, history = pretrain(images, preset.pretrain, width=preset.width, seed=seed, device=pick_device(device),
                            augment=preset.augment, progress=progress)
    kind, _, location = data.partition(":")
    about = {
        "method": "simclr", "architecture": ARCHITECTURE, "naming": "mammodesk",
        "stem": "small-input: 3x3 stride-1 convolution, no max-pool", "width": preset.width,
        "in_channels": int(images.shape[1]), "input_size": preset.size, "spec": json.loads(spec.to_json()),
        "data": f"{kind}:{Path(location).name}", "images": len(records),
        "patient_key_hashes": sorted({patient_key_hash(r.patient_key) for r in records}),
        "config": {k: getattr(preset.pretrain, k) for k in vars(preset.pretrain)},
        "augment": {k: getattr(preset.augment, k) for k in vars(preset.augment)}, "seed": seed,
        "final_loss": history[-1]["loss"], "views_per_s": float(np.median([h["views_per_s"] for h in history])),
        "history": history,
    }
    save_backbone(out, net, about)
    return about


def read_about(path: Path) -> dict:
    about_path = Path(path).with_suffix(".json")
    if not about_path.is_file():
        raise ValueError(f"{path}: no {about_path.name} beside it; was it written by mammodesk-train pretrain?")
    return json.loads(about_path.read_text())


def init_resnet_v2(encoder: torch.nn.Module, path: Path) -> list[str]:
    """Load a backbone file into a ResNet50V2 of the same width. Returns the tensors left
    at their initial values (the stem, when the file's stem differs); any other mismatch
    is an error naming it."""
    about = read_about(path)
    if about.get("architecture") != ARCHITECTURE:
        raise ValueError(f"{path}: a {about.get('architecture')} backbone cannot start a {ARCHITECTURE}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    target = encoder.state_dict()
    problems, skipped = [], []
    other_stem = "stem.weight" in state and state["stem.weight"].shape != target["stem.weight"].shape
    for name, tensor in target.items():
        if other_stem and name.startswith("stem."):
            skipped.append(name)  # a small-input (3x3) stem into a 7x7 one, or 1 -> 3 channels: relearned
        elif name not in state:
            problems.append(f"missing {name}")
        elif state[name].shape != tensor.shape:
            problems.append(f"{name}: file {tuple(state[name].shape)}, model {tuple(tensor.shape)}")
    problems += [f"unexpected {name}" for name in state if name not in target]
    if problems:
        width = about.get("width")
        raise ValueError(f"{path} (width {width}) does not fit this ResNet50V2: " + "; ".join(problems[:6])
                         + (f" (+{len(problems) - 6} more)" if len(problems) > 6 else ""))
    with torch.no_grad():
        for name, tensor in target.items():
            if name not in skipped:
                tensor.copy_(state[name])
    return skipped


def seen_patients(path: Path, groups) -> int:
    """How many of these patients' images the backbone's pretraining saw (unlabelled)."""
    seen = set(read_about(path).get("patient_key_hashes", []))
    return len({patient_key_hash(g) for g in groups} & seen)
