"""The local cache of retrieved studies: a folder per server and study (named by
a hash, no identifiers in paths), a size limit enforced after each retrieve by
dropping the least recently used complete studies, never the one just read."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from mammodesk.storage import data_dir

DEFAULT_LIMIT_BYTES = 20 * 1024**3
COMPLETE = ".complete"


class StudyCache:
    def __init__(self, root: Path | None = None, limit_bytes: int = DEFAULT_LIMIT_BYTES):
        self.root = root or data_dir() / "cache"
        self.limit_bytes = limit_bytes

    def folder(self, server: str, study_uid: str) -> Path:
        key = hashlib.sha256(f"{server}\n{study_uid}".encode()).hexdigest()[:24]
        return self.root / key

    def mark_complete(self, folder: Path) -> None:
        (folder / COMPLETE).write_text(str(time.time()))
        os.utime(folder)

    def is_complete(self, folder: Path) -> bool:
        return (folder / COMPLETE).exists()

    def images(self, folder: Path) -> list[Path]:
        return sorted(p for p in folder.glob("*.dcm"))

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file()) if self.root.exists() else 0

    def enforce_limit(self, keep: Path | None = None) -> list[Path]:
        """Drop least recently used studies until the cache fits; returns what was removed."""
        if not self.root.exists():
            return []
        studies = sorted((p for p in self.root.iterdir() if p.is_dir() and p != keep), key=lambda p: p.stat().st_mtime)
        removed = []
        total = self.size()
        for study in studies:
            if total <= self.limit_bytes:
                break
            freed = sum(p.stat().st_size for p in study.rglob("*") if p.is_file())
            shutil.rmtree(study, ignore_errors=True)
            total -= freed
            removed.append(study)
        return removed
