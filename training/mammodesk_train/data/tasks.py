"""Tasks: how a record (or one finding of it) becomes a class index, or None
when it does not belong to the task (e.g. a normal image for benign vs
malignant, BI-RADS 3 for the malignancy rule)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from mammodesk.annotations import Finding, FindingKind, ImageLabels, Pathology

from mammodesk_train.data.sources import Record

LabelFn = Callable[[Record, Finding | None], int | None]


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    classes: tuple[str, ...]
    label: LabelFn
    level: str = "image"  # "image": one label per image; "finding": one per ROI

    def labels_for(self, records: Sequence[Record]) -> list[int | None]:
        return [self.label(r, None) for r in records]


def _image_pathology(labels: ImageLabels) -> Pathology | None:
    located = [f.pathology for f in labels.findings if f.kind != FindingKind.NORMAL]
    if Pathology.MALIGNANT in located:
        return Pathology.MALIGNANT
    if Pathology.BENIGN in located:
        return Pathology.BENIGN
    return None


def _density(system: str) -> LabelFn:
    classes = ("F", "G", "D") if system == "mias" else ("A", "B", "C", "D")

    def label(record: Record, finding: Finding | None) -> int | None:
        labels = record.labels
        if labels.density_system != system or labels.density not in classes:
            return None
        return classes.index(labels.density)

    return label


def _normal_abnormal(record: Record, finding: Finding | None) -> int | None:
    if finding is not None:
        return 0 if finding.kind == FindingKind.NORMAL else 1
    if not record.labels.findings and record.labels.birads is None:
        return None
    return 0 if record.labels.is_normal else 1


def _mass_normal(record: Record, finding: Finding | None) -> int | None:
    """ROI labels: a mass (any pathology) vs normal tissue; other findings are neither."""
    if finding is None:
        return None
    return {FindingKind.NORMAL: 0, FindingKind.MASS: 1}.get(finding.kind)


def _benign_malignant(record: Record, finding: Finding | None) -> int | None:
    pathology = finding.pathology if finding is not None else _image_pathology(record.labels)
    return {Pathology.BENIGN: 0, Pathology.MALIGNANT: 1}.get(pathology)


def _normal_benign_malignant(record: Record, finding: Finding | None) -> int | None:
    if finding is not None and finding.kind == FindingKind.NORMAL:
        return 0
    if finding is None and record.labels.findings and record.labels.is_normal:
        return 0
    pathology = _benign_malignant(record, finding)
    return None if pathology is None else pathology + 1


def _birads_malignancy(record: Record, finding: Finding | None) -> int | None:
    """INbreast rule: BI-RADS 1-2 non-malignant, 4-6 malignant; 0 and 3 excluded."""
    birads = finding.birads if finding is not None and finding.birads is not None else record.labels.birads
    if birads in (1, 2):
        return 0
    if birads in (4, 5, 6):
        return 1
    return None


LESION5 = ("normal", "benign_mass", "malignant_mass", "benign_calcification", "malignant_calcification")


def _lesion5(record: Record, finding: Finding | None) -> int | None:
    """Five-way ROI labels. Architectural distortion and asymmetry are neither a
    mass nor a calcification: excluded rather than forced into a class."""
    if finding is None:
        return None
    if finding.kind == FindingKind.NORMAL:
        return 0
    kind = {FindingKind.MASS: "mass", FindingKind.CALCIFICATION: "calcification"}.get(finding.kind)
    pathology = {Pathology.BENIGN: "benign", Pathology.MALIGNANT: "malignant"}.get(finding.pathology)
    if kind is None or pathology is None:
        return None
    return LESION5.index(f"{pathology}_{kind}")


def _folder_class(classes: tuple[str, ...]) -> LabelFn:
    def label(record: Record, finding: Finding | None) -> int | None:
        return classes.index(record.class_name) if record.class_name in classes else None

    return label


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("density", "breast density, MIAS scale (fatty, fatty-glandular, dense-glandular)", ("F", "G", "D"),
         _density("mias")),
    Task("density_acr", "breast density, ACR A-D (INbreast, CBIS-DDSM)", ("A", "B", "C", "D"), _density("acr")),
    Task("normal_abnormal", "normal vs any abnormality", ("normal", "abnormal"), _normal_abnormal),
    Task("benign_malignant", "benign vs malignant (abnormal images or ROIs)", ("benign", "malignant"),
         _benign_malignant),
    Task("normal_benign_malignant", "normal, benign or malignant", ("normal", "benign", "malignant"),
         _normal_benign_malignant),
    Task("malignant_birads", "malignant (BI-RADS 4-6) vs non-malignant (1-2); 0 and 3 excluded",
         ("non_malignant", "malignant"), _birads_malignancy),
    Task("mass_normal", "mass vs normal tissue (ROIs; calcifications and other findings excluded)",
         ("normal", "mass"), _mass_normal, level="finding"),
    Task("lesion5", "normal, benign/malignant mass, benign/malignant calcification (ROIs)", LESION5, _lesion5,
         level="finding"),
)}


def get_task(name: str, records: Sequence[Record] = ()) -> Task:
    if name == "folder":
        classes = tuple(sorted({r.class_name for r in records if r.class_name}))
        if not classes:
            raise ValueError("task 'folder' needs folder-per-class data")
        return Task("folder", "the sub-folder each image is in", classes, _folder_class(classes))
    if name not in TASKS:
        from mammodesk.errors import did_you_mean

        raise ValueError(f"unknown task {name!r}{did_you_mean(name, TASKS)} (tasks: {', '.join(TASKS)}, folder)")
    return TASKS[name]
