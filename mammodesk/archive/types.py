"""What the archive's modules share: the results of a search, the reference to
one instance, the one error every request failure becomes, the `Archive`
protocol both protocols implement, and the modality filter. Imported by
`client` (which opens an archive) and by `dicomweb` and `dimse` (which it
opens): a floor under all three, so no import runs back up."""

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

    def __post_init__(self) -> None:  # servers list instances without Modality as an empty value
        object.__setattr__(self, "modalities", tuple(m.strip() for m in self.modalities if m and m.strip()))


@dataclass(frozen=True)
class InstanceRef:
    study_uid: str
    series_uid: str
    sop_uid: str
    modality: str = ""


@dataclass(frozen=True)
class SearchResult:
    """Studies that match, and what the modality filter held back: research exports often carry no
    Modality tag, so their studies list no modality and are kept (they may be mammograms), flagged."""

    studies: list[StudySummary]
    modality: str = ""
    without_modality: int = 0  # of `studies`: the server lists no modality for them
    other_modalities: int = 0  # hidden: they list modalities, none of them `modality`

    def describe(self) -> str:
        """One line for the user: the count and what the filter did."""
        count = len(self.studies)
        text = f"{count} stud{'y' if count == 1 else 'ies'}"
        if self.without_modality:
            text += (f" ({self.without_modality} without a modality: shown, since they may be "
                     f"{self.modality or 'what you look for'})")
        if self.other_modalities:
            text += (f"; {self.other_modalities} of other modalities hidden "
                     f"(modality '' shows every study)")
        return text


def filter_by_modality(found: list[StudySummary], modality: str) -> SearchResult:
    """The modality filter, applied here rather than by the server: a server filter on
    ModalitiesInStudy silently drops studies whose instances have no Modality."""
    wanted = modality.strip().upper()
    if not wanted:
        return SearchResult(list(found), "", sum(1 for s in found if not s.modalities), 0)
    kept = [s for s in found if not s.modalities or wanted in (m.upper() for m in s.modalities)]
    return SearchResult(kept, wanted, sum(1 for s in kept if not s.modalities), len(found) - len(kept))


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


def date_range(date_from: str, date_to: str) -> str:
    """DICOM date range matching: 'from-to', open on either side."""
    date_from, date_to = date_from.replace("-", ""), date_to.replace("-", "")
    return f"{date_from}-{date_to}" if date_from or date_to else ""
