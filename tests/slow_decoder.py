"""A stand-in decoder for the time-limit tests: importable by name in spawned workers."""

from __future__ import annotations

import time


def hang_on(path: str) -> str:
    if "hangs" in path:
        time.sleep(3600)
    return path.upper()


def slow(path: str) -> str:
    time.sleep(1.0)
    return path
