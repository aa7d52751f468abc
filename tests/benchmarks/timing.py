"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, min) wall time in ms over `repeat` runs, after one warm-up."""
    return interleaved({"fn": fn}, repeat)["fn"]


def interleaved(paths: dict[str, Callable[[], object]], repeat: int) -> dict[str, tuple[float, float]]:
    """{name: (median ms, min ms)}, running the paths round-robin after one warm-up
    each, so machine noise hits every path alike."""
    for fn in paths.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeat):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}
