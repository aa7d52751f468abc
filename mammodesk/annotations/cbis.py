"""CBIS-DDSM case-description CSVs (mass_case_description_*.csv and
calc_case_description_*.csv). One row per abnormality; images are identified
by the first component of `image file path` (e.g. Mass-Training_P_00001_LEFT_CC).
The outline of each finding is a binary ROI mask file, kept as a `MaskRef`."""

from __future__ import annotations

import csv
from pathlib import Path

from mammodesk.annotations.model import Finding, FindingKind, ImageLabels, MaskRef, Pathology
from mammodesk.errors import LabelReadError
from mammodesk.io.naming import hashed_key

REQUIRED = ("patient_id", "left or right breast", "image view", "abnormality type", "pathology",
            "image file path")
PATHOLOGY = {
    "MALIGNANT": Pathology.MALIGNANT,
    "BENIGN": Pathology.BENIGN,
    "BENIGN_WITHOUT_CALLBACK": Pathology.BENIGN,
}
DENSITY_ACR = {"1": "A", "2": "B", "3": "C", "4": "D"}
_ATTRIBUTES = {"mass shape": "shape", "mass margins": "margin", "calc type": "morphology",
               "calc distribution": "distribution", "subtlety": "subtlety",
               "abnormality id": "abnormality_id"}


def read_cbis_csv(path: str | Path) -> dict[str, ImageLabels]:
    """Labels keyed by image id. Several CSVs can be merged with `dict.update`
    (image ids are unique across the mass/calc and train/test files)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [_norm(h) for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise LabelReadError(path, f"not a CBIS-DDSM case description CSV: missing {missing}")
            rows = [{_norm(k): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelReadError(path, f"cannot be read ({exc})") from exc
    grouped: dict[str, dict] = {}
    for line, row in enumerate(rows, start=2):
        image_id = row["image file path"].replace("\\", "/").split("/")[0].strip()
        if not image_id:
            raise LabelReadError(path, "empty image file path", line)
        entry = grouped.setdefault(image_id, {"row": row, "findings": []})
        entry["findings"].append(_finding(path, line, row))
    labels = {}
    for image_id, entry in grouped.items():
        row = entry["row"]
        density = row.get("breast_density") or row.get("breast density") or ""
        side = row["left or right breast"].upper()
        labels[image_id] = ImageLabels(
            image_id=image_id,
            findings=tuple(entry["findings"]),
            density=DENSITY_ACR.get(density),
            density_system="acr" if density in DENSITY_ACR else None,
            laterality={"LEFT": "L", "RIGHT": "R"}.get(side),
            view=row["image view"].upper() or None,
            patient_key=hashed_key("cbis", row["patient_id"]),
            extra={"image_file": row["image file path"]},
        )
    return labels


def _norm(header: str) -> str:
    return header.strip().lower()


def _finding(path: Path, line: int, row: dict[str, str]) -> Finding:
    kind_text = row["abnormality type"].lower()
    kind = {"mass": FindingKind.MASS, "calcification": FindingKind.CALCIFICATION}.get(kind_text)
    if kind is None:
        raise LabelReadError(path, f"unknown abnormality type {row['abnormality type']!r}", line)
    pathology = PATHOLOGY.get(row["pathology"].upper())
    if pathology is None:
        raise LabelReadError(path, f"unknown pathology {row['pathology']!r}", line)
    assessment = row.get("assessment", "")
    birads = int(assessment) if assessment.isdigit() else None
    attributes = {name: row[column] for column, name in _ATTRIBUTES.items() if row.get(column)}
    if row["pathology"].upper() == "BENIGN_WITHOUT_CALLBACK":
        attributes["pathology_detail"] = "benign without callback"
    mask = row.get("roi mask file path", "").strip()
    return Finding(kind, pathology, MaskRef(mask) if mask else None, birads, attributes,
                   source="CBIS-DDSM")
