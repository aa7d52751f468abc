"""Laterality, view and patient grouping inferred from names, for files whose
tags don't say (PGM/PNG) or say it in non-standard places (CBIS-DDSM DICOMs
keep the view in PatientID, e.g. `Mass-Test_P_00820_RIGHT_MLO`)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from mammodesk.io.views import VIEWS

_VIEW_ALTERNATION = "|".join(sorted(VIEWS, key=len, reverse=True))
_SEP = r"(?:^|[^A-Za-z0-9])"
_END = r"(?=$|[^A-Za-z0-9])"
_SIDE_VIEW = re.compile(rf"{_SEP}(L|R|LEFT|RIGHT)[_\- ]?({_VIEW_ALTERNATION}){_END}", re.I)
_SIDE_ONLY = re.compile(rf"{_SEP}(LEFT|RIGHT){_END}", re.I)
_VIEW_ONLY = re.compile(rf"{_SEP}({_VIEW_ALTERNATION}){_END}", re.I)
_MIAS = re.compile(r"^mdb(\d{3})", re.I)
_CBIS_PATIENT = re.compile(r"(P_\d{5})", re.I)

@dataclass(frozen=True)
class NameHints:
    laterality: str | None = None
    view: str | None = None
    patient_key: str | None = None


def hashed_key(namespace: str, value: str) -> str:
    """A stable, non-reversible grouping key: equal inputs group together,
    but the identifier itself never leaves the reader."""
    digest = hashlib.sha256(f"{namespace}:{value.strip().upper()}".encode()).hexdigest()
    return f"{namespace}:{digest[:16]}"


def infer_from_name(name: str) -> NameHints:
    """Hints from a file name or an identifier string; any field may be None."""
    mias = _MIAS.match(name)
    if mias:
        number = int(mias.group(1))
        # MIAS: even numbers are left breasts, odd right; mdb(2k-1) and mdb(2k) are one woman.
        return NameHints("L" if number % 2 == 0 else "R", "MLO", f"mias:{(number + 1) // 2:03d}")
    laterality = view = None
    match = _SIDE_VIEW.search(name)
    if match:
        laterality = match.group(1)[0].upper()
        view = match.group(2).upper()
    else:
        side = _SIDE_ONLY.search(name)
        if side:
            laterality = side.group(1)[0].upper()
        only_view = _VIEW_ONLY.search(name)
        if only_view:
            view = only_view.group(1).upper()
    cbis = _CBIS_PATIENT.search(name)
    patient = hashed_key("cbis", cbis.group(1)) if cbis else None
    return NameHints(laterality, view, patient)


def without_side_and_view(name: str) -> str:
    """The name with its side-and-view token removed (`PAT0001_L_MLO` -> `PAT0001`); the name itself when it
    has none, '' when nothing else is left."""
    match = _SIDE_VIEW.search(name)
    if not match:
        return name
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", name[:match.start()] + " " + name[match.end():]).strip()
