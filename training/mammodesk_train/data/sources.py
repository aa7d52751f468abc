"""Dataset sources: each turns a location on disk into `Record`s (one per
image: where it is, whose it is, its labels). Images are read lazily through
the app's own readers, so training sees exactly what the app sees.

`--data` strings: `manifest:FILE` (a CSV or JSON list of labelled images, `data.manifest`), `labels:FOLDER`
(images labelled in MammoDesk), `rsna:`, `vindr:` and `cmmd:` (`data.public_sets`), `mias:PATH` (folder or the original tarball), `cbis:PATH`
(a folder with the case-description CSVs and the DICOM or PNG images),
`inbreast:PATH` (AllDICOMs/, AllXML/ and INbreast.csv|xls), `folder:PATH`
(one sub-folder per class), `images:PATH` (any images, unlabelled: pretraining)."""

from __future__ import annotations

import sys
import tarfile
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from mammodesk_train.app import ImageLabels, MaskRef, read_cbis_csv, read_inbreast_sheet, read_inbreast_xml
from mammodesk_train.app import read_mias_info
from mammodesk_train.app import Finding, FindingKind, Pathology
from mammodesk_train.app import Image, read_image
from mammodesk_train.app import hashed_key


MIAS_SPACING_MM = 0.2  # MIAS pixels: 200 micrometres (the PGMs carry no spacing)


IGNORED = "columns ignored"  # a source's note on columns it does not read (not images skipped)


class DataError(ValueError):
    """The data location is missing, or not laid out as its source expects."""


@dataclass(frozen=True)
class Record:
    image_id: str
    path: Path
    patient_key: str
    labels: ImageLabels
    source: str
    class_name: str | None = None  # folder-per-class layout only
    extra: dict = field(default_factory=dict, compare=False)
    assumed_spacing_mm: float | None = None  # what the source knows of pixels whose files state no spacing
    patient_from: str = "source"  # how patient_key was found (data.patients); "file": unknown, the image alone

    def load(self) -> Image:
        """The image as the app reads it; a side or view the data list states fills what the file does not say."""
        image = read_image(self.path)
        stated = {key: value for key, value in (("laterality", self.labels.laterality), ("view", self.labels.view))
                  if value and not getattr(image.meta, key)}
        return image.with_meta(**stated) if stated else image


def assumed_spacing(records: list[Record]) -> float | None:
    """The spacing every record's source assumes for files without one, None when they differ or
    none is known (the domain check then judges stated spacings only)."""
    values = {r.assumed_spacing_mm for r in records}
    return values.pop() if len(values) == 1 else None


def load_source(spec: str, cache_dir: Path | None = None, *, announce: bool = True) -> list[Record]:
    kind, _, location = spec.partition(":")
    if not location:
        raise DataError(f"--data must look like KIND:PATH (kinds: {', '.join(SOURCES)}), got {spec!r}")
    if kind not in SOURCES:
        raise DataError(f"unknown data source {kind!r} (known: {', '.join(SOURCES)})")
    path = Path(location).expanduser()
    if not path.exists():
        raise DataError(f"{kind} data not found at {path}")
    found = SOURCES[kind](path, cache_dir)
    records, skipped = found if isinstance(found, tuple) else (found, {})
    if not records:
        gone = "; ".join(f"{len(names)} {why}" for why, names in skipped.items() if names)
        raise DataError(f"no images found in {path} for source {kind}" + (f" (skipped: {gone})" if gone else ""))
    if announce:
        print(found_line(path, records, skipped), file=sys.stderr)
    return records


def found_line(source: Path, records: list[Record], skipped: dict[str, list[str]]) -> str:
    """One line on what a source found and skipped, and why (stderr: stdout stays the command's answer)."""
    from collections import Counter

    from mammodesk_train.data.patients import grouping
    from mammodesk_train.data.tasks import described

    labels = Counter(described(r) for r in records)
    shown = ", ".join(f"{n} {text}" for text, n in labels.most_common(6)) + (", ..." if len(labels) > 6 else "")
    line = (f"{source.name}: {len(records)} images of {len({r.patient_key for r in records})} patients ({shown}); "
            f"{grouping([r.patient_from for r in records])['statement']}")
    gone = [f"{len(names)} {why} (e.g. {names[0]})" for why, names in skipped.items() if names and why != IGNORED]
    ignored = skipped.get(IGNORED)
    return line + (f"; skipped {', '.join(gone)}" if gone else "") + (f"; {IGNORED}: {', '.join(ignored)}"
                                                                     if ignored else "")


def public_spec(spec: str) -> str:
    """A --data string as shipped files may state it: the source and the file or folder name, no local path."""
    kind, _, location = spec.partition(":")
    return f"{kind}:{Path(location).name}"


def extracted(archive: Path, cache_dir: Path | None = None) -> Path:
    """The archive unpacked once into a cache (`cache_dir`, else the data folder's cache/archives) and reused
    while the archive is unchanged (its path, size and modification time name the folder): a run no longer
    leaves a new copy in the temporary folder. Unpacked beside the target, then renamed, so a killed run leaves
    no half folder that looks whole."""
    import hashlib
    import shutil

    from mammodesk_train.app import data_dir

    stat = archive.stat()
    key = hashlib.sha256(f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    root = cache_dir or data_dir() / "cache" / "archives"
    target = root / f"{archive.name.split('.')[0]}-{key}"
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=root))
    with tarfile.open(archive) as opened:
        opened.extractall(partial, filter="data")
    try:
        partial.rename(target)
    except OSError:  # another run unpacked it meanwhile: keep theirs
        shutil.rmtree(partial, ignore_errors=True)
    return target


def mias(path: Path, cache_dir: Path | None = None) -> list[Record]:
    if path.is_file() and tarfile.is_tarfile(path):
        path = extracted(path, cache_dir)
    infos = sorted(path.rglob("Info.txt"))
    if not infos:
        raise DataError(f"no Info.txt under {path}: not a MIAS folder")
    labels = read_mias_info(infos[0])
    folder = infos[0].parent
    records = []
    for ref, label in labels.items():
        image = folder / f"{ref}.pgm"
        if image.is_file():
            records.append(Record(ref, image, label.patient_key, label, "mias", assumed_spacing_mm=MIAS_SPACING_MM))
    return records


def cbis(path: Path, cache_dir: Path | None = None) -> list[Record]:
    csvs = sorted(path.rglob("*case_description*.csv"))
    if not csvs:
        raise DataError(f"no CBIS-DDSM case-description CSVs under {path}")
    labels: dict[str, ImageLabels] = {}
    for csv_path in csvs:
        labels.update(read_cbis_csv(csv_path))
    labels = {key: _absolute_masks(label, path) for key, label in labels.items()}
    files: dict[str, Path] = {}
    by_folder: dict[str, Path] = {}
    for p in sorted(path.rglob("*")):
        if p.suffix.lower() in (".dcm", ".png"):
            files.setdefault(p.stem, p)
            by_folder.setdefault(p.relative_to(path).parts[0], p)
    records = []
    for image_id, label in labels.items():
        image = files.get(image_id) or _cbis_image(path, label, by_folder.get(image_id))
        if image is not None:
            records.append(Record(image_id, image, label.patient_key, label, "cbis"))
    return records


def _absolute_masks(label: ImageLabels, root: Path) -> ImageLabels:
    """ROI mask paths are relative to the CBIS-DDSM root; the builders read them from anywhere."""
    findings = tuple(replace(f, shape=MaskRef(str(root / f.shape.path.replace("\\", "/"))))
                     if isinstance(f.shape, MaskRef) else f for f in label.findings)
    return replace(label, findings=findings)


def _cbis_image(root: Path, label: ImageLabels, fallback: Path | None) -> Path | None:
    relative = root / str(label.extra.get("image_file", ""))
    if relative.is_file():
        return relative
    return fallback  # the TCIA download nests each image in a folder named by its image id


def inbreast(path: Path, cache_dir: Path | None = None) -> list[Record]:
    sheets = sorted(path.rglob("INbreast.csv")) or sorted(path.rglob("INbreast.xls"))
    if not sheets:
        raise DataError(f"no INbreast.csv or INbreast.xls under {path}")
    labels = read_inbreast_sheet(sheets[0])
    xmls = {p.stem: p for p in path.rglob("*.xml")}
    records = []
    for dicom in sorted(path.rglob("*.dcm")):
        file_name = dicom.name.split("_")[0]
        label = labels.get(file_name)
        if label is None:
            continue
        findings = read_inbreast_xml(xmls[file_name]) if file_name in xmls else ()
        parts = dicom.stem.split("_")
        # INbreast file names carry an anonymised patient hash as the second field.
        patient = hashed_key("inbreast", parts[1] if len(parts) > 1 else file_name)
        label = ImageLabels(file_name, findings, label.density, label.density_system, label.birads,
                            label.laterality, label.view, patient, label.extra)
        records.append(Record(file_name, dicom, patient, label, "inbreast"))
    return records


NORMAL_FOLDERS = ("normal", "negative", "healthy", "no_finding", "no-finding")
ABNORMAL_FOLDERS = {"abnormal": Pathology.UNKNOWN, "positive": Pathology.UNKNOWN, "benign": Pathology.BENIGN,
                    "malignant": Pathology.MALIGNANT, "cancer": Pathology.MALIGNANT}
DENSITY_FOLDERS = ("A", "B", "C", "D")


def folder_labels(name: str, stem: str, patient: str) -> ImageLabels:
    """What a class folder's name says of its images: normal (negative, healthy), abnormal (an unlocated finding;
    benign, malignant and cancer give its pathology), or ACR density A-D. Any other name labels only the
    `folder` task, and a task that needs other labels refuses such data up front (`tasks.check_task`)."""
    key = name.lower()
    if key in NORMAL_FOLDERS:
        return ImageLabels(stem, (Finding(FindingKind.NORMAL, source=f"folder {name}"),), patient_key=patient)
    if key in ABNORMAL_FOLDERS:
        return ImageLabels(stem, (Finding(FindingKind.OTHER, ABNORMAL_FOLDERS[key], source=f"folder {name}"),),
                           patient_key=patient)
    if name.upper() in DENSITY_FOLDERS and len(name) == 1:
        return ImageLabels(stem, density=name.upper(), density_system="acr", patient_key=patient)
    return ImageLabels(stem, patient_key=patient)


def folder_per_class(path: Path, cache_dir: Path | None = None) -> list[Record]:
    """One sub-folder per class (`folder_labels`). A patient is the DICOM PatientID, else the file name without
    side and view (MIAS and CBIS-DDSM naming included), else the image alone (a split by image, said so)."""
    from mammodesk_train.data.patients import patient_of

    if not path.is_dir():
        raise DataError(f"folder:{path} is a file; folder: takes a folder with one sub-folder per class "
                        "(a CSV or JSON list of images is manifest:FILE)")
    records = []
    for class_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        for image in sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
            patient, how = patient_of(image, path)
            label = folder_labels(class_dir.name, image.stem, patient)
            records.append(Record(image.stem, image, patient, label, "folder", class_name=class_dir.name,
                                  patient_from=how))
    return records


def unlabelled_images(path: Path, cache_dir: Path | None = None) -> list[Record]:
    """Every image a reader recognises under `path`, without labels (for pretraining). A file's
    patient is its name's hint (MIAS or CBIS naming), else its folder (one folder per case, as
    archives export them), else the file itself."""
    from mammodesk_train.app import ImageReadError, UnsupportedFormatError
    from mammodesk_train.app import find_format
    from mammodesk_train.data.patients import patient_of

    records = []
    for image in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        try:
            find_format(image)
        except (UnsupportedFormatError, ImageReadError):
            continue
        patient, how = patient_of(image, path, folder_is_case=True)
        records.append(Record(image.stem, image, patient, ImageLabels(image.stem, patient_key=patient), "images",
                              patient_from=how))
    return records


def _elsewhere(module: str, name: str) -> Callable:
    """A source defined in another module of this package, imported when first used (they import this one)."""
    def load(path: Path, cache_dir: Path | None = None):
        from importlib import import_module

        return getattr(import_module(f"mammodesk_train.data.{module}"), name)(path, cache_dir)

    return load


SOURCES: dict[str, Callable[[Path, Path | None], list[Record]]] = {
    "manifest": _elsewhere("manifest", "manifest"), "labels": _elsewhere("manifest", "labelled_in_app"),
    "mias": mias, "cbis": cbis, "inbreast": inbreast, "rsna": _elsewhere("public_sets", "rsna"),
    "vindr": _elsewhere("public_sets", "vindr"), "cmmd": _elsewhere("public_sets", "cmmd"),
    "folder": folder_per_class, "images": unlabelled_images,
}
