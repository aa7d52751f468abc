"""A preprocessing spec is data: a versioned JSON list of {op, params}. The
same spec drives the live preview, the training loader and inference (it
travels inside every exported model)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import cv2
import numpy as np

from mammodesk.errors import SpecError
from mammodesk.io.image import Image
from mammodesk.preprocessing.geometry import Geometry
from mammodesk.preprocessing.registry import Frame, Op, get_op

SPEC_FORMAT = "mammodesk.preprocessing"
SPEC_VERSION = 1


@dataclass(frozen=True)
class OpSpec:
    op: str
    params: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True

    def build(self) -> Op:
        return get_op(self.op)(**dict(self.params))


@dataclass(frozen=True)
class ProcessedImage:
    """A pipeline's output: the model-ready array (H x W or H x W x C), where
    its pixels came from, and the breast/foreground mask when an op found one."""

    array: np.ndarray
    geometry: Geometry
    mask: np.ndarray | None = None


class PipelineSpec:
    """An ordered, validated list of ops. Construction builds every op, so a
    spec that exists is a spec that runs."""

    def __init__(self, ops: Iterable[OpSpec | Mapping[str, Any]] = ()):
        self.steps: tuple[OpSpec, ...] = tuple(_as_op_spec(i, s) for i, s in enumerate(ops))
        self._ops: list[Op | None] = []
        for index, step in enumerate(self.steps):
            try:
                self._ops.append(step.build() if step.enabled else None)
            except SpecError as exc:
                raise SpecError(f"step {index + 1} ({step.op}): {exc}") from None

    # --- serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SPEC_FORMAT,
            "version": SPEC_VERSION,
            "ops": [
                {"op": s.op, "params": _jsonable(self._ops[i].values if self._ops[i] else s.params),
                 **({} if s.enabled else {"enabled": False})}
                for i, s in enumerate(self.steps)
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PipelineSpec":
        if not isinstance(data, Mapping):
            raise SpecError(f"a spec is a JSON object, got {type(data).__name__}")
        if data.get("format", SPEC_FORMAT) != SPEC_FORMAT:
            raise SpecError(f"not a MammoDesk preprocessing spec (format {data.get('format')!r})")
        version = data.get("version")
        if version != SPEC_VERSION:
            raise SpecError(f"spec version {version!r} is not supported (this MammoDesk reads {SPEC_VERSION})")
        ops = data.get("ops")
        if not isinstance(ops, list):
            raise SpecError("spec 'ops' must be a list of {op, params}")
        return cls(ops)

    @classmethod
    def from_json(cls, text: str) -> "PipelineSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"spec is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> "PipelineSpec":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PipelineSpec) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"PipelineSpec({[s.op for s in self.steps]})"

    # --- running ---------------------------------------------------------
    @property
    def ops(self) -> tuple[Op, ...]:
        return tuple(op for op in self._ops if op is not None)

    def apply(self, image: Image, *, scale: float = 1.0) -> ProcessedImage:
        """Run the spec on an image. `scale` < 1 runs it on a downscaled view
        (live preview) with kernel sizes scaled to stay equivalent."""
        return self.run(initial_frame(image, scale))

    def run(self, frame: Frame) -> ProcessedImage:
        for op in self.ops:
            frame = op(frame)
        return ProcessedImage(frame.pixels, frame.geometry, frame.mask)


def initial_frame(image: Image, scale: float = 1.0) -> Frame:
    """The frame a pipeline starts from; downscaled (INTER_AREA) when scale < 1."""
    if not 0 < scale <= 1:
        raise SpecError(f"preview scale must be in (0, 1], got {scale}")
    pixels = image.pixels
    geometry = Geometry.identity(image.shape)
    valid = None if image.meta.padding_mask is None else ~image.meta.padding_mask
    if scale < 1:
        rows, cols = image.shape
        size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        geometry = geometry.scale_to(size[1], size[0])
        if valid is not None:
            valid = cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return Frame(pixels=pixels, geometry=geometry, meta=image.meta, mask=valid, scale=scale)


def crop_frame(image: Image, y0: int, x0: int, rows: int, cols: int) -> Frame:
    """A frame over a source window (an ROI); parts outside the image are zero
    and marked invalid in the mask, and the geometry remembers the crop."""
    src_rows, src_cols = image.shape
    pixels = np.zeros((rows, cols), image.dtype)
    valid = np.zeros((rows, cols), bool)
    ys, xs = _overlap(y0, rows, src_rows), _overlap(x0, cols, src_cols)
    target = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
    pixels[target] = image.pixels[ys, xs]
    padding = image.meta.padding_mask
    valid[target] = True if padding is None else ~padding[ys, xs]
    return Frame(pixels=pixels, geometry=Geometry.identity(image.shape).crop(y0, x0, rows, cols),
                 meta=image.meta, mask=valid)


def _overlap(start: int, length: int, size: int) -> slice:
    """The part of [start, start + length) inside [0, size): empty (never reversed) when they do not meet."""
    low = min(max(0, start), size)
    return slice(low, max(low, min(size, start + length)))


def _as_op_spec(index: int, step: OpSpec | Mapping[str, Any]) -> OpSpec:
    if isinstance(step, OpSpec):
        return step
    if not isinstance(step, Mapping) or "op" not in step:
        raise SpecError(f"step {index + 1}: each step is an object with an 'op' name, got {step!r}")
    unknown = set(step) - {"op", "params", "enabled"}
    if unknown:
        raise SpecError(f"step {index + 1}: unknown keys {sorted(unknown)} (allowed: op, params, enabled)")
    params = step.get("params", {}) or {}
    if not isinstance(params, Mapping):
        raise SpecError(f"step {index + 1} ({step['op']}): params must be an object")
    return OpSpec(str(step["op"]), dict(params), bool(step.get("enabled", True)))


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
