"""Measures how long the Qt event loop goes without running: a 5 ms timer
on the UI thread records the gaps between its ticks. A gap far above 5 ms
is a stall the user would feel (a frozen window)."""

from __future__ import annotations

import time

import numpy as np
from PySide6 import QtCore


class StallMeter:
    def __init__(self, interval_ms: int = 5) -> None:
        self._timer = QtCore.QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self.gaps_ms: list[float] = []
        self._last = 0.0

    def __enter__(self) -> "StallMeter":
        self._last = time.perf_counter()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.stop()
        self._tick()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps_ms.append((now - self._last) * 1000.0)
        self._last = now

    @property
    def worst_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.gaps_ms, 99)) if self.gaps_ms else 0.0

    def summary(self) -> str:
        return f"{len(self.gaps_ms)} ticks, p99 {self.p99_ms:.1f} ms, max {self.worst_ms:.1f} ms"
