"""Label exports that re-import to the same ROIs: CSV (one row per finding),
COCO JSON and MIAS-style Info.txt (DICOM SR lives in `dicom_sr`).

Coordinates: our pixel centres are integers; COCO's origin is the top-left
corner of the top-left pixel (+0.5), MIAS counts rows from the bottom.
Nothing identifying leaves: images are named by `public_id` (file stem, or
a pixel-hash name when the stem looks like a patient identifier)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from mammodesk.annotations.geometry import area, enclosing_circle, outline, rect_from_polygon
from mammodesk.annotations.model import Finding, FindingKind, ImageLabels, Pathology, Point, Polygon, Rect
from mammodesk.annotations.serialize import finding_from_dict, finding_to_dict, shape_from_dict, shape_to_dict
from mammodesk.annotations.taxonomy import finding_type, kind_for
from mammodesk.errors import LabelReadError


@dataclass(frozen=True)
class ExportImage:
    labels: ImageLabels
    file_name: str  # as exported (no folders)
    rows: int
    cols: int
    sha256: str
    pixel_laterality: str | None = None  # read from the pixels where the file states no side: kept apart


def public_id(stem: str, sha256: str, identifying_values=()) -> str:
    """The file stem, unless it contains an identifying value (a patient name,
    ID or UID from the DICOM header): then a name made from the pixel hash."""
    lowered = stem.lower()
    for value in identifying_values:
        text = str(value).strip().lower()
        if len(text) >= 3 and text in lowered:
            return f"image-{sha256[:12]}"
    return stem


# --- CSV -------------------------------------------------------------------------------------
CSV_COLUMNS = ("image", "file_name", "pixel_sha256", "rows", "cols", "laterality", "laterality_from_pixels", "view",
               "image_density",
               "image_birads",
               "image_note", "finding_uid", "finding_type", "pathology", "birads", "shape_type", "geometry",
               "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1", "area_px", "attributes", "note", "source", "author",
               "created", "modified", "modified_by")


CSV_README = """MammoDesk findings CSV: one row per finding; an image without findings has one row of image labels.

Coordinates: source-image pixels, x right and y down, pixel centres (the top-left pixel's centre is 0, 0).
bbox_x0..bbox_y1 enclose the shape; geometry is the exact shape as JSON, {"type": ..., and its fields in those
coordinates} (a polygon's "points" as [x, y] pairs). area_px is in pixels. laterality and view are what the file states (DICOM
tags or the file name), never guessed from pixels; empty when the file does not say. laterality_from_pixels is
MammoDesk's reading of the side from the image (where the breast and the chest wall lie) when the file states
none: a reading, to be checked, and empty when the file states the side.
"""


def write_csv(images: list[ExportImage], path: Path) -> int:
    """One row per finding; an image without findings gets one row of image labels, with a README beside it
    that states the coordinate convention. Returns rows."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for item in images:
        labels = item.labels
        base = {"image": labels.image_id, "file_name": item.file_name, "pixel_sha256": item.sha256,
                "rows": item.rows, "cols": item.cols, "laterality": labels.laterality or "",
                "laterality_from_pixels": "" if labels.laterality else item.pixel_laterality or "",
                "view": labels.view or "", "image_density": labels.density or "",
                "image_birads": "" if labels.birads is None else labels.birads, "image_note": labels.note}
        for finding in labels.findings or (None,):
            row = dict(base)
            if finding is not None:
                row.update(_csv_finding(finding))
            writer.writerow(row)
            count += 1
    path.write_text(buffer.getvalue(), encoding="utf-8")
    path.with_name(path.stem + ".README.txt").write_text(CSV_README, encoding="utf-8")
    return count


def _csv_finding(finding: Finding) -> dict:
    shape = finding.shape
    box = shape.bbox() if shape is not None else None
    row = {"finding_uid": finding.uid, "finding_type": finding_type(finding.kind, finding.attributes),
           "pathology": finding.pathology.value, "birads": "" if finding.birads is None else finding.birads,
           "shape_type": shape_to_dict(shape)["type"] if shape is not None else "",
           "geometry": json.dumps(shape_to_dict(shape)) if shape is not None else "",
           "attributes": json.dumps({k: v for k, v in finding.attributes.items() if k != "finding_type"}),
           "note": finding.note, "source": finding.source, "author": finding.author,
           "created": finding.created, "modified": finding.modified, "modified_by": finding.modified_by}
    if box is not None:
        row.update(bbox_x0=box[0], bbox_y0=box[1], bbox_x1=box[2], bbox_y1=box[3], area_px=f"{area(shape):.2f}")
    return row


def read_csv(path: Path) -> dict[str, ImageLabels]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("image", "finding_type", "geometry") if c not in (reader.fieldnames or [])]
            if missing:
                raise LabelReadError(path, f"not a MammoDesk findings CSV: missing columns {missing}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelReadError(path, f"cannot be read ({exc})") from exc
    labels: dict[str, ImageLabels] = {}
    for line, row in enumerate(rows, start=2):
        image = row["image"]
        current = labels.get(image) or ImageLabels(
            image_id=image, density=row.get("image_density") or None,
            density_system="acr" if row.get("image_density") in ("A", "B", "C", "D") else (
                "mias" if row.get("image_density") else None),
            birads=_int(row.get("image_birads")), note=row.get("image_note", ""),
            laterality=row.get("laterality") or None, view=row.get("view") or None,
            extra={"pixel_sha256": row["pixel_sha256"]} if row.get("pixel_sha256") else {})
        if row["finding_type"]:
            try:
                finding = _finding_from_row(row)
            except (ValueError, KeyError, TypeError) as exc:
                raise LabelReadError(path, f"bad finding ({exc})", line) from exc
            current = replace(current, findings=current.findings + (finding,))
        labels[image] = current
    return labels


def _finding_from_row(row: dict) -> Finding:
    kind, extra = kind_for(row["finding_type"])
    attributes = dict(json.loads(row.get("attributes") or "{}"), **extra)
    return Finding(kind, Pathology(row.get("pathology") or "unknown"),
                   shape_from_dict(json.loads(row["geometry"])) if row["geometry"] else None,
                   _int(row.get("birads")), attributes, row.get("note", ""), row.get("source", ""),
                   uid=row.get("finding_uid", ""), author=row.get("author", ""), created=row.get("created", ""),
                   modified=row.get("modified", ""), modified_by=row.get("modified_by", ""))


def _int(text) -> int | None:
    return int(text) if text not in (None, "") else None


# --- COCO -------------------------------------------------------------------------------------
COCO_COORDINATES = ("COCO's convention: x right, y down, from the top-left corner of the top-left pixel (a pixel "
                    "centre is at +0.5); bbox is [x, y, width, height]. The exact shapes under 'mammodesk' use "
                    "pixel centres (the top-left pixel's centre is 0, 0), as MammoDesk's CSV does.")

def write_coco(images: list[ExportImage], path: Path, finding_types: tuple[str, ...]) -> int:
    """COCO instances JSON; exact MammoDesk shapes ride along under "mammodesk"."""
    types = list(finding_types)
    for item in images:
        for finding in item.labels.findings:
            name = finding_type(finding.kind, finding.attributes)
            if name not in types:
                types.append(name)
    categories = [{"id": i + 1, "name": name, "supercategory": "finding"} for i, name in enumerate(types)]
    coco_images, annotations = [], []
    for image_id, item in enumerate(images, start=1):
        labels = item.labels
        coco_images.append({"id": image_id, "file_name": item.file_name, "width": item.cols, "height": item.rows,
                            "mammodesk": {"image": labels.image_id, "pixel_sha256": item.sha256,
                                          "density": labels.density, "density_system": labels.density_system,
                                          "birads": labels.birads, "note": labels.note,
                                          "laterality": labels.laterality, "view": labels.view,
                                          "laterality_from_pixels": None if labels.laterality
                                          else item.pixel_laterality}})
        for finding in labels.findings:
            annotation = {"id": len(annotations) + 1, "image_id": image_id, "iscrowd": 0,
                          "category_id": types.index(finding_type(finding.kind, finding.attributes)) + 1,
                          "attributes": {"pathology": finding.pathology.value, "birads": finding.birads,
                                         **{k: v for k, v in finding.attributes.items() if k != "finding_type"}},
                          "mammodesk": finding_to_dict(finding)}
            annotation.update(_coco_geometry(finding))
            annotations.append(annotation)
    document = {"info": {"description": "MammoDesk annotations", "version": "1.0",
                         "coordinates": COCO_COORDINATES}, "licenses": [],
                "images": coco_images, "annotations": annotations, "categories": categories}
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return len(annotations)


def _coco_geometry(finding: Finding) -> dict:
    shape = finding.shape
    if shape is None or shape.bbox() is None:
        return {"bbox": [], "area": 0.0, "segmentation": []}
    x0, y0, x1, y1 = shape.bbox()
    geometry = {"bbox": [x0 + 0.5, y0 + 0.5, x1 - x0, y1 - y0], "area": area(shape)}
    if isinstance(shape, Point):
        geometry.update(segmentation=[], keypoints=[shape.x + 0.5, shape.y + 0.5, 2], num_keypoints=1)
    else:
        geometry["segmentation"] = [[round(v + 0.5, 3) for point in outline(shape) for v in point]]
    return geometry


def read_coco(path: Path) -> dict[str, ImageLabels]:
    """Labels keyed by MammoDesk image name (or file stem for other tools' COCO files)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        categories = {c["id"]: c["name"] for c in data["categories"]}
        images = {}
        for image in data["images"]:
            extra = image.get("mammodesk") or {}
            images[image["id"]] = ImageLabels(
                image_id=extra.get("image") or Path(image["file_name"]).stem, density=extra.get("density"),
                density_system=extra.get("density_system"), birads=extra.get("birads"),
                laterality=extra.get("laterality"), view=extra.get("view"), note=extra.get("note") or "",
                extra={"pixel_sha256": extra["pixel_sha256"]} if extra.get("pixel_sha256") else {})
        for annotation in data.get("annotations", []):
            image = images[annotation["image_id"]]
            finding = _coco_finding(annotation, categories[annotation["category_id"]])
            images[annotation["image_id"]] = replace(image, findings=image.findings + (finding,))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabelReadError(path, f"not a readable COCO file ({exc})") from exc
    return {labels.image_id: labels for labels in images.values()}


def _coco_finding(annotation: dict, category: str) -> Finding:
    if annotation.get("mammodesk"):
        return finding_from_dict(annotation["mammodesk"])
    kind, attributes = kind_for(category)
    extra = dict(annotation.get("attributes") or {})
    pathology = Pathology(extra.pop("pathology", "unknown") or "unknown")
    birads = extra.pop("birads", None)
    attributes.update({k: str(v) for k, v in extra.items() if v is not None})
    return Finding(kind, pathology, coco_shape(annotation), birads, attributes, source="COCO")


def coco_shape(annotation: dict):
    """Geometry of a plain COCO annotation: the polygon, a keypoint, or the box."""
    segmentation = annotation.get("segmentation") or []
    if isinstance(segmentation, list) and segmentation and len(segmentation[0]) >= 6:
        values = segmentation[0]
        points = tuple((values[i] - 0.5, values[i + 1] - 0.5) for i in range(0, len(values) - 1, 2))
        return rect_from_polygon(points) or Polygon(points)
    keypoints = annotation.get("keypoints") or []
    if len(keypoints) >= 2:
        return Point(keypoints[0] - 0.5, keypoints[1] - 0.5)
    box = annotation.get("bbox") or []
    if len(box) == 4:
        x, y, w, h = box
        return Rect(x - 0.5, y - 0.5, x - 0.5 + w, y - 0.5 + h)
    return None


# --- MIAS Info.txt ---------------------------------------------------------------------------------
MIAS_TISSUE_FROM_ACR = {"A": "F", "B": "G", "C": "D", "D": "D"}
_MARGIN_CLASS = {"circumscribed": "CIRC", "spiculated": "SPIC"}
_KIND_CLASS = {FindingKind.CALCIFICATION: "CALC", FindingKind.ARCHITECTURAL_DISTORTION: "ARCH",
               FindingKind.ASYMMETRY: "ASYM", FindingKind.NORMAL: "NORM"}


def write_mias(images: list[ExportImage], path: Path) -> tuple[int, list[str]]:
    """MIAS rows (REF TISSUE CLASS [SEVERITY X Y RADIUS]); every shape becomes its
    enclosing circle. Returns (rows written, what was left out and why)."""
    lines, skipped = mias_lines(images)
    path.write_text("\n".join(lines) + "\n", encoding="ascii", errors="replace")
    return len(lines), skipped


def mias_lines(images: list[ExportImage]) -> tuple[list[str], list[str]]:
    """The MIAS rows, and what the format cannot hold and why (asked before anything is written)."""
    lines, skipped = [], []
    for item in images:
        labels = item.labels
        tissue = labels.density if labels.density_system == "mias" else MIAS_TISSUE_FROM_ACR.get(labels.density or "")
        if tissue not in ("F", "G", "D"):
            skipped.append(f"{labels.image_id}: no breast density (MIAS needs F, G or D)")
            continue
        if not labels.findings:
            skipped.append(f"{labels.image_id}: no findings (label it 'normal' to write a NORM row)")
        for finding in labels.findings:
            if finding.kind == FindingKind.MASS:
                cls = _MARGIN_CLASS.get(finding.attributes.get("margin", ""), "MISC")
            elif finding.kind in _KIND_CLASS:
                cls = _KIND_CLASS[finding.kind]
            else:
                skipped.append(f"{labels.image_id}: a {finding_type(finding.kind, finding.attributes)} "
                               "has no MIAS class")
                continue
            fields = [labels.image_id, tissue, cls]
            if finding.pathology in (Pathology.BENIGN, Pathology.MALIGNANT) and cls != "NORM":
                fields.append("B" if finding.pathology == Pathology.BENIGN else "M")
            if finding.shape is not None and finding.shape.bbox() is not None and cls != "NORM":
                circle = enclosing_circle(finding.shape)
                fields += [str(round(circle.cx)), str(item.rows - 1 - round(circle.cy)),
                           str(max(1, math.ceil(circle.radius - 1e-6)))]
            lines.append(" ".join(fields))
    return lines, skipped
