"""One interface to a DICOM server, two protocols: DICOMweb (QIDO-RS, WADO-RS,
STOW-RS through dicomweb-client) and DIMSE (C-ECHO, C-FIND, C-GET, C-STORE
through pynetdicom). Neither protocol is written here by hand. Every failure
becomes one `ArchiveError` that says what happened and what to do. The
shared types live in `types` (so `dicomweb` and `dimse` never import this
module back)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mammodesk.archive.servers import ServerConfig
from mammodesk.archive.types import (  # noqa: F401 - the archive's vocabulary, re-exported for its callers
    Archive, ArchiveError, InstanceRef, Progress, SearchResult, StopCheck, StudySummary, date_range,
    filter_by_modality,
)


def open_archive(config: ServerConfig) -> Archive:
    config.check()
    if config.kind == "dicomweb":  # imported when first used: requests and pynetdicom stay out of start-up
        from mammodesk.archive.dicomweb import DicomWebArchive

        return DicomWebArchive(config)
    from mammodesk.archive.dimse import DimseArchive

    return DimseArchive(config)


SEARCH_LIMIT = 200  # studies shown
SERVER_LIMIT = 2000  # studies asked for: the filter runs here, so other modalities must not crowd MG out


def search(archive: "Archive", modality: str = "MG", limit: int = SEARCH_LIMIT, **query) -> SearchResult:
    """Search the server without a modality filter, then filter by `modality` here."""
    found = filter_by_modality(archive.search_studies(modality="", limit=max(limit, SERVER_LIMIT), **query), modality)
    return dataclasses.replace(found, studies=found.studies[:limit])


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
