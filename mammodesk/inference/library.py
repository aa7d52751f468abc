"""The models a user can run: those bundled under resources/models/ and any
folder the user adds. A broken file is listed with its error, never hidden.

Reading a model's card costs a fraction of a millisecond; checking its weights
digest hashes the whole file (about 14 ms for 13 MB). Headless callers verify
at once; the app reads the cards at start and verifies in a worker
(`verify_pending`), so start-up never waits on hashing. A run never depends
on it: `ModelRunner` checks the digest on the very bytes it loads."""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from mammodesk.inference.contract import (
    ModelCard,
    ModelContractError,
    load_verified_companion,
    read_card,
    read_companion,
    verify_file,
)
from mammodesk.resources import resources_dir


@dataclass(frozen=True)
class FamilyInfo:
    family: str  # a card's `family`
    task: str  # a card's `task`
    purpose: str  # what it answers, in the radiologist's words (one short line)
    detail: str = ""  # what it is (the tooltip)
    not_bundled: str | None = None  # a short line when no model of it ships, else None
    why: str = ""  # the measurement behind not_bundled


def family_catalogue(path: Path | None = None) -> list[FamilyInfo]:
    """Every model family, its tasks and what each is for (resources/models/families.json); empty if
    unreadable."""
    path = path or resources_dir() / "models" / "families.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["families"]
        return [FamilyInfo(str(r["family"]), str(r["task"]), str(r["purpose"]), str(r.get("detail", "")),
                           r.get("not_bundled"), str(r.get("why", ""))) for r in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return []


@dataclass(frozen=True)
class ModelEntry:
    path: Path
    card: ModelCard | None
    error: str | None = None
    bundled: bool = False
    companions: dict[str, Path] = field(default_factory=dict)  # e.g. "vae-reconstruction": decoder file
    verified: bool = True  # False: the card is read, the weights digest not yet checked

    @property
    def name(self) -> str:
        return self.card.name if self.card else self.path.stem


class ModelLibrary:
    def __init__(self, folders: Iterable[str | Path] = (), *, include_bundled: bool = True,
                 verify_now: bool = True):
        self._folders: list[tuple[Path, bool]] = []
        if include_bundled:
            self._folders.append((resources_dir() / "models", True))
        self._folders += [(Path(f), False) for f in folders]
        self._runners: dict[Path, object] = {}
        self._companions: dict[Path, object] = {}  # companion file -> its onnxruntime session
        self._lock = threading.Lock()
        self._checked: dict[tuple, str | None] = {}  # (path, size, mtime) -> digest error or None: hashed once
        self.verify_now = verify_now
        self.entries: list[ModelEntry] = []
        self.refresh()

    def add_folder(self, folder: str | Path) -> None:
        self._folders.append((Path(folder), False))
        self.refresh()

    def refresh(self) -> None:
        entries, companions = [], {}
        for folder, bundled in self._folders:
            for path in sorted(folder.glob("*.onnx")) if folder.is_dir() else []:
                try:
                    companion = read_companion(path)
                    if companion is not None:
                        companions.setdefault(path.with_name(companion.of), {})[companion.kind] = path
                        continue
                    entries.append(ModelEntry(path, read_card(path), bundled=bundled, verified=False))
                except ModelContractError as exc:
                    entries.append(ModelEntry(path, None, exc.problem, bundled))
        with self._lock:
            self.entries = [dataclasses.replace(e, companions=companions.get(e.path, {})) for e in entries]
        if self.verify_now:
            self.verify_pending()

    def pending(self) -> list[ModelEntry]:
        return [e for e in self.entries if not e.verified]

    def verify_pending(self) -> bool:
        """Check the weights digest of every entry not yet checked (any thread); a damaged file becomes
        an unusable entry with its reason. Returns whether an entry changed."""
        errors = {e.path: self._digest_error(e.path) for e in self.pending()}  # the slow part, unlocked
        with self._lock:  # a refresh meanwhile (a folder added) keeps its entries: update by path
            entries, changed = [], False
            for entry in self.entries:
                if not entry.verified and entry.path in errors:
                    error = errors[entry.path]
                    entry = dataclasses.replace(entry, verified=True, card=None if error else entry.card, error=error)
                    changed = True
                entries.append(entry)
            self.entries = entries  # one assignment: threads reading it see the old list or the new one
        return changed

    def _digest_error(self, path: Path) -> str | None:
        try:
            stat = path.stat()
            key = (path, stat.st_size, stat.st_mtime_ns)
        except OSError as exc:
            return f"cannot be read ({exc.strerror or exc})"
        if key not in self._checked:
            try:
                verify_file(path)
                self._checked[key] = None
            except ModelContractError as exc:
                self._checked[key] = exc.problem
        return self._checked[key]

    def find(self, name_or_path: str | Path) -> ModelEntry:
        """By model name, file stem, or a path to any .onnx file."""
        candidate = Path(name_or_path)
        if candidate.suffix == ".onnx" and candidate.is_file():
            return ModelEntry(candidate, verify_file(candidate))
        named = [e for e in self.entries if str(name_or_path) in (e.name, e.path.stem)]
        # a folder the user added wins over the bundled models: a retrained model may keep the bundled name
        for entry in sorted(named, key=lambda e: e.bundled):
            if entry.card is not None and not entry.verified:
                error = self._digest_error(entry.path)
                entry = dataclasses.replace(entry, verified=True, card=None if error else entry.card, error=error)
            if entry.card is None:
                raise ModelContractError(entry.path, entry.error or "invalid model")
            return entry
        known = ", ".join(e.name for e in self.entries if e.card) or "none"
        raise KeyError(f"no model named {name_or_path!r} (available: {known})")

    def default_reader(self) -> ModelEntry:
        """The model that answers when none is named (`predict` without --model, the app's Run): the usable
        whole-mammogram reader (roi.mode image) with the best reported CV AUC."""
        readers = [e for e in self.entries if e.card is not None and e.card.mode.whole_mammogram]
        if not readers:
            raise KeyError("no whole-mammogram reader is installed: name a model with --model")
        return max(readers, key=lambda e: (_reported_auc(e.card), e.bundled))

    def companion_session(self, path: Path):
        """A shared onnxruntime session for a companion file (CPU: it is small), made from bytes whose
        digest was checked (`load_verified_companion`), like a model's."""
        import onnxruntime as ort

        with self._lock:
            if path in self._companions:
                return self._companions[path]
        session = ort.InferenceSession(load_verified_companion(path), providers=["CPUExecutionProvider"])
        with self._lock:
            return self._companions.setdefault(path, session)

    def runner(self, name_or_path: str | Path, **options):
        """A shared `ModelRunner` per model file (sessions are costly to create)."""
        from mammodesk.inference.runner import ModelRunner

        known = next((e.path for e in sorted(self.entries, key=lambda e: e.bundled)
                      if str(name_or_path) in (str(e.path), e.name, e.path.stem)), None)
        with self._lock:
            if known is not None and known in self._runners:
                return self._runners[known]  # verified when its session was created; no second hash per job
        entry = self.find(name_or_path)
        with self._lock:
            if entry.path not in self._runners:
                self._runners[entry.path] = ModelRunner(entry.path, **options)
            return self._runners[entry.path]


def _reported_auc(card) -> float:
    metric = card.metrics.get("auc") if isinstance(card.metrics, dict) else None
    return float(metric["mean"]) if isinstance(metric, dict) and "mean" in metric else 0.0
