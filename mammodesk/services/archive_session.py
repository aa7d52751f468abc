"""The reading room's side of the archive, Qt-free: searching a server,
retrieving a study (and offering the woman's priors), knowing which open
images came from which server, saving an author's labels back as a report
through the outbox, and reading the team's reports of an image."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pydicom

from mammodesk.annotations.model import ImageLabels, default_author
from mammodesk.storage import write_atomic
from mammodesk.archive.cache import StudyCache
from mammodesk.archive.client import Archive, SearchResult, StudySummary, open_archive, retrieve_study, search
from mammodesk.archive.outbox import Outbox, Pending, send_pending
from mammodesk.archive.reports import AuthorReport, latest_reports, person_name, report_bytes
from mammodesk.archive.servers import ServerConfig, ServerStore

ORIGIN = "origin.json"  # in a cached study's folder: which server and study it came from


@dataclass(frozen=True)
class Origin:
    server: str
    study_uid: str
    folder: Path


@dataclass(frozen=True)
class SaveResult:
    sent: bool
    message: str
    concurrent: tuple[str, ...] = ()  # other authors whose reports arrived while this one was edited


class ArchiveSession:
    def __init__(self, store: ServerStore | None = None, cache: StudyCache | None = None,
                 outbox: Outbox | None = None, author: str | None = None):
        self.store = store or ServerStore()
        self.cache = cache or StudyCache()
        self.outbox = outbox or Outbox()
        self.author = author or default_author()
        self._archives: dict[str, Archive] = {}

    # --- servers ------------------------------------------------------------------------------------
    def servers(self) -> list[ServerConfig]:
        return self.store.load()

    def archive(self, name: str) -> Archive:
        if name not in self._archives:
            self._archives[name] = open_archive(self.store.find(name))
        return self._archives[name]

    def forget(self, name: str) -> None:
        """After a server's settings or secret changed."""
        self._archives.pop(name, None)

    # --- worklist -------------------------------------------------------------------------------------
    def search(self, server: str, modality: str = "MG", **query) -> SearchResult:
        """Studies on `server`; the modality filter is applied here and says what it hid."""
        return search(self.archive(server), modality=modality, **query)

    def priors(self, server: str, study: StudySummary) -> list[StudySummary]:
        """The woman's earlier mammography studies on that server, most recent first."""
        if not study.patient_id:
            return []
        earlier = [s for s in self.search(server, patient_id=study.patient_id, modality="MG").studies
                   if s.study_uid != study.study_uid and s.date and (not study.date or s.date < study.date)]
        return sorted(earlier, key=lambda s: s.date, reverse=True)

    def retrieve(self, server: str, study_uid: str, progress=None, should_stop=None) -> list[Path]:
        """The study's images (and reports) in the cache; an interrupted retrieve resumes."""
        folder = self.cache.folder(server, study_uid)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / ORIGIN, json.dumps({"server": server, "study_uid": study_uid}).encode())
        files = retrieve_study(self.archive(server), study_uid, folder, progress, should_stop)
        self.cache.mark_complete(folder)
        self.cache.enforce_limit(keep=folder)
        return [p for p in files if _modality(p) != "SR"]

    @staticmethod
    def origin(path: Path | None) -> Origin | None:
        """Where an image came from, when it was retrieved from a server."""
        if path is None or not (path.parent / ORIGIN).is_file():
            return None
        try:
            data = json.loads((path.parent / ORIGIN).read_text())
            return Origin(data["server"], data["study_uid"], path.parent)
        except (OSError, ValueError, KeyError, TypeError):  # a damaged note: treat the image as a local file
            return None

    # --- reports ----------------------------------------------------------------------------------------
    def reports(self, image: Path) -> tuple[AuthorReport | None, list[AuthorReport]]:
        """(this author's latest report on the image, the other authors' latest ones), from the cached study."""
        sop = str(pydicom.dcmread(image, stop_before_pixels=True).SOPInstanceUID)
        latest = latest_reports([p for p in image.parent.glob("*.dcm") if _modality(p) == "SR"], sop)
        mine = latest.pop(person_name(self.author), None)
        return mine, sorted(latest.values(), key=lambda r: r.author)

    def refresh_reports(self, image: Path) -> tuple[AuthorReport | None, list[AuthorReport]]:
        """Fetch reports the server has that the cache lacks (other authors saving meanwhile), then `reports`."""
        origin = self.origin(image)
        if origin is not None:
            archive = self.archive(origin.server)
            known = {p.stem for p in origin.folder.glob("*.dcm")}
            new = [r for r in archive.instances(origin.study_uid, modality="SR") if r.sop_uid not in known]
            archive.retrieve(new, origin.folder)
        return self.reports(image)

    def save(self, image: Path, labels: ImageLabels) -> SaveResult:
        """Queue this author's labels as a new report and send what waits for the server. A report is
        never lost: it stays in the outbox until the server acknowledges it."""
        origin = self.origin(image)
        if origin is None:
            return SaveResult(False, "this image did not come from a server: its labels stay in the sidecar")
        before = {r.author: r.written for r in self.reports(image)[1]}
        data, sop = report_bytes(labels, image, self.author)
        self.outbox.add(data, origin.server, image.name)
        (origin.folder / f"{sop}.dcm").write_bytes(data)  # the cache shows it at once, under its own UID
        sent, errors = send_pending(self.outbox, self.archive(origin.server), origin.server)
        if errors:
            return SaveResult(False, f"not yet on {origin.server}: {errors[0]} (kept in the outbox; sent again "
                                     "when the server answers)")
        try:
            _, others = self.refresh_reports(image)
        except Exception:  # noqa: BLE001 - the save itself succeeded; a failed refresh only skips the notice
            others = []
        concurrent = tuple(r.author for r in others if before.get(r.author, "") < r.written)
        return SaveResult(True, f"saved to {origin.server} as a new report ({sent} sent)", concurrent)

    def pending(self) -> list[Pending]:
        return self.outbox.pending()

    def send_pending(self) -> tuple[int, list[str]]:
        sent, errors = 0, []
        for server in sorted({p.server for p in self.outbox.pending()}):
            try:
                done, failed = send_pending(self.outbox, self.archive(server), server)
            except Exception as exc:  # noqa: BLE001 - a server that cannot even be opened: report, keep going
                done, failed = 0, [str(exc)]
            sent += done
            errors += failed
        return sent, errors


def _modality(path: Path) -> str:
    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", ""))
    except (OSError, pydicom.errors.InvalidDicomError):
        return ""
