"""Labels to and from the archive as DICOM SR (TID 1500, `dicom_sr`). Each
author (radiologist) writes into one SR series of the study (its UID derived from the study
and the author), and every save is a new instance: nothing is overwritten,
so a team's history stays on the server and two authors saving at once both
land. Reading back, the latest report of each author for an image wins: the
current author's becomes editable, the others are shown read-only."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from mammodesk.annotations.dicom_sr import build_sr, person_name, read_sr, referenced_images, sr_author
from mammodesk.annotations.model import ImageLabels
from mammodesk.errors import LabelReadError


@dataclass(frozen=True)
class AuthorReport:
    author: str           # DICOM person name, e.g. "Doe^Jane"
    labels: ImageLabels
    sop_uid: str
    written: str          # ContentDate + ContentTime, for ordering and display
    path: Path


def author_series_uid(study_uid: str, author: str) -> str:
    # the literal predates the word "author": changing it would split an author's earlier saves into two series
    return generate_uid(entropy_srcs=["mammodesk-reader-series", study_uid, author.lower()])


def report_bytes(labels: ImageLabels, image: Path, author: str) -> tuple[bytes, str]:
    """(the report as a DICOM file, its SOP Instance UID), referencing the image as it is on the server."""
    header = pydicom.dcmread(image, stop_before_pixels=True)
    document, _ = build_sr(labels, image, author=author, include_identifiers=True,
                           series_instance_uid=author_series_uid(str(header.StudyInstanceUID), author),
                           instance_number=int(time.time()) % 2**31)
    buffer = io.BytesIO()
    document.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue(), str(document.SOPInstanceUID)


def latest_reports(paths: list[Path], image_sop_uid: str) -> dict[str, AuthorReport]:
    """Author -> their latest report on this image, from the study's SR files."""
    latest: dict[str, AuthorReport] = {}
    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            if str(ds.get("Modality", "")) != "SR" or image_sop_uid not in referenced_images(ds):
                continue
            _, labels = read_sr(path)
        except (LabelReadError, OSError, pydicom.errors.InvalidDicomError):
            continue  # a report we cannot read is not ours to show
        written = f"{ds.get('ContentDate', '')}{ds.get('ContentTime', '')}|{int(ds.get('InstanceNumber', 0) or 0):010d}"
        report = AuthorReport(sr_author(ds), labels, str(ds.SOPInstanceUID), written, path)
        if report.author not in latest or written > latest[report.author].written:
            latest[report.author] = report
    return latest


__all__ = ["AuthorReport", "latest_reports", "person_name", "author_series_uid", "report_bytes"]
