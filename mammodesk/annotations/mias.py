"""MIAS `Info.txt`: one row per abnormality, several rows per image possible,
normal images as a single NORM row, coordinates with a bottom-left origin,
some rows with a severity but no coordinates (widely distributed
calcifications; also mdb059, a mass without a location)."""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Literal

from mammodesk.annotations.model import Circle, Finding, FindingKind, ImageLabels, Pathology
from mammodesk.errors import LabelReadError
from mammodesk.io.naming import infer_from_name

MIAS_SIZE = 1024
_ROW = re.compile(r"^(mdb\d{3})\s+([FGD])\s+([A-Z]{4})\b(.*)$")
CLASSES = {
    "CALC": (FindingKind.CALCIFICATION, {}),
    "CIRC": (FindingKind.MASS, {"margin": "circumscribed"}),
    "SPIC": (FindingKind.MASS, {"margin": "spiculated"}),
    "MISC": (FindingKind.MASS, {"margin": "ill-defined"}),
    "ARCH": (FindingKind.ARCHITECTURAL_DISTORTION, {}),
    "ASYM": (FindingKind.ASYMMETRY, {}),
    "NORM": (FindingKind.NORMAL, {}),
}
SEVERITY = {"B": Pathology.BENIGN, "M": Pathology.MALIGNANT}


def read_mias_info(
    path: str | Path,
    *,
    origin: Literal["bottom-left", "top-left"] = "bottom-left",
    image_height: int = MIAS_SIZE,
) -> dict[str, ImageLabels]:
    """Parse Info.txt into labels keyed by reference (``mdb001``).

    `origin="top-left"` exists to measure what a wrong convention costs; the
    file's documented origin is bottom-left (row = height - 1 - y).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise LabelReadError(path, f"cannot be read ({exc.strerror or exc})") from exc
    rows: "OrderedDict[str, list[Finding]]" = OrderedDict()
    tissue: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _ROW.match(line.strip())
        if match is None:
            continue
        ref, background, cls, rest = match.groups()
        if cls not in CLASSES:
            raise LabelReadError(path, f"unknown abnormality class {cls!r}", number)
        finding = _finding(path, number, cls, rest.split(), origin, image_height)
        rows.setdefault(ref, []).append(finding)
        tissue[ref] = background
    if not rows:
        raise LabelReadError(path, "no MIAS rows (mdbNNN ...) found; is this Info.txt?")
    labels = {}
    for ref, findings in rows.items():
        hints = infer_from_name(ref)
        labels[ref] = ImageLabels(
            image_id=ref,
            findings=tuple(findings),
            density=tissue[ref],
            density_system="mias",
            laterality=hints.laterality,
            view=hints.view,
            patient_key=hints.patient_key,
        )
    return labels


def _finding(path: Path, number: int, cls: str, fields: list[str], origin: str, height: int) -> Finding:
    kind, attributes = CLASSES[cls]
    pathology = Pathology.UNKNOWN
    if fields and fields[0] in SEVERITY:
        pathology = SEVERITY[fields.pop(0)]
    numbers = []
    for token in fields:
        if not token.lstrip("-").isdigit():
            break  # "*NOTE 3*": the documented no-coordinates remark
        numbers.append(int(token))
    shape = None
    note = "location not given in Info.txt" if kind != FindingKind.NORMAL and not numbers else ""
    if len(numbers) == 3:
        x, y, radius = numbers
        row = height - 1 - y if origin == "bottom-left" else y
        shape = Circle(float(x), float(row), float(radius))
    elif numbers:
        raise LabelReadError(path, f"expected x, y and radius, got {numbers}", number)
    return Finding(kind, pathology, shape, attributes=dict(attributes), note=note, source=f"MIAS:{cls}")
