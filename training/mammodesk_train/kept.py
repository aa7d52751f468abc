"""Finished steps of a run kept on disk, so that `--resume` continues a stopped run without doing them again.

A step is kept as JSON with the fingerprint of everything it depends on (`fingerprint`): the data, labels,
patients, settings, seed and this code's version. A kept step is used only under the same fingerprint;
anything else is done again, never mixed in."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np


def fingerprint(about: dict) -> str:
    from mammodesk_train import __version__

    return hashlib.sha256(json.dumps({**about, "code": __version__}, sort_keys=True,
                                     default=_plain).encode()).hexdigest()


def load(path: Path | None, key: str):
    """The kept result at `path` under `key`, or None (absent, damaged or from another run)."""
    if path is None or not path.is_file():
        return None
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return kept.get("result") if isinstance(kept, dict) and kept.get("key") == key else None


def keep(path: Path | None, key: str, result) -> None:
    """Write atomically: a kill leaves the old file or the new one, never half of one."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps({"key": key, "result": result}, default=_plain))
    os.replace(partial, path)


def plain(result):
    """The result as it reads back from disk (numpy values as lists and numbers): a step done now and one
    taken from disk give the same report."""
    return json.loads(json.dumps(result, default=_plain))


def _plain(value):
    """numpy values as JSON's own."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not kept as JSON")
