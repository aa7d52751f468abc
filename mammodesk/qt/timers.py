"""One restartable single-shot timer per deferred job. An interval of 0 makes a
zero timer: it fires once the window's queued events are handled, which
`QTimer.singleShot(0, ...)` does not promise (that one is a queued event of its
own, run in the same batch as the paints it should let through). Restarting a
pending timer keeps it one run."""

from __future__ import annotations

from typing import Callable

from PySide6 import QtCore


def single_shot_timer(parent: QtCore.QObject, interval_ms: int, slot: Callable[[], None]) -> QtCore.QTimer:
    timer = QtCore.QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(interval_ms)
    timer.timeout.connect(slot)
    return timer
