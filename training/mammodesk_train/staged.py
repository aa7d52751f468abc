"""Staged fine-tuning (MODELS.md family 4) as one reusable strategy:
(1) only the new head trains, (2) the last third of the backbone's layers
join, (3) everything trains, with the learning rate cut on plateaus, until
the epoch limit, `patience` epochs without improvement, or the learning rate
falling below `min_lr`. Frozen layers stay frozen entirely: their BatchNorm
layers run on their stored statistics (as Keras does with trainable=False)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn
from torch.utils.data import Dataset

from mammodesk_train.engine import FitConfig, FitResult, fit


@dataclass(frozen=True)
class Stage:
    name: str
    trainable: str  # "head" | "last_third" | "all"
    epochs: int
    lr: float
    patience: int | None = None
    min_lr: float = 0.0
    plateau: bool = False  # cut the lr x0.1 after 3 epochs without improvement


STUDY_STAGES = (
    Stage("head", "head", 3, 1e-3),
    Stage("last-third", "last_third", 10, 1e-4),
    Stage("all", "all", 150, 1e-5, patience=10, min_lr=1e-8, plateau=True),
)


def backbone_layers(backbone: nn.Module) -> list[nn.Module]:
    """The backbone's layers in forward order: modules that hold parameters themselves."""
    return [m for m in backbone.modules() if any(True for _ in m.parameters(recurse=False))]


class StagedModel(nn.Module):
    """Mixin base: a `backbone` and a `head`; `set_stage` freezes what the stage leaves out."""

    frozen: tuple[nn.Module, ...] = ()

    def set_stage(self, trainable: str) -> int:
        layers = backbone_layers(self.backbone)
        keep = {"head": 0, "last_third": max(1, len(layers) // 3), "all": len(layers)}[trainable]
        first_trainable = len(layers) - keep
        for index, layer in enumerate(layers):
            layer.requires_grad_(index >= first_trainable)
        self.frozen = tuple(layers[:first_trainable])
        self.train(self.training)
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def train(self, mode: bool = True):
        super().train(mode)
        for layer in self.frozen:
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                layer.eval()
        return self


def staged_fit(model: StagedModel, loss_fn, train: Dataset, val: Dataset | None, base: FitConfig,
               stages=STUDY_STAGES, *, device=None, out_dir: Path | None = None,
               progress: bool = True) -> list[tuple[Stage, int, FitResult]]:
    """Run the stages in order on one model; returns (stage, trainable parameters, fit result)."""
    results = []
    for stage in stages:
        trainable = model.set_stage(stage.trainable)
        config = replace(base, epochs=stage.epochs, lr=stage.lr, patience=stage.patience, min_lr=stage.min_lr,
                         schedule="plateau" if stage.plateau else "constant", warmup_epochs=0, gamma=0.1)
        result = fit(model, loss_fn, train, config, val=val, device=device, out_dir=out_dir,
                     name=f"stage-{stage.name}", progress=progress)
        results.append((stage, trainable, result))
    model.set_stage("all")
    return results
