"""Tasks: how a record (or one finding of it) becomes a class index, or None
when it does not belong to the task (e.g. a normal image for benign vs
malignant, BI-RADS 3 for the malignancy rule)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from mammodesk_train.app import Finding, FindingKind, ImageLabels, Pathology

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
    """Any abnormality, benign included, is abnormal. Without findings, BI-RADS decides: 1 normal, 3-6 abnormal;
    0 (incomplete) and 2 (a benign finding, yet a negative screen) are neither."""
    if finding is not None:
        return 0 if finding.kind == FindingKind.NORMAL else 1
    if record.labels.findings:
        return 0 if record.labels.is_normal else 1
    return {None: None, 0: None, 1: 0, 2: None}.get(record.labels.birads, 1)


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


def folder_classes(names) -> tuple[str, ...]:
    """Folder names as classes: normal-like names first (class 0, the negative class of a two-folder task), then
    the others alphabetically; never "normal" as the positive class because it sorts after "abnormal"."""
    from mammodesk_train.data.sources import NORMAL_FOLDERS

    return tuple(sorted(set(names), key=lambda n: (n.lower() not in NORMAL_FOLDERS, n.lower())))


def get_task(name: str, records: Sequence[Record] = (), classes: Sequence[str] | None = None) -> Task:
    """A task by name; `folder` takes its classes from the records' folders, or from `classes` (a fitted run's,
    so that it exports and evaluates without the data)."""
    if name == "folder":
        classes = tuple(classes) if classes else folder_classes(r.class_name for r in records if r.class_name)
        if not classes:
            raise ValueError("task 'folder' needs folder-per-class data (folder:PATH, one sub-folder per class)")
        return Task("folder", "the sub-folder each image is in", classes, _folder_class(classes))
    if name not in TASKS:
        from mammodesk_train.app import did_you_mean

        raise ValueError(f"unknown task {name!r}{did_you_mean(name, TASKS)} (tasks: {', '.join(TASKS)}, folder)")
    return TASKS[name]


# What each image-level task reads, in the words of the data lists (manifest columns, folder names).
EXPECTS = {
    "normal_abnormal": "label normal (negative, healthy) vs abnormal, benign or malignant (cancer), or BI-RADS 1 vs "
                       "3-6; folders normal/negative/healthy vs abnormal/benign/malignant/cancer",
    "benign_malignant": "label benign vs malignant (folders benign, malignant)",
    "normal_benign_malignant": "label normal, benign or malignant",
    "density": "density F, G or D (MIAS scale)",
    "density_acr": "density A, B, C or D (ACR), or folders named A-D",
    "malignant_birads": "BI-RADS 1-2 vs 4-6",
    "folder": "one sub-folder per class",
}


def described(record: Record) -> str:
    """What the data says of one image, as its list or folders put it."""
    labels = record.labels
    if record.class_name:
        return f"folder {record.class_name}"
    if labels.extra.get("label"):
        return f"label {labels.extra['label']}"
    if labels.findings:
        return "normal" if labels.is_normal else "findings " + "/".join(sorted({f.kind.value for f in labels.findings}))
    parts = [f"density {labels.density}" if labels.density else "", "" if labels.birads is None else
             f"BI-RADS {labels.birads}"]
    return ", ".join(p for p in parts if p) or "no label"


def check_task(records: Sequence[Record], task: Task, folds: int) -> list[int | None]:
    """Before any image is read: every class of an image-level task in enough patients for the folds, or an
    error naming the labels found and the labels the task expects. Returns each record's class (None: not in
    the task)."""
    from collections import Counter

    from mammodesk_train.data.sources import DataError

    labels = task.labels_for(records)
    if task.level != "image":
        return labels
    patients = {c: len({r.patient_key for r, y in zip(records, labels) if y == i}) for i, c in enumerate(task.classes)}
    short = [c for c, n in patients.items() if n < folds]
    if short:
        found = Counter(described(r) for r in records)
        shown = ", ".join(f"{text} ({n})" for text, n in found.most_common(8))
        raise DataError(f"task {task.name} needs images of every class ({', '.join(task.classes)}) in at least "
                        f"{folds} patients for {folds} folds; it has " +
                        ", ".join(f"{c} in {n}" for c, n in patients.items()) +
                        f". The data's labels: {shown}. The task expects {EXPECTS.get(task.name, task.description)}")
    return labels
