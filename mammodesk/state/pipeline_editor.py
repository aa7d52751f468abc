"""Editing a preprocessing spec step by step (the live-preprocessing panel's
state). Every edit is validated by building the spec, so the editor never
holds a spec that cannot run; a rejected edit leaves the spec unchanged and
reports why through `error`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from mammodesk.errors import MammoDeskError, SpecError
from mammodesk.preprocessing import OPS, OpSpec, Param, PipelineSpec
from mammodesk.state.events import Signal
from mammodesk.storage import write_atomic


class PipelineEditor:
    def __init__(self, spec: PipelineSpec | None = None) -> None:
        self._spec = spec or PipelineSpec()
        self.changed = Signal()  # (PipelineSpec)
        self.error = Signal()  # (str)
        self.source = "new spec"  # where the current spec came from, for the panel's title

    @property
    def spec(self) -> PipelineSpec:
        return self._spec

    @property
    def steps(self) -> tuple[OpSpec, ...]:
        return self._spec.steps

    @staticmethod
    def catalog() -> dict[str, tuple[str, tuple[Param, ...]]]:
        """Op name -> (doc, parameter declarations), for menus and forms."""
        return {name: (cls.doc, cls.params) for name, cls in sorted(OPS.items())}

    def values(self, index: int) -> dict[str, Any]:
        """Every parameter of a step, defaults filled in."""
        step = self.steps[index]
        cls = OPS[step.op]
        return {p.name: step.params.get(p.name, p.default) for p in cls.params}

    # --- edits -------------------------------------------------------------
    def add(self, op: str, index: int | None = None, params: dict[str, Any] | None = None) -> bool:
        steps = list(self.steps)
        steps.insert(len(steps) if index is None else index, OpSpec(op, dict(params or {})))
        return self._commit(steps)

    def remove(self, index: int) -> bool:
        steps = list(self.steps)
        del steps[index]
        return self._commit(steps)

    def move(self, index: int, new_index: int) -> bool:
        steps = list(self.steps)
        if not 0 <= new_index < len(steps) or new_index == index:
            return False
        steps.insert(new_index, steps.pop(index))
        return self._commit(steps)

    def set_enabled(self, index: int, enabled: bool) -> bool:
        steps = list(self.steps)
        steps[index] = replace(steps[index], enabled=enabled)
        return self._commit(steps)

    def set_param(self, index: int, name: str, value: Any) -> bool:
        steps = list(self.steps)
        steps[index] = replace(steps[index], params={**steps[index].params, name: value})
        return self._commit(steps)

    def replace_spec(self, spec: PipelineSpec, source: str) -> None:
        self._spec = spec
        self.source = source
        self.changed.emit(spec)

    # --- files -------------------------------------------------------------
    def load(self, path: str | Path) -> bool:
        try:
            spec = PipelineSpec.load(path)
        except OSError as exc:
            self.error.emit(f"Could not read {Path(path).name}: {exc.strerror or exc}")
            return False
        except SpecError as exc:
            self.error.emit(f"{Path(path).name} is not a usable spec: {exc}")
            return False
        self.replace_spec(spec, Path(path).name)
        return True

    def load_from_model(self, path: str | Path) -> bool:
        """Show exactly what a model sees: the spec embedded in its ONNX file."""
        from mammodesk.inference.contract import read_card  # onnx metadata reader, only when asked

        try:
            card = read_card(path)
        except (OSError, MammoDeskError) as exc:
            self.error.emit(f"Could not read the model's spec: {exc}")
            return False
        self.replace_spec(card.spec, f"model {card.name}")
        return True

    def save(self, path: str | Path) -> bool:
        target = Path(path)
        try:
            write_atomic(target, (self._spec.to_json() + "\n").encode("utf-8"), make_folder=False)  # the user's folder
        except OSError as exc:
            self.error.emit(f"Could not save {target.name}: {exc.strerror or exc}")
            return False
        self.source = target.name
        return True

    def _commit(self, steps: list[OpSpec]) -> bool:
        try:
            spec = PipelineSpec(steps)
        except SpecError as exc:
            self.error.emit(str(exc))
            return False
        self._spec = spec
        self.changed.emit(spec)
        return True
