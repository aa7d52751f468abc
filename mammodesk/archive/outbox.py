"""Reports waiting for a server. A report is written here (the DICOM file and a
small JSON note, both atomically) before it is sent, and removed only when the
server has acknowledged it; a crash, a dead server or a killed app leave it in
place, and the next start lists it and offers to send it again."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from mammodesk.storage import data_dir, write_atomic


@dataclass(frozen=True)
class Pending:
    id: str
    path: Path          # the report (DICOM SR)
    server: str
    image: str          # the image's file name, for the list shown to the user
    created: float
    attempts: int = 0
    last_error: str = ""


class Outbox:
    def __init__(self, root: Path | None = None):
        self.root = root or data_dir() / "outbox"

    def add(self, report: bytes, server: str, image: str) -> Pending:
        self.root.mkdir(parents=True, exist_ok=True)
        ident = uuid.uuid4().hex
        entry = Pending(ident, self.root / f"{ident}.dcm", server, image, time.time())
        write_atomic(entry.path, report)
        self._write_note(entry)
        return entry

    def pending(self, server: str | None = None) -> list[Pending]:
        if not self.root.exists():
            return []
        entries = []
        for note in sorted(self.root.glob("*.json")):
            try:
                data = json.loads(note.read_text(encoding="utf-8"))
                entry = Pending(data["id"], self.root / f"{data['id']}.dcm", data["server"], data["image"],
                                float(data["created"]), int(data.get("attempts", 0)), data.get("last_error", ""))
            except (OSError, ValueError, KeyError):
                continue  # cannot happen with atomic writes; a hand-edited note is skipped, not fatal
            if entry.path.exists() and (server is None or entry.server == server):
                entries.append(entry)
        return sorted(entries, key=lambda e: e.created)

    def failed(self, entry: Pending, error: str) -> Pending:
        updated = Pending(entry.id, entry.path, entry.server, entry.image, entry.created, entry.attempts + 1, error)
        self._write_note(updated)
        return updated

    def acknowledge(self, entry: Pending) -> None:
        entry.path.unlink(missing_ok=True)
        (self.root / f"{entry.id}.json").unlink(missing_ok=True)

    def _write_note(self, entry: Pending) -> None:
        note = {"id": entry.id, "server": entry.server, "image": entry.image, "created": entry.created,
                "attempts": entry.attempts, "last_error": entry.last_error}
        write_atomic(self.root / f"{entry.id}.json", json.dumps(note).encode())


def send_pending(outbox: Outbox, archive, server: str) -> tuple[int, list[str]]:
    """Send what waits for `server`; (sent, errors). Each report is removed only once acknowledged."""
    sent, errors = 0, []
    from mammodesk.archive.types import ArchiveError

    for entry in outbox.pending(server):
        try:
            archive.store([entry.path])
        except ArchiveError as exc:
            outbox.failed(entry, str(exc))
            errors.append(f"{entry.image}: {exc}")
            if exc.retry:
                break  # the server is down: the rest would fail the same way
            continue
        outbox.acknowledge(entry)
        sent += 1
    return sent, errors
