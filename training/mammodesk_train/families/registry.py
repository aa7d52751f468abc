"""Every preset of every family, and how to build a family's trainer and an
empty model to load a run's final weights into."""

from __future__ import annotations

from mammodesk_train.families import fusion_vgg, hybrid, simclr, transfer, vae_cnn

PRESETS = {**vae_cnn.PRESETS, **fusion_vgg.PRESETS, **hybrid.PRESETS, **simclr.PRESETS,
           **transfer.PRESETS}
_FAMILIES = {"vae-cnn": vae_cnn.VaeCnnFamily, "fusion-vgg": fusion_vgg.FusionFamily, "hybrid": hybrid.HybridFamily,
             "simclr": simclr.SimCLRFamily, "transfer": transfer.TransferFamily}


def family_for(preset, device: str = "auto", progress: bool = True):
    return _FAMILIES[preset.family](preset, device=device, progress=progress)


def empty_model(preset, classes: int):
    """The untrained network(s) of a preset, shaped for `classes`."""
    return preset.build(classes)
