"""The label vocabulary: what a finding can be called. A default after ACR
BI-RADS (5th edition) mammography lexicon, editable per project: a
`mammodesk-taxonomy.json` in the images' folder (or a parent) overrides it.

Finding types beyond the five standard ones are kept as kind "other" with
the attribute `finding_type` naming them, so the training code's classes stay
fixed while a project can add its own (e.g. "lymph node")."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mammodesk.annotations.model import FindingKind

TAXONOMY_FILE = "mammodesk-taxonomy.json"
STANDARD_TYPES = ("mass", "calcification", "architectural_distortion", "asymmetry", "normal")
DEFAULT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": ("oval", "round", "irregular", "lobulated"),
    "margin": ("circumscribed", "obscured", "microlobulated", "indistinct", "ill-defined", "spiculated"),
    "morphology": ("amorphous", "coarse heterogeneous", "fine pleomorphic", "fine linear branching",
                   "punctate", "round", "rim", "coarse popcorn", "large rod-like", "dystrophic",
                   "milk of calcium", "vascular", "skin", "suture"),
    "distribution": ("diffuse", "regional", "grouped", "linear", "segmental"),
}
# Which attributes the editor offers for which finding type.
DEFAULT_APPLIES = {"shape": ("mass",), "margin": ("mass",), "morphology": ("calcification",),
                   "distribution": ("calcification",)}
DENSITY = ("A", "B", "C", "D")
BIRADS = tuple(range(7))


@dataclass(frozen=True)
class Taxonomy:
    finding_types: tuple[str, ...] = STANDARD_TYPES
    attributes: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTES))
    applies_to: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_APPLIES))
    source: str = "built-in default"

    def attributes_for(self, finding_type: str) -> tuple[str, ...]:
        return tuple(name for name in self.attributes if finding_type in self.applies_to.get(name, ()))

    def to_json(self) -> str:
        return json.dumps({"finding_types": list(self.finding_types),
                           "attributes": {k: list(v) for k, v in self.attributes.items()},
                           "applies_to": {k: list(v) for k, v in self.applies_to.items()}}, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "") -> "Taxonomy":
        """Validated: the five standard types stay (importers and models use them)."""
        data = json.loads(text)
        types = [str(t) for t in data.get("finding_types", STANDARD_TYPES)]
        missing = [t for t in STANDARD_TYPES if t not in types]
        if missing:
            raise ValueError(f"the taxonomy must keep the standard finding types; missing {missing}")
        if len(set(types)) != len(types):
            raise ValueError("finding types are listed twice")
        attributes = {str(k): tuple(str(v) for v in values) for k, values in data.get("attributes", {}).items()}
        applies = {str(k): tuple(str(v) for v in values) for k, values in data.get("applies_to", {}).items()}
        unknown = sorted({t for values in applies.values() for t in values} - set(types))
        if unknown:
            raise ValueError(f"applies_to names unknown finding types {unknown}")
        return cls(tuple(types), attributes, applies, source)


def finding_type(kind: FindingKind, attributes) -> str:
    """The taxonomy name of a finding (custom types live in the attributes)."""
    if kind == FindingKind.OTHER:
        return str(attributes.get("finding_type", "other"))
    return kind.value


def kind_for(type_name: str) -> tuple[FindingKind, dict[str, str]]:
    """(kind, extra attributes) for a taxonomy finding type."""
    if type_name in STANDARD_TYPES:
        return FindingKind(type_name), {}
    return FindingKind.OTHER, {"finding_type": type_name}


def find_taxonomy_file(folder: Path) -> Path | None:
    for candidate in [folder, *folder.parents]:
        path = candidate / TAXONOMY_FILE
        if path.is_file():
            return path
    return None


def load_taxonomy(folder: Path | None) -> tuple[Taxonomy, str | None]:
    """The project's taxonomy for images in `folder`, and an error message if its
    file exists but is unusable (then the default is used and the file left as it is)."""
    path = find_taxonomy_file(folder) if folder is not None else None
    if path is None:
        return Taxonomy(), None
    try:
        return Taxonomy.from_json(path.read_text(encoding="utf-8"), str(path)), None
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        return Taxonomy(), f"{path}: {exc}; using the built-in taxonomy"
