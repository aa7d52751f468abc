"""INbreast labels: the label sheet (INbreast.csv, semicolon-separated, or
INbreast.xls) with ACR density and BI-RADS per image, and the OsiriX XML
(Apple plist) files with one polygon or point per ROI, in pixel coordinates
with a top-left origin. Files are matched by the sheet's `File Name` number."""

from __future__ import annotations

import csv
import io
import plistlib
import re
from pathlib import Path
from xml.parsers.expat import ExpatError

from mammodesk.annotations.model import Finding, FindingKind, ImageLabels, Point, Polygon
from mammodesk.errors import LabelReadError

DENSITY_ACR = {"1": "A", "2": "B", "3": "C", "4": "D"}
ROI_KINDS = {
    "mass": FindingKind.MASS,
    "spiculated region": FindingKind.MASS,
    "calcification": FindingKind.CALCIFICATION,
    "calcifications": FindingKind.CALCIFICATION,
    "cluster": FindingKind.CALCIFICATION,
    "distortion": FindingKind.ARCHITECTURAL_DISTORTION,
    "asymmetry": FindingKind.ASYMMETRY,
    "assymetry": FindingKind.ASYMMETRY,  # the dataset's own spelling
}
_POINT = re.compile(r"\(\s*([-\d.eE+]+)\s*,\s*([-\d.eE+]+)")


def read_inbreast_sheet(path: str | Path) -> dict[str, ImageLabels]:
    """Image-level labels keyed by File Name (the DICOM file's leading number)."""
    path = Path(path)
    rows = _xls_rows(path) if path.suffix.lower() in (".xls", ".xlsx") else _csv_rows(path)
    labels = {}
    for line, row in enumerate(rows, start=2):
        name = row.get("file name", "").split(".")[0].strip()
        if not name:
            continue  # the sheet ends with blank and summary rows
        birads_text = row.get("bi-rads", "").strip().lower()
        birads = int(birads_text[0]) if birads_text[:1].isdigit() else None
        if birads is not None and not 0 <= birads <= 6:
            raise LabelReadError(path, f"BI-RADS {birads_text!r} out of range", line)
        acr = row.get("acr", "").split(".")[0].strip()
        labels[name] = ImageLabels(
            image_id=name,
            density=DENSITY_ACR.get(acr),
            density_system="acr" if acr in DENSITY_ACR else None,
            birads=birads,
            laterality=row.get("laterality", "").strip().upper() or None,
            view=row.get("view", "").strip().upper() or None,
            extra={"birads_detail": birads_text} if birads_text else {},
        )
    if not labels:
        raise LabelReadError(path, "no image rows with a 'File Name'")
    return labels


def _csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise LabelReadError(path, f"cannot be read ({exc.strerror or exc})") from exc
    delimiter = ";" if text.split("\n", 1)[0].count(";") >= text.split("\n", 1)[0].count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    return _normalised(path, reader.fieldnames, list(reader))


def _xls_rows(path: Path) -> list[dict[str, str]]:
    try:
        import xlrd  # optional: only INbreast.xls needs it
    except ImportError as exc:
        raise LabelReadError(path, "reading .xls needs the 'xlrd' package; or use INbreast.csv") from exc
    try:
        sheet = xlrd.open_workbook(str(path)).sheet_by_index(0)
    except Exception as exc:  # xlrd raises its own error types
        raise LabelReadError(path, f"not a readable spreadsheet ({exc})") from exc
    header = [str(c.value) for c in sheet.row(0)]
    rows = [dict(zip(header, (_cell_text(c.value) for c in sheet.row(i)))) for i in range(1, sheet.nrows)]
    return _normalised(path, header, rows)


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _normalised(path: Path, header, rows) -> list[dict[str, str]]:
    keys = {h: h.strip().lower() for h in header or []}
    if "file name" not in keys.values():
        raise LabelReadError(path, "not an INbreast label sheet: no 'File Name' column")
    return [{keys[k]: (v or "").strip() for k, v in row.items() if k in keys} for row in rows]


def read_inbreast_xml(path: str | Path) -> tuple[Finding, ...]:
    """ROIs of one INbreast XML file as findings (polygons, or points for
    single-point calcifications). Unknown ROI names become `OTHER`."""
    path = Path(path)
    try:
        data = plistlib.loads(path.read_bytes())
        images = data["Images"]
    except (OSError, plistlib.InvalidFileException, ExpatError, KeyError, TypeError, ValueError) as exc:
        raise LabelReadError(path, f"not an INbreast/OsiriX ROI plist ({exc})") from exc
    findings = []
    for image in images:
        for roi in image.get("ROIs", []):
            points = [_parse_point(path, text) for text in roi.get("Point_px", [])]
            if not points:
                continue
            name = str(roi.get("Name", "")).strip()
            kind = ROI_KINDS.get(name.lower(), FindingKind.OTHER)
            shape = Point(*points[0]) if len(points) == 1 else Polygon(tuple(points))
            findings.append(Finding(kind, shape=shape, attributes={"roi_name": name},
                                    source="INbreast"))
    return tuple(findings)


def _parse_point(path: Path, text: str) -> tuple[float, float]:
    match = _POINT.search(str(text))
    if match is None:
        raise LabelReadError(path, f"ROI point {text!r} is not '(x, y)'")
    return float(match.group(1)), float(match.group(2))
