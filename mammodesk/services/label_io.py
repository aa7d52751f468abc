"""Label files in and out of the labelling state: read any supported format,
match its images to the open ones, and build de-identified exports."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mammodesk.annotations import exports
from mammodesk.annotations.cbis import read_cbis_csv
from mammodesk.annotations.inbreast import read_inbreast_xml
from mammodesk.annotations.mias import read_mias_info
from mammodesk.annotations.model import ImageLabels, MaskRef, Polygon
from mammodesk.errors import ImageReadError, LabelReadError

IMPORT_FORMATS = {
    "mias": "MIAS Info.txt (*.txt)",
    "cbis": "CBIS-DDSM case description CSV (*.csv)",
    "inbreast": "INbreast ROI XML (*.xml)",
    "csv": "MammoDesk findings CSV (*.csv)",
    "coco": "COCO JSON (*.json)",
    "sr": "DICOM Structured Report (*.dcm)",
}
EXPORT_FORMATS = {
    "csv": "Findings CSV (*.csv)",
    "coco": "COCO JSON (*.json)",
    "mias": "MIAS Info.txt (*.txt)",
    "sr": "DICOM SR TID 1500, one per DICOM image (folder)",
}


@dataclass(frozen=True)
class LabelTarget:
    """An open image that labels can be matched to or exported from."""

    key: int
    path: Path | None
    sha256: str
    shape: tuple[int, int]
    is_dicom: bool = False
    pixel_laterality: str | None = None  # the side read from the pixels, when the file does not state one


def read_labels_file(path: Path, kind: str) -> list[ImageLabels]:
    """Every image's labels in a file (runs off the UI thread: CBIS masks are decoded)."""
    path = Path(path)
    if kind == "mias":
        return list(read_mias_info(path).values())
    if kind == "cbis":
        return [_cbis_outlines(labels, path.parent) for labels in read_cbis_csv(path).values()]
    if kind == "inbreast":
        number = path.stem.split("_")[0]
        return [ImageLabels(image_id=number, findings=read_inbreast_xml(path))]
    if kind == "csv":
        return list(exports.read_csv(path).values())
    if kind == "coco":
        return list(exports.read_coco(path).values())
    if kind == "sr":
        from mammodesk.annotations.dicom_sr import read_sr

        uid, labels = read_sr(path)
        return [dataclasses.replace(labels, extra={"sop_instance_uid": uid})]
    raise ValueError(f"unknown label format {kind!r}; choose one of {sorted(IMPORT_FORMATS)}")


def _cbis_outlines(labels: ImageLabels, root: Path) -> ImageLabels:
    """CBIS-DDSM findings are mask files: their outline becomes an editable polygon
    when the mask is found (relative to the CSV's folder); otherwise the finding stays unlocated."""
    from mammodesk.io import read_image

    findings = []
    for finding in labels.findings:
        shape = finding.shape
        if isinstance(shape, MaskRef):
            mask_path = root / shape.path.replace("\\", "/")
            try:
                outline = mask_outline(read_image(mask_path).pixels)
                finding = dataclasses.replace(finding, shape=outline)
            except ImageReadError as exc:
                finding = dataclasses.replace(finding, shape=None, note=f"ROI mask not read: {exc.cause}")
        findings.append(finding)
    return dataclasses.replace(labels, findings=tuple(findings))


def mask_outline(mask: np.ndarray) -> Polygon:
    """The outer outline of the largest region of a binary mask, in pixel centres."""
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        raise ImageReadError(None, "the ROI mask is empty")
    largest = max(contours, key=cv2.contourArea).reshape(-1, 2)
    if len(largest) < 3:
        x, y = largest[0]
        largest = np.array([[x - 0.5, y - 0.5], [x + 0.5, y - 0.5], [x + 0.5, y + 0.5], [x - 0.5, y + 0.5]])
    return Polygon(tuple((float(x), float(y)) for x, y in largest))


def names_for(target: LabelTarget) -> set[str]:
    """The names a label file may use for this image: file stem, INbreast's number,
    CBIS-DDSM's folder names, the pixel-hash export name, the DICOM instance UID."""
    names = {f"image-{target.sha256[:12]}", target.sha256}
    if target.path is not None:
        names |= {target.path.stem, target.path.name, target.path.stem.split("_")[0]}
        names |= {parent.name for parent in list(target.path.parents)[:3]}
    if target.is_dicom and target.path is not None:
        names |= set(_instance_uids(target.path))
    return {n for n in names if n}


def _instance_uids(path: Path) -> list[str]:
    import pydicom
    from pydicom.uid import generate_uid

    try:
        uid = str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
    except Exception:  # any unreadable header simply matches by the other names
        return []
    return [uid, generate_uid(entropy_srcs=["mammodesk", uid])]  # the de-identified SR export's reference


def match(imported: list[ImageLabels], targets: list[LabelTarget]) -> tuple[dict[int, ImageLabels], list[str]]:
    """(labels per open image, names of imported images that match none)."""
    by_name: dict[str, int] = {}
    for target in targets:
        for name in names_for(target):
            by_name.setdefault(name, target.key)
    matched: dict[int, ImageLabels] = {}
    unmatched = []
    for labels in imported:
        keys = [labels.extra.get("pixel_sha256"), labels.extra.get("sop_instance_uid"), labels.image_id]
        key = next((by_name[k] for k in keys if k and k in by_name), None)
        if key is None:
            unmatched.append(labels.image_id)
        elif key in matched:
            previous = matched[key]
            matched[key] = dataclasses.replace(previous, findings=previous.findings + labels.findings)
        else:
            matched[key] = labels
    return matched, unmatched


def public_names(target: LabelTarget) -> tuple[str, str]:
    """(image id, file name) as exports show them: the stem, unless the stem
    carries an identifying DICOM value (then a pixel-hash name)."""
    if target.path is None:
        name = f"image-{target.sha256[:12]}"
        return name, name
    identifying = _identifying_values(target.path) if target.is_dicom else []
    stem = exports.public_id(target.path.stem, target.sha256, identifying)
    return stem, (target.path.name if stem == target.path.stem else stem + target.path.suffix)


def _identifying_values(path: Path) -> list[str]:
    import pydicom

    from mammodesk.io.phi import is_identifying

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # treat an unreadable header as "may identify": the hash name is used
        return [path.stem]
    values = []
    for element in header:
        if is_identifying(element) and element.VR != "SQ" and element.value not in (None, ""):
            values.extend(str(element.value).replace("^", " ").split() + [str(element.value)])
    return values


def export_images(items: list[tuple[LabelTarget, ImageLabels]]) -> list[exports.ExportImage]:
    result = []
    for target, labels in items:
        image_id, file_name = public_names(target)
        result.append(exports.ExportImage(dataclasses.replace(labels, image_id=image_id), file_name,
                                          target.shape[0], target.shape[1], target.sha256, target.pixel_laterality))
    return result


def cannot_hold(kind: str, items: list[tuple[LabelTarget, ImageLabels]]) -> list[str]:
    """What an export of `kind` would leave out, and why, one line per image or finding: asked before writing,
    so nothing is lost in silence."""
    if kind == "mias":
        return exports.mias_lines(export_images(items))[1]
    if kind == "sr":
        return [f"{image.labels.image_id}: not a DICOM image (an SR refers to the image's UIDs)"
                for (target, _), image in zip(items, export_images(items)) if not target.is_dicom or not target.path]
    return []


def export(kind: str, out: Path, items: list[tuple[LabelTarget, ImageLabels]], *, finding_types=(),
           author: str = "", include_identifiers: bool = False) -> str:
    """Write an export; returns a one-line summary for the status bar."""
    images = export_images(items)
    if kind == "csv":
        return f"{exports.write_csv(images, out)} row(s) written to {out.name}"
    if kind == "coco":
        return f"{exports.write_coco(images, out, tuple(finding_types))} annotation(s) written to {out.name}"
    if kind == "mias":
        rows, skipped = exports.write_mias(images, out)
        return f"{rows} MIAS row(s) written to {out.name}" + (f"; left out: {'; '.join(skipped)}" if skipped else "")
    if kind == "sr":
        from mammodesk.annotations.dicom_sr import write_sr

        out.mkdir(parents=True, exist_ok=True)
        written, skipped = 0, []
        for (target, labels), image in zip(items, images):
            if not target.is_dicom or target.path is None:
                skipped.append(image.labels.image_id)
                continue
            write_sr(labels, target.path, out / f"{image.labels.image_id}.sr.dcm", author=author,
                     include_identifiers=include_identifiers)
            written += 1
        note = f"; not DICOM, left out: {', '.join(skipped)}" if skipped else ""
        return f"{written} structured report(s) written to {out}{note}"
    raise LabelReadError(out, f"unknown export format {kind!r}")
