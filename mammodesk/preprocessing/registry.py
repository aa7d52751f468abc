"""Preprocessing ops as small uniform callables (MONAI transforms): parameters
are declared once (`Param`), checked in `__init__`, and the op transforms a
`Frame` in `__call__`. The declarations also drive the live-preview UI."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from mammodesk.errors import SpecError, did_you_mean
from mammodesk.io.image import ImageMeta
from mammodesk.preprocessing.geometry import Geometry


@dataclass(frozen=True)
class Param:
    """One op parameter. `scales=True` marks a size in full-resolution pixels
    that is multiplied by the preview scale, so a 5-pixel median at full size
    stays equivalent on a 4x smaller view."""

    name: str
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    odd: bool = False
    optional: bool = False
    scales: bool = False
    doc: str = ""

    def check(self, op: str, value: Any) -> Any:
        if value is None:
            if self.optional:
                return None
            raise SpecError(f"{op}.{self.name} must be given ({self.doc or self.kind.__name__})")
        if self.kind is tuple:
            return self._check_tuple(op, value)
        value = self._coerce(op, value)
        if self.choices is not None and value not in self.choices:
            suggestion = did_you_mean(str(value), self.choices)
            raise SpecError(f"{op}.{self.name} must be one of {list(self.choices)}, got {value!r}{suggestion}")
        if self.kind in (int, float):
            if self.minimum is not None and value < self.minimum or self.maximum is not None and value > self.maximum:
                raise SpecError(f"{op}.{self.name} must be in [{self.minimum}, {self.maximum}], got {value}")
            if self.odd and int(value) % 2 == 0:
                raise SpecError(f"{op}.{self.name} must be odd, got {value}; try {value + 1}")
        return value

    def _coerce(self, op: str, value: Any) -> Any:
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            raise SpecError(f"{op}.{self.name} must be true or false, got {value!r}")
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
                raise SpecError(f"{op}.{self.name} must be an integer, got {value!r}")
            return int(value)
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SpecError(f"{op}.{self.name} must be a finite number, got {value!r}")
            return float(value)
        if not isinstance(value, self.kind):
            raise SpecError(f"{op}.{self.name} must be a {self.kind.__name__}, got {value!r}")
        return value

    def _check_tuple(self, op: str, value: Any) -> tuple[float, ...]:
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            raise SpecError(f"{op}.{self.name} must be a number or a list of numbers, got {value!r}")
        return tuple(float(v) for v in items)


@dataclass(frozen=True)
class Frame:
    """What flows through a pipeline: pixels (H x W, or H x W x C after
    `to_rgb`), where they came from, a breast/foreground mask when known
    (True = tissue), the source metadata and the preview scale."""

    pixels: np.ndarray
    geometry: Geometry
    meta: ImageMeta = field(default_factory=ImageMeta)
    mask: np.ndarray | None = None
    scale: float = 1.0

    def evolve(self, **changes: Any) -> "Frame":
        return replace(self, **changes)


class Op:
    """Base class. Subclasses set `name`, `params`, `doc` and implement `apply`."""

    name: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    doc: ClassVar[str] = ""
    geometric: ClassVar[bool] = False

    def __init__(self, **kwargs: Any):
        known = {p.name: p for p in self.params}
        for key in kwargs:
            if key not in known:
                suggestion = did_you_mean(key, known)
                options = ", ".join(known) or "none"
                raise SpecError(f"{self.name} has no parameter {key!r}{suggestion} (parameters: {options})")
        self.values = {name: p.check(self.name, kwargs.get(name, p.default)) for name, p in known.items()}

    def __getattr__(self, item: str) -> Any:
        values = self.__dict__.get("values", {})
        if item in values:
            return values[item]
        raise AttributeError(item)

    def __call__(self, frame: Frame) -> Frame:
        return self.apply(frame)

    def apply(self, frame: Frame) -> Frame:  # pragma: no cover - abstract
        raise NotImplementedError

    def scaled(self, value: float, frame: Frame, *, odd: bool = False, minimum: int = 1) -> int:
        """A full-resolution pixel size expressed at the frame's preview scale."""
        size = max(minimum, int(round(value * frame.scale)))
        if odd and size % 2 == 0:
            size += 1
        return size

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"{type(self).__name__}({args})"


OPS: dict[str, type[Op]] = {}


def register_op(cls: type[Op]) -> type[Op]:
    if not cls.name or cls.name in OPS:
        raise ValueError(f"op name {cls.name!r} is empty or already registered")
    OPS[cls.name] = cls
    return cls


def get_op(name: str) -> type[Op]:
    try:
        return OPS[name]
    except KeyError:
        suggestion = did_you_mean(name, OPS)
        raise SpecError(f"unknown op {name!r}{suggestion} (known ops: {', '.join(sorted(OPS))})") from None
