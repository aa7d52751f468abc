"""Every model family of `mammodesk-train fit`. Each module of this package registers its family class
with `@register_family`, which carries the family's name, presets, unit and catalogue text; nothing
here names a family, so a new one is its module (and its network under `models/`)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Mapping, TypeVar

from mammodesk_train.families.protocol import CatalogueEntry

FAMILIES: dict[str, type] = {}
PRESETS: dict[str, Any] = {}
_C = TypeVar("_C", bound=type)


def register_family(name: str, *, presets: Mapping[str, Any], unit: str = "images",
                    catalogue: tuple[CatalogueEntry, ...] = (), default: bool = False) -> Callable[[_C], _C]:
    """Class decorator. `unit`: what one sample is ("images", or "ROIs" for families that classify regions);
    `catalogue`: the tasks the app lists for this family; `default`: the app's default second opinion (listed
    first)."""

    def register(cls: _C) -> _C:
        if name in FAMILIES:
            raise ValueError(f"model family {name!r} is registered twice")
        strays = [p for p, preset in presets.items() if preset.family != name]
        clashes = sorted(set(presets) & set(PRESETS))
        if strays or clashes:
            raise ValueError(f"family {name!r}: presets of another family {strays} or taken names {clashes}")
        cls.family_name, cls.unit, cls.catalogue, cls.default = name, unit, tuple(catalogue), default
        FAMILIES[name] = cls
        PRESETS.update(presets)
        return cls

    return register


def family_for(preset, device: str = "auto", progress: bool = True):
    return FAMILIES[preset.family](preset, device=device, progress=progress)


def empty_model(preset, classes: int):
    """The untrained network(s) of a preset, shaped for `classes`."""
    return preset.build(classes)


def unit_of(family: str) -> str:
    """What one sample of a family is, for cards ("images" for a family this version does not know)."""
    return getattr(FAMILIES.get(family), "unit", "images")


for _module in pkgutil.iter_modules(importlib.import_module("mammodesk_train.families").__path__):
    if _module.name not in ("registry", "protocol"):
        importlib.import_module(f"mammodesk_train.families.{_module.name}")
