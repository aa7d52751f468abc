"""Where bundled resources (icons, models) live: beside the package in a
source checkout, inside the bundle in a frozen build, or MAMMODESK_RESOURCES."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    override = os.environ.get("MAMMODESK_RESOURCES")
    if override:
        return Path(override)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def icon_path(name: str = "mammodesk.svg") -> Path:
    return resources_dir() / "icons" / name
