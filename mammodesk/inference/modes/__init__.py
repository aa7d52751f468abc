"""Reading modes: how a model reads an image. The card's `roi.mode` names one, and `ModelCard.mode` is
its object; everything that depends on the mode (what a model takes, how it answers, where its mark
sits, what the contract asks of it, what the panel calls it) is decided there and nowhere else.

A new mode is one file in this package: a `ReadingMode` subclass under `@reading_mode`. Every module
here is imported below, so it registers by being here."""

from __future__ import annotations

import importlib
import pkgutil

from mammodesk.inference.modes.base import MODES, ReadingMode, reading_mode

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MODES", "ReadingMode", "reading_mode"]
