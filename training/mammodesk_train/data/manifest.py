"""`manifest:FILE`: one labelled data list, CSV or JSON, that every command accepts; and `labels:FOLDER`, the
labels drawn in MammoDesk itself (the sidecars beside the images).

A manifest has one row per image, or one row per finding (rows naming one image add its findings). Columns:

| column     | required | meaning |
|------------|----------|---------|
| path       | yes      | the image file, relative to the manifest's folder (or absolute) |
| label      | one of label, birads, density | normal (negative, healthy), abnormal (positive), benign, malignant (cancer) |
| patient    | no       | the patient's ID (hashed at once); default: the DICOM PatientID, else the file name without side and view |
| study      | no       | the study (exam) ID, hashed |
| laterality | no       | L or R (LEFT, RIGHT) |
| view       | no       | CC, MLO, ML, ... |
| finding    | no       | mass, calcification, architectural_distortion (distortion), asymmetry, other |
| box        | no       | the finding's box in source pixels: "x0 y0 x1 y1" |
| mask       | no       | a mask image of the finding (non-zero inside), relative like path |
| spacing    | no       | mm per pixel, for files that state none |
| birads     | no       | 0-6, the image's BI-RADS assessment |
| density    | no       | A-D (ACR) or F, G, D (MIAS) |

A JSON manifest is a list of objects with these keys (or {"images": [...]}). A MammoDesk findings CSV (File >
Export > CSV) is a manifest too: its file_name column is looked up under the CSV's folder.

Everything is checked before any image is read: a malformed row is named by its row and column. Missing files
are skipped, and counted in the one line `load_source` prints of what was found."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

from mammodesk_train.app import ImageLabels, MaskRef
from mammodesk_train.app import Finding, FindingKind, Pathology, Rect
from mammodesk_train.app import hashed_key
from mammodesk_train.app import VIEWS

from mammodesk_train.data.patients import patient_of
from mammodesk_train.data.sources import IGNORED, DataError, Record

COLUMNS = ("path", "label", "patient", "study", "laterality", "view", "finding", "box", "mask", "spacing",
           "birads", "density")
LABELS = {"normal": None, "negative": None, "healthy": None,
          "abnormal": Pathology.UNKNOWN, "positive": Pathology.UNKNOWN,
          "benign": Pathology.BENIGN, "malignant": Pathology.MALIGNANT, "cancer": Pathology.MALIGNANT}
FINDINGS = {"mass": FindingKind.MASS, "calcification": FindingKind.CALCIFICATION,
            "calcifications": FindingKind.CALCIFICATION, "architectural_distortion":
            FindingKind.ARCHITECTURAL_DISTORTION, "distortion": FindingKind.ARCHITECTURAL_DISTORTION,
            "asymmetry": FindingKind.ASYMMETRY, "other": FindingKind.OTHER}
SIDES = {"l": "L", "left": "L", "r": "R", "right": "R"}


class RowError(DataError):
    def __init__(self, manifest: Path, row: int, column: str, message: str) -> None:
        super().__init__(f"{manifest.name} row {row}, column {column}: {message}")


def manifest(path: Path, cache_dir: Path | None = None) -> tuple[list[Record], dict[str, list[str]]]:
    if path.is_dir():
        raise DataError(f"manifest:{path} is a folder; manifest: takes a CSV or JSON file (see "
                        "`mammodesk-train list` for its columns), labels: takes a folder of images labelled in MammoDesk")
    rows = _rows(path)
    if rows and "finding_type" in rows[0][1] and "file_name" in rows[0][1]:
        return _mammodesk_csv(path)
    if not rows:
        raise DataError(f"{path.name} has no rows")
    if "path" not in rows[0][1]:
        raise DataError(f"{path.name} has no 'path' column (columns: {', '.join(rows[0][1]) or 'none'}; "
                        f"expected {', '.join(COLUMNS)})")
    unknown = [c for c in rows[0][1] if c not in COLUMNS]
    images: dict[Path, dict] = {}
    missing: list[str] = []
    for number, row in rows:
        file = _file(path, row["path"], number, "path")
        if file is None:
            continue
        if not file.is_file():
            missing.append(row["path"])
            continue
        entry = images.setdefault(file, {"rows": [], "first": number})
        entry["rows"].append((number, row))
    mias_scale = any(row.get("density", "").upper() in ("F", "G") for _, row in rows)
    records = [_record(path, file, entry["rows"], mias_scale) for file, entry in images.items()]
    return records, {"file not found": missing, IGNORED: unknown}


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(row number as a user counts it, {column: text}) for CSV (header row 1) or JSON (item 1 first)."""
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            items = data.get("images") if isinstance(data, dict) else data
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise DataError(f"{path.name}: a JSON manifest is a list of objects (or {{\"images\": [...]}})")
            return [(n, {str(k).strip().lower(): "" if v is None else str(v).strip() for k, v in item.items()})
                    for n, item in enumerate(items, start=1)]
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [str(c or "").strip().lower() for c in reader.fieldnames or []]
            return [(n, {header[i]: (value or "").strip() for i, value in enumerate(row.values()) if i < len(header)})
                    for n, row in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise DataError(f"{path.name} cannot be read as a manifest ({exc})") from exc


def _file(manifest: Path, text: str, row: int, column: str) -> Path | None:
    if not text:
        raise RowError(manifest, row, column, "empty")
    file = Path(text).expanduser()
    return file if file.is_absolute() else manifest.parent / file


def _record(manifest: Path, file: Path, rows: list[tuple[int, dict]], mias_scale: bool) -> Record:
    first_row, first = rows[0]
    image = {}
    for column in ("patient", "study", "laterality", "view", "spacing", "birads", "density"):
        values = {(row.get(column) or "") for _, row in rows} - {""}
        if len(values) > 1:
            raise RowError(manifest, rows[-1][0], column, f"{file.name} has {column} {' and '.join(sorted(values))} "
                                                          "in different rows; an image has one")
        image[column] = values.pop() if values else ""
    findings = tuple(f for number, row in rows if (f := _finding(manifest, number, row)) is not None)
    if any(f.kind == FindingKind.NORMAL for f in findings) and any(f.kind != FindingKind.NORMAL for f in findings):
        raise RowError(manifest, rows[-1][0], "label", f"{file.name} is labelled normal in one row and abnormal "
                                                       "in another")
    birads = _integer(manifest, first_row, "birads", image["birads"], range(0, 7))
    density = image["density"].upper() or None
    if density is not None and density not in (("F", "G", "D") if mias_scale else ("A", "B", "C", "D")):
        raise RowError(manifest, first_row, "density", f"{image['density']!r} is not A-D (ACR) or F, G, D (MIAS), "
                                                        "one scale per manifest")
    if not findings and birads is None and density is None:
        raise RowError(manifest, first_row, "label", f"{file.name} has no label, birads or density")
    side = image["laterality"].lower()
    if side and side not in SIDES:
        raise RowError(manifest, first_row, "laterality", f"{image['laterality']!r} is not L or R")
    view = image["view"].upper() or None
    if view is not None and view not in VIEWS:
        raise RowError(manifest, first_row, "view", f"{image['view']!r} is not one of {', '.join(VIEWS)}")
    spacing = _number(manifest, first_row, "spacing", image["spacing"]) if image["spacing"] else None
    patient, how = patient_of(file, manifest.parent, image["patient"] or None)
    extra = {"study_key": hashed_key("study", image["study"])} if image["study"] else {}
    labels = ImageLabels(file.stem, findings, density, None if density is None else (
        "mias" if mias_scale else "acr"), birads, SIDES.get(side), view, patient,
        {**extra, "label": ",".join(sorted({row.get("label", "").lower() for _, row in rows} - {""}))})
    return Record(file.stem, file, patient, labels, "manifest", extra=dict(labels.extra), assumed_spacing_mm=spacing,
                  patient_from=how)


def _finding(manifest: Path, number: int, row: dict) -> Finding | None:
    label = row.get("label", "").lower()
    if not label:
        if row.get("finding") or row.get("box") or row.get("mask"):
            raise RowError(manifest, number, "label", "a finding needs a label (abnormal, benign or malignant)")
        return None
    if label not in LABELS:
        raise RowError(manifest, number, "label", f"{row['label']!r} is not a label this list knows: "
                                                  f"{', '.join(LABELS)}")
    pathology = LABELS[label]
    if pathology is None:
        if row.get("finding") or row.get("box") or row.get("mask"):
            raise RowError(manifest, number, "label", "a normal row has no finding, box or mask")
        return Finding(FindingKind.NORMAL, Pathology.UNKNOWN, source="manifest")
    kind_text = row.get("finding", "").lower()
    if kind_text and kind_text not in FINDINGS:
        raise RowError(manifest, number, "finding", f"{row['finding']!r} is not one of {', '.join(FINDINGS)}")
    shape = None
    if row.get("box"):
        values = row["box"].strip("[]()").replace(",", " ").split()  # "x0 y0 x1 y1", or a JSON list
        numbers = [_number(manifest, number, "box", v, positive=False) for v in values]
        if len(numbers) != 4 or numbers[2] <= numbers[0] or numbers[3] <= numbers[1]:
            raise RowError(manifest, number, "box", f"{row['box']!r} is not x0 y0 x1 y1 with x1 > x0 and y1 > y0")
        shape = Rect(*numbers)
    elif row.get("mask"):
        mask = _file(manifest, row["mask"], number, "mask")
        if not mask.is_file():
            raise RowError(manifest, number, "mask", f"{row['mask']} not found")
        shape = MaskRef(str(mask))
    return Finding(FINDINGS.get(kind_text, FindingKind.OTHER), pathology, shape, source="manifest")


def _integer(manifest: Path, row: int, column: str, text: str, allowed: range) -> int | None:
    if not text:
        return None
    try:
        value = int(float(text))
    except (ValueError, OverflowError):
        value = None
    if value is None or value not in allowed or float(text) != value:
        raise RowError(manifest, row, column, f"{text!r} is not a whole number from {allowed.start} to "
                                              f"{allowed.stop - 1}")
    return value


def _number(manifest: Path, row: int, column: str, text: str, *, positive: bool = True) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RowError(manifest, row, column, f"{text!r} is not a number") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise RowError(manifest, row, column, f"{text!r} must be a positive number")
    return value


def _mammodesk_csv(path: Path) -> tuple[list[Record], dict[str, list[str]]]:
    """A MammoDesk findings CSV: its labels as the app wrote them; images found by file name under its folder."""
    from mammodesk_train.app import read_csv
    from mammodesk_train.app import LabelReadError

    try:
        labels = read_csv(path)
    except LabelReadError as exc:
        raise DataError(str(exc)) from exc
    files: dict[str, list[Path]] = {}
    for file in path.parent.rglob("*"):
        if file.is_file():
            files.setdefault(file.name, []).append(file)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        names = {row["image"]: row["file_name"] for row in csv.DictReader(handle)}
    records, missing, unlabelled = [], [], []
    for image_id, label in labels.items():
        found = files.get(names.get(image_id, ""), [])
        if len(found) > 1:
            raise DataError(f"{path.name}: {names[image_id]} is in {len(found)} folders under {path.parent} "
                            f"({', '.join(str(f.parent) for f in found[:3])}); keep one")
        if not found:
            missing.append(names.get(image_id, image_id))
            continue
        if not label.findings and label.birads is None and label.density is None:
            unlabelled.append(found[0].name)
            continue
        records.append(_app_record(found[0], path.parent, label))
    return records, {"file not found": missing, "without labels": unlabelled}


def _app_record(file: Path, root: Path, labels: ImageLabels) -> Record:
    patient, how = patient_of(file, root)
    labels = replace(labels, patient_key=patient, extra={**labels.extra, "label": _app_label(labels)})
    return Record(file.stem, file, patient, labels, "mammodesk", patient_from=how)


def _app_label(labels: ImageLabels) -> str:
    if not labels.findings:
        return ""
    return "normal" if labels.is_normal else "abnormal"


def labelled_in_app(path: Path, cache_dir: Path | None = None) -> tuple[list[Record], dict[str, list[str]]]:
    """`labels:FOLDER`: every image under FOLDER with a MammoDesk sidecar beside it that holds labels."""
    from mammodesk_train.app import labels_from_dict
    from mammodesk_train.app import SIDECAR_SCHEMA, SIDECAR_SUFFIX

    if not path.is_dir():
        raise DataError(f"labels:{path} is a file; labels: takes the folder of images you labelled in MammoDesk "
                        "(their .mammodesk.json sidecars sit beside them)")
    records, missing, unlabelled, unreadable = [], [], [], []
    for sidecar in sorted(path.rglob(f"*{SIDECAR_SUFFIX}")):
        image = sidecar.with_name(sidecar.name.removesuffix(SIDECAR_SUFFIX))
        if not image.is_file():
            missing.append(image.name)
            continue
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
            if data.get("schema") != SIDECAR_SCHEMA:
                raise ValueError("not a MammoDesk sidecar")
            labels = labels_from_dict(data["labels"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            unreadable.append(sidecar.name)
            continue
        if not labels.findings and labels.birads is None and labels.density is None:
            unlabelled.append(image.name)
            continue
        records.append(_app_record(image, path, replace(labels, image_id=image.stem)))
    if not records and not (missing or unlabelled or unreadable):
        raise DataError(f"no MammoDesk labels (*{SIDECAR_SUFFIX}) under {path}: label images in the app first, or give "
                        "a manifest: CSV")
    return records, {"image missing beside its sidecar": missing, "without labels": unlabelled,
                     "sidecar unreadable": unreadable}
