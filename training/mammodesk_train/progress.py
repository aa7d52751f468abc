"""One progress line for long steps, readable in a terminal and in a log: done of total, the rate of the work
actually done (cached items are counted apart, they cost nothing) and the time left at that rate."""

from __future__ import annotations

import sys
import time

from mammodesk_train.app import duration


class Progress:
    def __init__(self, total: int, what: str, unit: str = "images", *, every_s: float = 15.0, stream=None) -> None:
        self.total, self.what, self.unit, self.every_s = total, what, unit, every_s
        self.stream = stream or sys.stdout
        self.done = self.cached = 0
        self.started = self.last = time.perf_counter()

    def step(self, *, cached: bool = False) -> None:
        self.done += 1
        self.cached += cached
        now = time.perf_counter()
        if now - self.last >= self.every_s or self.done == self.total:
            self.last = now
            print("  " + self.line(now), file=self.stream, flush=True)

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.perf_counter()) - self.started
        worked = self.done - self.cached
        rate = worked / elapsed if elapsed > 0 and worked else None
        text = f"{self.what}: {self.done}/{self.total} {self.unit}"
        if self.cached:
            text += f" ({self.cached} from the cache)"
        if rate:
            text += f", {rate:.1f}/s"
        left = self.total - self.done
        if left and rate:
            text += f", about {duration(left / rate)} left"
        elif not left:
            text += f", {duration(elapsed)}"
        return text
