"""The public digital sets people have, each read from its documented layout:

- `rsna:FOLDER`: RSNA Screening Mammography Breast Cancer Detection (Kaggle 2022): `train.csv` (patient_id,
  image_id, laterality, view, cancer, biopsy, BIRADS, density, ...) and `train_images/PATIENT/IMAGE.dcm` (or
  `.png`). cancer 1 is malignant; a biopsy without cancer benign; every other image normal (a negative screen).
- `vindr:FOLDER`: VinDr-Mammo: `breast-level_annotations.csv`, `finding_annotations.csv` and
  `images/STUDY/IMAGE.dicom`. BI-RADS 1 is normal, 3-5 abnormal with their boxed findings as located findings;
  BI-RADS 2 carries its assessment only (neither class for normal vs abnormal). The study is the patient
  (VinDr-Mammo has one exam per woman and no patient column). Both of its splits are read; `split` is kept.
- `cmmd:FOLDER`: The Chinese Mammography Database (TCIA): `CMMD_clinicaldata_revision.csv` (or .xlsx: needs
  openpyxl) with ID1, LeftRight, abnormality and classification per breast, and the DICOM tree. Each image takes
  its breast's benign or malignant label from its PatientID and ImageLaterality; breasts the table does not
  list are left out and counted.

Patients are the sets' own IDs, hashed as the app hashes a DICOM PatientID."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

from mammodesk_train.app import ImageLabels
from mammodesk_train.app import Finding, FindingKind, Pathology, Rect
from mammodesk_train.app import hashed_key

from mammodesk_train.data.patients import GIVEN
from mammodesk_train.data.sources import DataError, Record

Found = tuple[list[Record], dict[str, list[str]]]


def _csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path.name} cannot be read ({exc})") from exc


def _need(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if rows and c not in rows[0]]
    if not rows or missing:
        raise DataError(f"{path.name}: " + (f"missing columns {', '.join(missing)}" if rows else "no rows"))


def _one(root: Path, pattern: str, what: str) -> Path:
    found = sorted(root.rglob(pattern))
    if not found:
        raise DataError(f"no {pattern} under {root}: not a {what} folder")
    return found[0]


def rsna(path: Path, cache_dir: Path | None = None) -> Found:
    table = _one(path, "train.csv", "RSNA Screening Mammography")
    rows = _csv(table)
    _need(table, rows, ("patient_id", "image_id", "laterality", "view", "cancer"))
    images = table.parent / "train_images"
    records, missing = [], []
    for row in rows:
        folder = images / row["patient_id"]
        file = next((f for f in (folder / f"{row['image_id']}.dcm", folder / f"{row['image_id']}.png") if f.is_file()),
                    None)
        if file is None:
            missing.append(f"{row['patient_id']}/{row['image_id']}")
            continue
        if row["cancer"] == "1":
            finding = Finding(FindingKind.OTHER, Pathology.MALIGNANT, source="rsna cancer")
        elif row.get("biopsy") == "1":
            finding = Finding(FindingKind.OTHER, Pathology.BENIGN, source="rsna biopsy without cancer")
        else:
            finding = Finding(FindingKind.NORMAL, source="rsna")
        patient = hashed_key("patient", row["patient_id"])
        density = row.get("density") if row.get("density") in ("A", "B", "C", "D") else None
        birads = int(row["BIRADS"]) if row.get("BIRADS", "").isdigit() else None
        labels = ImageLabels(row["image_id"], (finding,), density, "acr" if density else None, birads,
                             row["laterality"] or None, row["view"] or None, patient,
                             {"site": row.get("site_id", ""), "machine": row.get("machine_id", "")})
        records.append(Record(row["image_id"], file, patient, labels, "rsna", patient_from=GIVEN))
    return records, {"image file not found": missing}


VINDR_KINDS = {"mass": FindingKind.MASS, "suspicious calcification": FindingKind.CALCIFICATION,
               "architectural distortion": FindingKind.ARCHITECTURAL_DISTORTION, "asymmetry": FindingKind.ASYMMETRY,
               "focal asymmetry": FindingKind.ASYMMETRY, "global asymmetry": FindingKind.ASYMMETRY}


def _birads(text: str) -> int | None:
    digits = "".join(c for c in text if c.isdigit())
    return int(digits) if digits else None


def vindr(path: Path, cache_dir: Path | None = None) -> Found:
    table = _one(path, "breast-level_annotations.csv", "VinDr-Mammo")
    rows = _csv(table)
    _need(table, rows, ("study_id", "image_id", "laterality", "view_position", "breast_birads"))
    findings: dict[str, list[Finding]] = {}
    finding_table = table.parent / "finding_annotations.csv"
    for row in _csv(finding_table) if finding_table.is_file() else []:
        categories = _categories(row.get("finding_categories", ""))
        if "no finding" in categories or not row.get("xmin"):
            continue
        box = Rect(*(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")))
        for category in categories:
            findings.setdefault(row["image_id"], []).append(Finding(
                VINDR_KINDS.get(category, FindingKind.OTHER), Pathology.UNKNOWN, box, _birads(row.get("finding_birads", "")),
                {} if category in VINDR_KINDS else {"finding_type": category}, source="vindr"))
    images = table.parent / "images"
    records, missing = [], []
    for row in rows:
        folder = images / row["study_id"]
        file = next((f for f in (folder / f"{row['image_id']}.dicom", folder / f"{row['image_id']}.dcm",
                                 folder / f"{row['image_id']}.png") if f.is_file()), None)
        if file is None:
            missing.append(f"{row['study_id']}/{row['image_id']}")
            continue
        birads = _birads(row["breast_birads"])
        located = tuple(findings.get(row["image_id"], ()))
        if birads == 1:
            labelled = (Finding(FindingKind.NORMAL, source="vindr BI-RADS 1"),)
        elif birads is not None and birads >= 3:
            labelled = located or (Finding(FindingKind.OTHER, source=f"vindr BI-RADS {birads}"),)
        else:
            labelled = ()
        density = row.get("breast_density", "").upper().replace("DENSITY", "").strip() or None
        patient = hashed_key("patient", row["study_id"])
        labels = ImageLabels(row["image_id"], labelled, density if density in ("A", "B", "C", "D") else None,
                             "acr" if density else None, birads, row["laterality"] or None,
                             row["view_position"] or None, patient, {"split": row.get("split", "")})
        records.append(Record(row["image_id"], file, patient, labels, "vindr", patient_from=GIVEN))
    return records, {"image file not found": missing}


def _categories(text: str) -> list[str]:
    try:
        parsed = ast.literal_eval(text) if text.startswith("[") else [text]
    except (ValueError, SyntaxError):
        parsed = [text]
    return [str(c).strip().lower() for c in parsed if str(c).strip()]


CMMD_KINDS = {"mass": FindingKind.MASS, "calcification": FindingKind.CALCIFICATION}


def cmmd(path: Path, cache_dir: Path | None = None) -> Found:
    tables = sorted(path.rglob("CMMD_clinicaldata*.csv")) or sorted(path.rglob("CMMD_clinicaldata*.xlsx"))
    if not tables:
        raise DataError(f"no CMMD_clinicaldata_revision.csv (or .xlsx) under {path}: not a CMMD folder")
    rows = _csv(tables[0]) if tables[0].suffix == ".csv" else _xlsx(tables[0])
    _need(tables[0], rows, ("ID1", "LeftRight", "classification"))
    breasts = {(row["ID1"].upper(), row["LeftRight"].upper()[:1]): row for row in rows}
    records, unlisted, unreadable = [], [], []
    for file in sorted(p for p in path.rglob("*.dcm")):
        patient_id, side = _patient_and_side(file)
        if patient_id is None or side is None:
            unreadable.append(file.name)
            continue
        row = breasts.get((patient_id.upper(), side))
        if row is None:
            unlisted.append(f"{patient_id} {side}")
            continue
        pathology = {"benign": Pathology.BENIGN, "malignant": Pathology.MALIGNANT}.get(
            row["classification"].lower(), Pathology.UNKNOWN)
        kind = CMMD_KINDS.get(row.get("abnormality", "").lower(), FindingKind.OTHER)
        patient = hashed_key("patient", patient_id)
        image_id = f"{patient_id}-{side}-{file.parent.name}-{file.stem}"
        labels = ImageLabels(image_id, (Finding(kind, pathology, source="cmmd"),), laterality=side,
                             patient_key=patient, extra={"subtype": row.get("subtype", "")})
        records.append(Record(image_id, file, patient, labels, "cmmd", patient_from=GIVEN))
    return records, {"breast not in the clinical table": unlisted, "without PatientID or laterality": unreadable}


def _patient_and_side(file: Path) -> tuple[str | None, str | None]:
    import pydicom

    try:
        header = pydicom.dcmread(file, stop_before_pixels=True, force=True,
                                 specific_tags=["PatientID", "ImageLaterality", "Laterality"])
    except Exception:  # a damaged header: counted, and the image is never read
        return None, None
    side = str(header.get("ImageLaterality", "") or header.get("Laterality", "") or "").upper()[:1]
    patient = str(header.get("PatientID", "") or "").strip() or None
    return patient, side if side in ("L", "R") else None


def _xlsx(path: Path) -> list[dict[str, str]]:
    try:
        import openpyxl
    except ImportError as exc:
        raise DataError(f"{path.name}: reading .xlsx needs the 'openpyxl' package; or save it as CSV beside it") \
            from exc
    sheet = openpyxl.load_workbook(path, read_only=True).active
    values = [["" if v is None else str(v).strip() for v in row] for row in sheet.iter_rows(values_only=True)]
    return [dict(zip(values[0], row)) for row in values[1:]] if values else []
