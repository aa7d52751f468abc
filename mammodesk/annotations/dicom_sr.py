"""DICOM Structured Report export (TID 1500 Measurement Report, through
highdicom) of one DICOM image's findings, and reading it back.

Each located finding is a TID 1410 planar ROI group: the outline as an image
region (POINT, CIRCLE, ELLIPSE or a closed POLYLINE, DICOM's pixel-corner
coordinates), the finding type as a SNOMED code, pathology, BI-RADS and the
taxonomy attributes as qualitative evaluations, the note as a comment.
Image-level labels (density, BI-RADS, note) form one TID 1501 group.

By default the report is de-identified: the patient, physician, institution
and every date are left out, and the study/series/image UIDs are replaced by
UIDs derived from them (the same image always maps to the same UID, so
reports of one study still group). `include_identifiers=True` keeps the
source's identity and real references."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from mammodesk.annotations.geometry import rect_from_polygon
from mammodesk.annotations.model import (
    Circle, Ellipse, Finding, FindingKind, ImageLabels, MaskRef, Pathology, Point, Polygon, Rect,
)
from mammodesk.annotations.taxonomy import finding_type, kind_for
from mammodesk.errors import LabelReadError
from mammodesk.io.phi import is_identifying

SCHEME = "99MAMMODESK"  # private coding scheme for values without a standard code
FINDING_CODES = {
    FindingKind.MASS: codes.SCT.Mass,
    FindingKind.CALCIFICATION: codes.SCT.CalcificationOfBreast,
    FindingKind.ARCHITECTURAL_DISTORTION: codes.SCT.ArchitecturalDistortionOfBreast,
    FindingKind.ASYMMETRY: codes.SCT.AsymmetricBreastTissue,
    FindingKind.NORMAL: codes.SCT.BreastNormal,
}
PATHOLOGY_CODES = {Pathology.BENIGN: codes.SCT.Benign, Pathology.MALIGNANT: codes.SCT.Malignant,
                   Pathology.UNKNOWN: codes.SCT.Unknown}
DENSITY_CODES = {"A": codes.SCT.AlmostEntirelyFatBreastComposition,
                 "B": codes.SCT.ScatteredFibroglandularDensities,
                 "C": codes.SCT.HeterogeneouslyDenseBreastComposition,
                 "D": codes.SCT.ExtremelyDenseBreastComposition}
BIRADS_NAME = codes.DCM.AssessmentCategory
PATHOLOGY_NAME = codes.DCM.Pathology
DENSITY_NAME = codes.DCM.BreastComposition
IMAGE_GROUP = "image labels"


def _private(value: str) -> Code:
    return Code(value[:16].replace(" ", "_") or "none", SCHEME, value[:64])


def deidentified(source: Dataset) -> Dataset:
    """A header copy without identifying attributes; instance UIDs mapped to derived ones."""
    copy = Dataset()
    for element in source:
        if element.tag.group == 0x7FE0 or element.tag.group == 0x0002:
            continue
        if not is_identifying(element):
            copy.add(element)
        elif element.VR == "UI" and element.value:
            copy.add_new(element.tag, "UI", generate_uid(entropy_srcs=["mammodesk", str(element.value)]))
    return _with_type2(copy)


TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
         "AccessionNumber", "ReferringPhysicianName", "StudyID")


def _with_type2(header: Dataset) -> Dataset:
    """The report copies these from its evidence; they may be empty but must exist."""
    for keyword in TYPE2:
        if keyword not in header:
            setattr(header, keyword, "")
    return header


def write_sr(labels: ImageLabels, source: Path, out: Path, *, author: str = "MammoDesk",
             include_identifiers: bool = False) -> int:
    """Write the report; returns the number of ROI groups."""
    document, groups = build_sr(labels, source, author=author, include_identifiers=include_identifiers)
    document.save_as(out, enforce_file_format=True)
    return groups


def build_sr(labels: ImageLabels, source: Path, *, author: str = "MammoDesk", include_identifiers: bool = False,
             series_instance_uid: str | None = None, instance_number: int = 1) -> tuple[Dataset, int]:
    """(the report, its number of ROI groups). An author's reports of one study share
    `series_instance_uid` (one series per author); every call makes a new instance."""
    import highdicom as hd

    try:
        header = pydicom.dcmread(source, stop_before_pixels=True)
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise LabelReadError(source, f"the source is not a readable DICOM file ({exc})") from exc
    evidence = _with_type2(header) if include_identifiers else deidentified(header)
    image_ref = hd.sr.SourceImageForRegion(referenced_sop_class_uid=evidence.SOPClassUID,
                                           referenced_sop_instance_uid=evidence.SOPInstanceUID)
    groups = []
    for finding in labels.findings:
        if finding.shape is None or isinstance(finding.shape, MaskRef):
            continue
        graphic_type, data = _graphic(finding.shape)
        group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=finding.uid or "roi"),
            referenced_region=hd.sr.ImageRegion(graphic_type=graphic_type, graphic_data=data,
                                                source_image=image_ref),
            finding_type=FINDING_CODES.get(finding.kind) or _private(finding_type(finding.kind,
                                                                                  finding.attributes)),
            qualitative_evaluations=_evaluations(hd, finding))
        _add_comment(hd, group, finding.note)
        groups.append(group)
    image_items = [hd.sr.QualitativeEvaluation(BIRADS_NAME, _private(f"BI-RADS {labels.birads}"))] \
        if labels.birads is not None else []
    if labels.density:
        value = DENSITY_CODES.get(labels.density) if labels.density_system == "acr" else None
        image_items.append(hd.sr.QualitativeEvaluation(DENSITY_NAME, value or _private(labels.density)))
    if image_items or labels.note:
        group = hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=IMAGE_GROUP),
            qualitative_evaluations=image_items or None)
        _add_comment(hd, group, labels.note)
        groups.append(group)
    observer = hd.sr.ObserverContext(
        observer_type=codes.cid270.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=person_name(author)))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.SCT.Mammography, imaging_measurements=groups or None)
    document = hd.sr.Comprehensive3DSR(
        evidence=[evidence], content=report, series_instance_uid=series_instance_uid or hd.UID(), series_number=990,
        sop_instance_uid=hd.UID(), instance_number=instance_number, manufacturer="MammoDesk",
        series_description=f"MammoDesk annotations ({person_name(author).replace('^', ' ').strip()})")
    return document, len(groups)


def sr_author(ds: Dataset) -> str:
    """The person observer who wrote a report ("" when it names none)."""
    for item in ds.get("ContentSequence", []):
        if _is(item, codes.DCM.PersonObserverName) and "PersonName" in item:
            return str(item.PersonName)
    return ""


def referenced_images(ds: Dataset) -> set[str]:
    """SOP Instance UIDs of the images a report's evidence lists."""
    found = set()
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        for series in study.get("ReferencedSeriesSequence", []):
            for item in series.get("ReferencedSOPSequence", []):
                found.add(str(item.ReferencedSOPInstanceUID))
    return found


def person_name(name: str) -> str:
    """A DICOM person name: "Jane Doe" -> "Doe^Jane", a login name "jdoe" -> "jdoe^"."""
    parts = (name or "MammoDesk").replace("^", " ").split()
    return f"{parts[-1]}^{' '.join(parts[:-1])}" if len(parts) > 1 else f"{parts[0]}^"


def _graphic(shape) -> tuple[str, np.ndarray]:
    """DICOM SCOORD data: (0, 0) is the top-left corner of the top-left pixel."""
    if isinstance(shape, Point):
        return "POINT", np.array([[shape.x + 0.5, shape.y + 0.5]])
    if isinstance(shape, Circle):
        return "CIRCLE", np.array([[shape.cx, shape.cy], [shape.cx + shape.radius, shape.cy]]) + 0.5
    if isinstance(shape, Ellipse):
        t = math.radians(shape.angle_deg)
        u = np.array([math.cos(t), math.sin(t)]) * shape.rx
        v = np.array([-math.sin(t), math.cos(t)]) * shape.ry
        c = np.array([shape.cx, shape.cy])
        return "ELLIPSE", np.array([c - u, c + u, c - v, c + v]) + 0.5
    if isinstance(shape, Rect):
        x0, y0, x1, y1 = shape.bbox()
        points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    else:
        points = list(shape.points)
    return "POLYLINE", np.array(points + points[:1]) + 0.5


def _evaluations(hd, finding: Finding) -> list:
    items = [hd.sr.QualitativeEvaluation(PATHOLOGY_NAME, PATHOLOGY_CODES[finding.pathology])]
    if finding.birads is not None:
        items.append(hd.sr.QualitativeEvaluation(BIRADS_NAME, _private(f"BI-RADS {finding.birads}")))
    for name, value in finding.attributes.items():
        if name != "finding_type":
            items.append(hd.sr.QualitativeEvaluation(_private(name), _private(str(value))))
    return items


def _add_comment(hd, group, note: str) -> None:
    if note:
        group[0].ContentSequence.append(hd.sr.TextContentItem(
            name=codes.DCM.Comment, value=note, relationship_type="HAS PROPERTIES"))


# --- reading ------------------------------------------------------------------------------------
def read_sr(path: Path) -> tuple[str, ImageLabels]:
    """(referenced SOP Instance UID, labels) of a MammoDesk/TID 1500 report."""
    try:
        ds = pydicom.dcmread(path)
        content = ds.ContentSequence
    except (OSError, AttributeError, pydicom.errors.InvalidDicomError) as exc:
        raise LabelReadError(path, f"not a DICOM structured report ({exc})") from exc
    labels = ImageLabels(image_id=Path(path).stem)
    referenced = ""
    for measurements in _children(content, codes.DCM.ImagingMeasurements):
        for group in _children(measurements.ContentSequence, codes.DCM.MeasurementGroup):
            items = list(group.ContentSequence)
            identifier = next((i.TextValue for i in items if _is(i, codes.DCM.TrackingIdentifier)), "")
            if identifier == IMAGE_GROUP:
                labels = _image_labels(labels, items)
                continue
            finding, uid = _finding(path, items, identifier)
            referenced = referenced or uid
            labels = replace(labels, findings=labels.findings + (finding,))
    return referenced, labels


def _children(sequence, concept: Code):
    return [item for item in sequence if _is(item, concept) and "ContentSequence" in item]


def _is(item: Dataset, concept: Code) -> bool:
    names = item.get("ConceptNameCodeSequence")
    return bool(names) and names[0].CodeValue == concept.value and \
        names[0].CodingSchemeDesignator == concept.scheme_designator


def _code(item: Dataset) -> Code:
    concept = item.ConceptCodeSequence[0]
    return Code(concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning)


def _finding(path: Path, items: list, identifier: str) -> tuple[Finding, str]:
    kind, attributes = FindingKind.OTHER, {}
    pathology, birads, note, shape, uid = Pathology.UNKNOWN, None, "", None, ""
    for item in items:
        if _is(item, codes.DCM.Finding):
            code = _code(item)
            known = [k for k, c in FINDING_CODES.items() if c.value == code.value]
            kind, attributes = (known[0], {}) if known else kind_for(code.meaning)
        elif _is(item, codes.DCM.ImageRegion):
            shape = _shape(path, item.GraphicType, np.asarray(item.GraphicData, float).reshape(-1, 2) - 0.5)
            uid = item.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        elif _is(item, PATHOLOGY_NAME):
            value = _code(item).value
            pathology = next(p for p, c in PATHOLOGY_CODES.items() if c.value == value)
        elif _is(item, BIRADS_NAME):
            birads = int(_code(item).meaning.split()[-1])
        elif _is(item, codes.DCM.Comment):
            note = item.TextValue
        elif item.ValueType == "CODE" and item.ConceptNameCodeSequence[0].CodingSchemeDesignator == SCHEME:
            attributes[item.ConceptNameCodeSequence[0].CodeMeaning] = _code(item).meaning
    return Finding(kind, pathology, shape, birads, attributes, note, source="DICOM SR", uid=identifier), uid


def _shape(path: Path, graphic_type: str, points: np.ndarray):
    points = points.tolist()
    if graphic_type == "POINT":
        return Point(*points[0])
    if graphic_type == "CIRCLE":
        (cx, cy), (x, y) = points[0], points[1]
        return Circle(cx, cy, math.hypot(x - cx, y - cy))
    if graphic_type == "ELLIPSE":
        (ax, ay), (bx, by), (cx, cy), (dx, dy) = points[:4]
        major = (bx - ax, by - ay)
        return Ellipse((ax + bx) / 2, (ay + by) / 2, math.hypot(*major) / 2, math.hypot(dx - cx, dy - cy) / 2,
                       math.degrees(math.atan2(major[1], major[0])))
    if graphic_type in ("POLYLINE", "POLYGON"):
        pts = [tuple(map(float, p)) for p in points]
        if len(pts) > 3 and pts[0] == pts[-1]:
            pts = pts[:-1]
        return rect_from_polygon(pts) or Polygon(tuple(pts))
    raise LabelReadError(path, f"graphic type {graphic_type} is not supported")


def _image_labels(labels: ImageLabels, items: list) -> ImageLabels:
    for item in items:
        if _is(item, BIRADS_NAME):
            labels = replace(labels, birads=int(_code(item).meaning.split()[-1]))
        elif _is(item, DENSITY_NAME):
            code = _code(item)
            acr = [letter for letter, c in DENSITY_CODES.items() if c.value == code.value]
            labels = replace(labels, density=acr[0] if acr else code.meaning,
                             density_system="acr" if acr else "mias")
        elif _is(item, codes.DCM.Comment):
            labels = replace(labels, note=item.TextValue)
    return labels
