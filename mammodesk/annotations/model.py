"""A small Qt-free ROI model. Coordinates are source pixels: x = column,
y = row, origin at the top-left, pixel centres at integer positions."""

from __future__ import annotations

import getpass
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping, Union


class FindingKind(str, Enum):
    MASS = "mass"
    CALCIFICATION = "calcification"
    ARCHITECTURAL_DISTORTION = "architectural_distortion"
    ASYMMETRY = "asymmetry"
    NORMAL = "normal"
    OTHER = "other"


class Pathology(str, Enum):
    BENIGN = "benign"
    MALIGNANT = "malignant"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Point:
    x: float
    y: float

    def bbox(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x, self.y

    def contains(self, x: float, y: float) -> bool:
        return math.hypot(x - self.x, y - self.y) <= 0.5


@dataclass(frozen=True)
class Circle:
    cx: float
    cy: float
    radius: float

    def bbox(self) -> tuple[float, float, float, float]:
        return self.cx - self.radius, self.cy - self.radius, self.cx + self.radius, self.cy + self.radius

    def contains(self, x: float, y: float) -> bool:
        return math.hypot(x - self.cx, y - self.cy) <= self.radius


@dataclass(frozen=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float

    def bbox(self) -> tuple[float, float, float, float]:
        return min(self.x0, self.x1), min(self.y0, self.y1), max(self.x0, self.x1), max(self.y0, self.y1)

    def contains(self, x: float, y: float) -> bool:
        x0, y0, x1, y1 = self.bbox()
        return x0 <= x <= x1 and y0 <= y <= y1


@dataclass(frozen=True)
class Ellipse:
    cx: float
    cy: float
    rx: float
    ry: float
    angle_deg: float = 0.0

    def bbox(self) -> tuple[float, float, float, float]:
        t = math.radians(self.angle_deg)
        half_w = math.hypot(self.rx * math.cos(t), self.ry * math.sin(t))
        half_h = math.hypot(self.rx * math.sin(t), self.ry * math.cos(t))
        return self.cx - half_w, self.cy - half_h, self.cx + half_w, self.cy + half_h

    def contains(self, x: float, y: float) -> bool:
        t = math.radians(self.angle_deg)
        dx, dy = x - self.cx, y - self.cy
        u = dx * math.cos(t) + dy * math.sin(t)
        v = -dx * math.sin(t) + dy * math.cos(t)
        return (u / self.rx) ** 2 + (v / self.ry) ** 2 <= 1.0


@dataclass(frozen=True)
class Polygon:
    points: tuple[tuple[float, float], ...]

    def bbox(self) -> tuple[float, float, float, float]:
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return min(xs), min(ys), max(xs), max(ys)

    def contains(self, x: float, y: float) -> bool:
        inside = False
        pts = self.points
        for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
            if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                inside = not inside
        return inside


@dataclass(frozen=True)
class MaskRef:
    """A finding outlined by a binary mask image elsewhere (CBIS-DDSM ROI masks)."""

    path: str

    def bbox(self) -> None:
        return None

    def contains(self, x: float, y: float) -> bool:
        raise NotImplementedError("load the mask image to test membership")


Shape = Union[Point, Circle, Rect, Ellipse, Polygon, MaskRef]


@dataclass(frozen=True)
class Finding:
    """One labelled region or image-level finding (shape None = location unknown)."""

    kind: FindingKind
    pathology: Pathology = Pathology.UNKNOWN
    shape: Shape | None = None
    birads: int | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    source: str = ""
    uid: str = ""  # stable identity while labelling (selection, undo, exports)
    author: str = ""  # who created it
    created: str = ""  # ISO 8601 UTC
    modified: str = ""
    modified_by: str = ""

    def __post_init__(self) -> None:
        if self.birads is not None and not 0 <= self.birads <= 6:
            raise ValueError(f"BI-RADS must be 0-6, got {self.birads}")


@dataclass(frozen=True)
class ImageLabels:
    """All labels of one image. `density` keeps the source's scale, named by
    `density_system` ("mias": F/G/D, "acr": A-D)."""

    image_id: str
    findings: tuple[Finding, ...] = ()
    density: str | None = None
    density_system: str | None = None
    birads: int | None = None
    laterality: str | None = None
    view: str | None = None
    patient_key: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    def __post_init__(self) -> None:
        if self.birads is not None and not 0 <= self.birads <= 6:
            raise ValueError(f"BI-RADS must be 0-6, got {self.birads}")

    @property
    def is_normal(self) -> bool:
        return all(f.kind == FindingKind.NORMAL for f in self.findings)

    @property
    def located_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.shape is not None)


def findings_off_mask(labels: ImageLabels, mask) -> tuple[Finding, ...]:
    """Located findings whose centre is not on the (breast) mask: annotation
    quirks such as MIAS mdb212/mdb214, calcification centres marked on the
    background. Callers decide whether to warn, skip or keep them."""
    rows, cols = mask.shape
    off = []
    for finding in labels.located_findings:
        box = finding.shape.bbox()
        if box is None:
            continue
        col, row = round((box[0] + box[2]) / 2), round((box[1] + box[3]) / 2)
        if not (0 <= row < rows and 0 <= col < cols and mask[row, col]):
            off.append(finding)
    return tuple(off)


def default_author() -> str:
    """Who writes labels and reports when nobody said: the logged-in user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in containers without a passwd entry
        return "unknown"
