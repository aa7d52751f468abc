"""Current and prior studies of one woman, for reading screening against
priors: which open images form a study, which study is current, and the
comparison page (a view family: current right | current left over prior right
| prior left).

A study is the DICOM StudyInstanceUID, else the folder a file is in (a
folder per exam). A woman is the hashed patient key, else every image
without one. Studies are ordered by study date when they have one, else a
folder named prior/previous/old is the prior, else the first study opened is
the current one. Dates identify: they are read from the file headers only
here, to order and to print an interval ("24 months earlier"), and are kept
nowhere else (not in `ImageMeta`, not on screen)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from typing import Sequence

import pydicom

PAGES = ("CC", "MLO")
_PRIOR_WORDS = ("prior", "previous", "old", "earlier")


@dataclass(frozen=True)
class Study:
    key: str
    documents: tuple  # Document objects, in opening order
    date: str | None  # YYYYMMDD

    @property
    def folder(self) -> str:
        path = self.documents[0].image.meta.source_path
        return path.parent.name.lower() if path is not None else ""


def study_key(document) -> str:
    meta = document.image.meta
    if meta.study_key:
        return meta.study_key
    return f"folder:{meta.source_path.parent}" if meta.source_path is not None else f"image:{document.id}"


def studies_of(documents: Sequence, patient: str | None) -> list[Study]:
    """The studies of one woman, current first, then the priors from the most recent back."""
    mine = [d for d in documents if d.image.meta.patient_key == patient]
    groups: dict[str, list] = {}
    for document in mine:
        groups.setdefault(study_key(document), []).append(document)
    studies = [Study(key, tuple(docs), next((d for d in map(_study_date, docs) if d), None))
               for key, docs in groups.items()]
    opened = {study.key: index for index, study in enumerate(studies)}
    if all(study.date for study in studies):
        return sorted(studies, key=lambda s: s.date, reverse=True)
    return sorted(studies, key=lambda s: (any(w in s.folder for w in _PRIOR_WORDS), opened[s.key]))


def _study_date(document) -> str | None:
    path = document.image.meta.source_path
    return _header_date(str(path)) if path is not None and document.image.meta.format == "DICOM" else None


@functools.lru_cache(maxsize=256)
def _header_date(path: str) -> str | None:
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True,
                                 specific_tags=["StudyDate", "SeriesDate", "AcquisitionDate"])
    except (OSError, pydicom.errors.InvalidDicomError):
        return None
    return next((str(header.get(k)) for k in ("StudyDate", "SeriesDate", "AcquisitionDate")
                 if str(header.get(k) or "").strip()), None)


def interval_text(current: Study, prior: Study) -> str:
    """'24 months earlier' (dates known), else 'prior'."""
    try:
        a, b = (date(int(s.date[:4]), int(s.date[4:6]), int(s.date[6:8])) for s in (current, prior))  # type: ignore
    except (TypeError, ValueError):
        return "prior"
    months = round((a - b).days / 30.44)
    return f"prior, {months} months earlier" if months > 0 else "prior"


def comparison(documents: Sequence, active, page: str) -> list[tuple[object | None, str]]:
    """(document or None, caption) for the four panes: current R, current L, prior R, prior L
    of the page's view family; empty when the active image's woman has one study."""
    from mammodesk.anatomy import assign_slots

    if active is None:
        return []
    studies = studies_of(documents, active.image.meta.patient_key)
    if len(studies) < 2:
        return []
    current, prior = studies[0], studies[1]
    panes = []
    for study, when in ((current, "current"), (prior, interval_text(current, prior))):
        docs = list(study.documents)
        slots = assign_slots([d.anatomy for d in docs])
        for side in ("R", "L"):
            slot = f"{side}{page}"
            document = docs[slots[slot]] if slot in slots else None
            caption = f"{document.anatomy.label} · {when}" if document is not None else f"{slot} · {when}: none"
            panes.append((document, caption))
    return panes
