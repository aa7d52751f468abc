"""The 2x2 mammography hanging: RCC | LCC over RMLO | LMLO, filled from
laterality and view (DICOM tags, or file naming when tags are missing)."""

from __future__ import annotations

from typing import Sequence

from mammodesk.io.image import ImageMeta
from mammodesk.io.naming import infer_from_name

SLOTS: tuple[str, ...] = ("RCC", "LCC", "RMLO", "LMLO")
# Views that take a slot when the exact one is missing (ML for MLO, XCCL for CC, ...).
_VIEW_FAMILY = {"CC": "CC", "XCCL": "CC", "XCCM": "CC", "FB": "CC",
                "MLO": "MLO", "ML": "MLO", "LM": "MLO", "LMO": "MLO", "SIO": "MLO"}


def side_and_view(meta: ImageMeta) -> tuple[str | None, str | None]:
    """Laterality and view family, from the metadata first, then the file name."""
    laterality, view = meta.laterality, meta.view
    if (laterality is None or view is None) and meta.source_path is not None:
        hints = infer_from_name(meta.source_path.name)
        laterality = laterality or hints.laterality
        view = view or hints.view
    family = _VIEW_FAMILY.get((view or "").upper())
    return laterality, family


def assign_slots(metas: Sequence[ImageMeta]) -> dict[str, int]:
    """Slot name -> index into `metas`. The first image of each side+view takes
    its slot (a second RCC stays out of the hanging); images whose side or view
    is unknown fill the empty slots in order, so four untagged images still
    make a hanging, labelled '?' on screen."""
    slots: dict[str, int] = {}
    unplaced: list[int] = []
    for index, meta in enumerate(metas):
        laterality, family = side_and_view(meta)
        slot = f"{laterality}{family}" if laterality and family else None
        if slot is None:
            unplaced.append(index)
        elif slot in SLOTS and slot not in slots:
            slots[slot] = index
    for slot in SLOTS:
        if slot not in slots and unplaced:
            slots[slot] = unplaced.pop(0)
    return slots


def slot_label(meta: ImageMeta) -> str:
    laterality, family = side_and_view(meta)
    return f"{laterality or '?'} {family or meta.view or '?'}"
