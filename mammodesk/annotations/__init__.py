"""Findings and ROIs in source-pixel coordinates, and readers for public label formats."""

from mammodesk.annotations.cbis import read_cbis_csv
from mammodesk.annotations.inbreast import read_inbreast_sheet, read_inbreast_xml
from mammodesk.annotations.mias import read_mias_info
from mammodesk.annotations.model import (
    Circle, Ellipse, Finding, FindingKind, ImageLabels, MaskRef, Pathology, Point, Polygon, Rect, Shape,
    findings_off_mask,
)

__all__ = [
    "Circle", "Ellipse", "Finding", "FindingKind", "ImageLabels", "MaskRef", "Pathology", "Point",
    "Polygon", "Rect", "Shape", "read_cbis_csv", "read_inbreast_sheet", "read_inbreast_xml",
    "read_mias_info", "findings_off_mask",
]
