"""The app's catalogue of model families (`resources/models/families.json`), derived from the registered
families, never kept by hand: `mammodesk-train catalogue` writes it, and a test checks that
the committed file is what this module makes."""

from __future__ import annotations

import json
from pathlib import Path

from mammodesk_train.families.protocol import CatalogueEntry
from mammodesk_train.families.registry import FAMILIES

ABOUT = ("Every model family of MODELS.md, the task each is built for and what it answers; the Models panel lists "
         "each with its bundled model, or says why none is bundled. Figures: 5-fold patient-level CV on the MIAS "
         "development images (mammodesk-train).")


def catalogue() -> dict:
    """Bundled tasks before the others; the default second opinion first, then the families by name."""
    rows = [(name, entry) for name, cls in sorted(FAMILIES.items(), key=lambda item: (not item[1].default, item[0]))
            for entry in cls.catalogue]
    rows.sort(key=lambda row: row[1].not_bundled is not None)
    return {"about": ABOUT, "families": [_row(name, entry) for name, entry in rows]}


def _row(family: str, entry: CatalogueEntry) -> dict:
    row = {"family": family, "task": entry.task, "purpose": entry.purpose, "detail": entry.detail}
    if entry.not_bundled is not None:
        row.update(not_bundled=entry.not_bundled, why=entry.why)
    return row


def catalogue_text() -> str:
    return json.dumps(catalogue(), indent=2, ensure_ascii=False) + "\n"


def write_catalogue(path: Path) -> Path:
    from mammodesk_train.app import write_atomic

    write_atomic(path, catalogue_text().encode("utf-8"))
    return path
