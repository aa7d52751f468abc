"""Findings, shapes and image labels <-> plain JSON values (sidecars, COCO extras)."""

from __future__ import annotations

from typing import Any

from mammodesk.annotations.model import (
    Circle, Ellipse, Finding, FindingKind, ImageLabels, MaskRef, Pathology, Point, Polygon, Rect, Shape,
)

_SHAPES = {"point": Point, "circle": Circle, "rect": Rect, "ellipse": Ellipse, "polygon": Polygon,
           "mask": MaskRef}
_NAMES = {cls: name for name, cls in _SHAPES.items()}


def shape_to_dict(shape: Shape) -> dict[str, Any]:
    if isinstance(shape, Polygon):
        return {"type": "polygon", "points": [[x, y] for x, y in shape.points]}
    data = {"type": _NAMES[type(shape)]}
    data.update(vars(shape))
    return data


def shape_from_dict(data: dict[str, Any]) -> Shape:
    kind = data.get("type")
    if kind not in _SHAPES:
        raise ValueError(f"unknown shape type {kind!r}")
    if kind == "polygon":
        points = tuple((float(x), float(y)) for x, y in data["points"])
        if len(points) < 3:
            raise ValueError("a polygon needs at least three points")
        return Polygon(points)
    if kind == "mask":
        return MaskRef(str(data["path"]))
    fields = {k: float(v) for k, v in data.items() if k != "type"}
    return _SHAPES[kind](**fields)


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    return {
        "uid": finding.uid,
        "kind": finding.kind.value,
        "pathology": finding.pathology.value,
        "birads": finding.birads,
        "shape": shape_to_dict(finding.shape) if finding.shape is not None else None,
        "attributes": dict(finding.attributes),
        "note": finding.note,
        "source": finding.source,
        "author": finding.author,
        "created": finding.created,
        "modified": finding.modified,
        "modified_by": finding.modified_by,
    }


def finding_from_dict(data: dict[str, Any]) -> Finding:
    shape = data.get("shape")
    birads = data.get("birads")
    return Finding(
        kind=FindingKind(data["kind"]),
        pathology=Pathology(data.get("pathology", "unknown")),
        shape=shape_from_dict(shape) if shape else None,
        birads=int(birads) if birads is not None else None,
        attributes={str(k): str(v) for k, v in (data.get("attributes") or {}).items()},
        note=str(data.get("note", "")),
        source=str(data.get("source", "")),
        uid=str(data.get("uid", "")),
        author=str(data.get("author", "")),
        created=str(data.get("created", "")),
        modified=str(data.get("modified", "")),
        modified_by=str(data.get("modified_by", "")),
    )


IMAGE_FIELDS = ("image_id", "density", "density_system", "birads", "laterality", "view", "note")


def labels_to_dict(labels: ImageLabels) -> dict[str, Any]:
    data = {name: getattr(labels, name) for name in IMAGE_FIELDS}
    data["findings"] = [finding_to_dict(f) for f in labels.findings]
    return data


def labels_from_dict(data: dict[str, Any]) -> ImageLabels:
    birads = data.get("birads")
    return ImageLabels(
        image_id=str(data.get("image_id", "")),
        findings=tuple(finding_from_dict(f) for f in data.get("findings", [])),
        density=data.get("density"),
        density_system=data.get("density_system"),
        birads=int(birads) if birads is not None else None,
        laterality=data.get("laterality"),
        view=data.get("view"),
        note=str(data.get("note", "")),
    )
