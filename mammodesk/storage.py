"""The one place files are written and the app's data folder is found.

`write_atomic` replaces a file so that a crash at any moment leaves the old
or the new one, never a mixture: a temporary file in the same folder,
fsync, rename over the target, fsync of the folder. `write_atomic_with`
does the same for writers that need a path (pydicom's `save_as`,
`torch.save`). Every writer of the app, the archive and training uses
these; a failure is a `StorageError` that says why in words (disk full,
no permission)."""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path
from typing import Callable

from mammodesk.errors import StorageError

TEMPORARY = ".{name}.{pid}.tmp"  # beside the target, hidden; `remove_stale_temporaries` knows the pattern


def data_dir() -> Path:
    """The user's MammoDesk data folder (annotations of read-only images, the study cache, the outbox,
    server settings); `MAMMODESK_DATA_DIR` overrides it."""
    override = os.environ.get("MAMMODESK_DATA_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "MammoDesk"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "MammoDesk"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "MammoDesk"


def write_atomic(path: Path, data: bytes, *, make_folder: bool = True) -> None:
    """Replace `path` with `data` (its folder made first unless `make_folder` is False)."""
    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            handle.write(data)

    write_atomic_with(path, write, make_folder=make_folder)


def write_atomic_with(path: Path, write: Callable[[Path], object], *, make_folder: bool = True) -> None:
    """Replace `path` with what `write(temporary_path)` writes there."""
    path = Path(path)
    if make_folder:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(exc.errno, why(exc), str(path)) from exc
    temporary = path.with_name(TEMPORARY.format(name=path.name, pid=os.getpid()))
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StorageError(exc.errno, why(exc), str(path)) from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


STALE_AFTER_S = 60.0  # a live writer's temporary exists for milliseconds; an older one was left by a crash


def remove_stale_temporaries(path: Path) -> None:
    """Temporary files a killed writer of `path` left behind (never the file itself, nor the temporary
    another window is writing right now)."""
    now = time.time()
    for stale in path.parent.glob(TEMPORARY.format(name=path.name, pid="*")):
        try:
            if now - stale.stat().st_mtime > STALE_AFTER_S:
                stale.unlink()
        except OSError:
            pass


def why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "no permission to write there"
    return exc.strerror or str(exc)


def _fsync_folder(folder: Path) -> None:
    if sys.platform == "win32":
        return  # folders cannot be opened for fsync; NTFS journals the rename
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
