"""A minimal evented-state primitive (napari's EventedModel, without the
dependency): state objects own `Signal`s; views connect callbacks."""

from __future__ import annotations

from typing import Any, Callable


class Signal:
    """Callbacks run synchronously, in connection order, on the emitting thread.
    State is changed only from the UI thread, so that is where they run."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> Callable[..., Any]:
        self._slots.append(slot)
        return slot

    def disconnect(self, slot: Callable[..., Any]) -> None:
        self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self._slots):
            slot(*args)
