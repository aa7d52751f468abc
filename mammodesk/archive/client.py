"""One interface to a DICOM server, two protocols: DICOMweb (QIDO-RS, WADO-RS,
STOW-RS through dicomweb-client) and DIMSE (C-ECHO, C-FIND, C-GET, C-STORE
through pynetdicom). Neither protocol is written here by hand. Every failure
becomes one `ArchiveError` that says what happened and what to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from mammodesk.archive.servers import ServerConfig
from mammodesk.errors import MammoDeskError

Progress = Callable[[int, int], None]
StopCheck = Callable[[], bool]


class ArchiveError(MammoDeskError, ConnectionError):
    """A server request failed; `message` is one line for the user, `retry` whether trying again may help."""

    def __init__(self, message: str, retry: bool = True):
        self.retry = retry
        super().__init__(message)


@dataclass(frozen=True)
class StudySummary:
    study_uid: str
    patient_id: str = ""       # shown in the worklist the user searched; never logged
    patient_name: str = ""
    date: str = ""             # YYYYMMDD
    accession: str = ""
    modalities: tuple[str, ...] = ()
    images: int = 0
    description: str = ""
    views: tuple[str, ...] = field(default=())  # e.g. ("R CC", "L CC", ...), when asked for


@dataclass(frozen=True)
class InstanceRef:
    study_uid: str
    series_uid: str
    sop_uid: str
    modality: str = ""


class Archive(Protocol):
    config: ServerConfig

    def echo(self) -> str: ...

    def search_studies(self, *, patient_id: str = "", patient_name: str = "", date_from: str = "",
                       date_to: str = "", accession: str = "", modality: str = "MG",
                       limit: int = 200) -> list[StudySummary]: ...

    def instances(self, study_uid: str, modality: str = "") -> list[InstanceRef]: ...

    def retrieve(self, refs: list[InstanceRef], folder: Path, progress: Progress | None = None,
                 should_stop: StopCheck | None = None) -> list[Path]: ...

    def store(self, paths: list[Path]) -> list[str]: ...


def open_archive(config: ServerConfig) -> Archive:
    config.check()
    if config.kind == "dicomweb":
        from mammodesk.archive.dicomweb import DicomWebArchive

        return DicomWebArchive(config)
    from mammodesk.archive.dimse import DimseArchive

    return DimseArchive(config)


def date_range(date_from: str, date_to: str) -> str:
    """DICOM date range matching: 'from-to', open on either side."""
    date_from, date_to = date_from.replace("-", ""), date_to.replace("-", "")
    return f"{date_from}-{date_to}" if date_from or date_to else ""


def retrieve_study(archive: Archive, study_uid: str, folder: Path, progress: Progress | None = None,
                   should_stop: StopCheck | None = None) -> list[Path]:
    """Every instance of a study into `folder` (images first, reports last); instances already
    there (an earlier, interrupted retrieve) are not fetched again."""
    refs = archive.instances(study_uid)
    refs.sort(key=lambda r: r.modality == "SR")
    wanted = [r for r in refs if not (folder / f"{r.sop_uid}.dcm").exists()]
    done = [folder / f"{r.sop_uid}.dcm" for r in refs if r not in wanted]
    total = len(refs)

    def shifted(count: int, _total: int) -> None:
        if progress is not None:
            progress(len(done) + count, total)

    return done + archive.retrieve(wanted, folder, shifted, should_stop)
