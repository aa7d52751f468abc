"""Whose image is this? Every source asks here, so one woman's images share one key whatever the source,
and the key matches the one the app reads (`mammodesk.io.formats.dicom`: the hashed DICOM PatientID).

How a key was found is kept beside it (`Record.patient_from`): a split by image where no key could be had
is reported as such, never as a patient-level split."""

from __future__ import annotations

from pathlib import Path

from mammodesk_train.app import hashed_key, infer_from_name, without_side_and_view

# How a record's patient key was found, most to least certain. "file": no key, each image is its own patient.
GIVEN, DICOM, NAME, FOLDER, UNKNOWN = "given", "PatientID", "file name", "folder", "file"
PATIENTS_FROM = {GIVEN: "the data list's patient column", DICOM: "the DICOM PatientID", NAME: "file names",
                 FOLDER: "case folders", UNKNOWN: "nowhere: each image alone",
                 "source": "the data set's own patient numbering"}


def dicom_patient_id(path: Path) -> str | None:
    """The PatientID of a DICOM file, read from its header only; None for other files or an empty tag."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return None
    if head[128:132] != b"DICM" and path.suffix.lower() != ".dcm":
        return None
    import pydicom

    try:
        value = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"], force=True).get("PatientID")
    except Exception:  # a damaged header: the image is read (and refused) later, with the reader's message
        return None
    text = str(value or "").strip()
    return text or None


def name_patient(stem: str) -> str | None:
    """A patient key from a file name: MIAS or CBIS-DDSM naming, else the name without its side and view
    (`PAT0001_L_MLO` and `PAT0001_R_CC` are one woman). None when the name says nothing of a patient."""
    hint = infer_from_name(stem).patient_key
    if hint:
        return hint
    rest = without_side_and_view(stem)
    if not rest or rest == stem or not any(c.isdigit() for c in rest):
        return None  # a generic stem ("scan_L_CC" in every case folder) names no one
    return hashed_key("name", rest)


def patient_of(path: Path, root: Path, given: str | None = None, *, folder_is_case: bool = False) -> tuple[str, str]:
    """(key, how) for one image: a given patient (a manifest column), its DICOM PatientID, its name, its
    folder when each folder is one case, else the file itself."""
    if given:
        return hashed_key("patient", given), GIVEN
    patient_id = dicom_patient_id(path)
    if patient_id:  # as the app keys it (`io.dicom`): CBIS-DDSM's PatientID carries the view, its name hint wins
        return infer_from_name(f"{patient_id} {path.stem}").patient_key or hashed_key("patient", patient_id), DICOM
    named = name_patient(path.stem)
    if named:
        return named, NAME
    where = _relative(path, root)
    if folder_is_case and len(where.parts) > 1:
        return hashed_key("folder", str(where.parent)), FOLDER
    return hashed_key("file", str(where)), UNKNOWN


def _relative(path: Path, root: Path) -> Path:
    """The path under the data's root; a file elsewhere (an absolute manifest path) by its own absolute path."""
    try:
        return path.relative_to(root)
    except ValueError:
        return path.resolve()


def grouping(patient_from: list[str]) -> dict:
    """How the records' patients were found: counts per way, and the sentence a report states."""
    counts = {how: patient_from.count(how) for how in dict.fromkeys(patient_from)}
    unknown = counts.get(UNKNOWN, 0)
    if unknown == len(patient_from):
        statement = "patients unknown: split by image; figures may be optimistic"
    elif unknown:
        statement = (f"patients unknown for {unknown} of {len(patient_from)} images (each its own patient): "
                     "figures may be optimistic")
    else:
        statement = "split by patient"
    return {"counts": counts, "patient_level": unknown == 0, "statement": statement}


def evaluation(folds: int, kind: str, grouped: dict) -> str:
    """How a CV split its data, in words a report can state: patient-level only where it was."""
    if grouped["patient_level"]:
        return f"{folds}-fold patient-level {kind}"
    return f"{folds}-fold {kind} ({grouped['statement']})"
