"""One JSON sidecar per image, next to it (`IMAGE.mammodesk.json`), or - when
that folder is read-only - in the user's data folder under the pixel hash.

Writes are atomic: a temporary file in the same folder, fsync, rename over
the old file, fsync of the folder. A crash leaves either the old or the new
file, never a mixture. A sidecar that cannot be parsed is renamed aside
(`*.corrupt-TIMESTAMP`), reported, and never overwritten.

Two writers (two windows, or two machines on a shared folder) never lose each
other's work: every write records a random token, and `save_sidecar`, under
a lock, compares the token on disk with the one this writer last saw. When
another writer came in between, the findings are merged (`merge.py`) and
the caller is told.

Nothing identifying goes in: the image is named by file name (not its
folder) and by the SHA-256 of its pixels."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from mammodesk.annotations.merge import Merged, merge_labels
from mammodesk.annotations.model import ImageLabels
from mammodesk.annotations.serialize import labels_from_dict, labels_to_dict
from mammodesk import storage
from mammodesk.errors import AnnotationSaveError, StorageError
from mammodesk.storage import data_dir

SCHEMA = "mammodesk-annotations"
VERSION = 1
SUFFIX = ".mammodesk.json"


def pixel_sha256(pixels) -> str:
    """Identity of an image's content, independent of its file name and header."""
    digest = hashlib.sha256()
    digest.update(f"{pixels.dtype.str}{pixels.shape}".encode())
    digest.update(memoryview(pixels if pixels.flags.c_contiguous else pixels.copy()).cast("B"))
    return digest.hexdigest()


def sidecar_path(image_path: Path | None, sha256: str) -> Path:
    """An existing sidecar wins; else next to the image if that folder is writable and is not
    the app's own (site-packages, the Python prefix, the app's resources where the demo's images
    live, the user data folder whose study cache is evicted), else the user data folder."""
    stored = data_dir() / "annotations" / sha256[:2] / f"{sha256}.json"
    if image_path is None:
        return stored
    beside = image_path.with_name(image_path.name + SUFFIX)
    if beside.exists():
        return beside
    if stored.exists():
        return stored
    return beside if os.access(image_path.parent, os.W_OK) and not _app_owned(image_path) else stored


def _app_owned(path: Path) -> bool:
    import site
    import sys

    from mammodesk.resources import resources_dir

    roots = {sys.prefix, sys.base_prefix, *site.getsitepackages(), site.getusersitepackages(), str(resources_dir()),
             str(data_dir())}
    resolved = path.resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots if root)


@dataclass
class SidecarRead:
    """What opening an image found: labels (None = no sidecar yet) and anything to tell the user."""

    path: Path
    labels: ImageLabels | None = None
    revision: int = 0
    problems: list[str] = field(default_factory=list)
    token: str | None = None  # the write it came from (None: no sidecar, or one older than tokens)


def read_sidecar(path: Path, sha256: str, shape: tuple[int, int]) -> SidecarRead:
    result = SidecarRead(path)
    if not path.exists():
        return result
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError("not a MammoDesk annotation file")
        if int(data.get("version", 0)) > VERSION:
            raise ValueError(f"written by a newer MammoDesk (schema version {data['version']} > {VERSION})")
        labels = labels_from_dict(data["labels"])
        image = data.get("image", {})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        kept = keep_aside(path)
        result.problems.append(f"{path.name} could not be read ({exc}); kept as {kept.name}, starting empty")
        return result
    result.labels = labels
    result.revision = int(data.get("revision", 0))
    result.token = data.get("token")
    if image.get("pixel_sha256") not in (None, sha256):
        result.problems.append(f"{path.name} was made on different pixels (the image file changed); "
                               "check the ROIs before trusting them")
    if image.get("rows") is not None and (image["rows"], image["cols"]) != tuple(shape):
        result.problems.append(f"{path.name} was made on a {image['cols']}x{image['rows']} image, "
                               f"this one is {shape[1]}x{shape[0]}")
    return result


def keep_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    os.replace(path, target)
    return target


def sidecar_bytes(labels: ImageLabels, *, file_name: str, sha256: str, shape: tuple[int, int],
                  revision: int, token: str = "") -> bytes:
    document = {
        "schema": SCHEMA,
        "version": VERSION,
        "revision": revision,
        "token": token or uuid.uuid4().hex,
        "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "image": {"file": file_name, "pixel_sha256": sha256, "rows": shape[0], "cols": shape[1]},
        "labels": labels_to_dict(labels),
    }
    return json.dumps(document, indent=1).encode("utf-8")


@dataclass(frozen=True)
class WriteOutcome:
    token: str  # this write's token: the base of this writer's next save
    labels: ImageLabels  # what is on disk now
    merged: Merged | None = None  # another writer had saved in between: what was merged


def save_sidecar(path: Path, labels: ImageLabels, *, base_token: str | None, base_labels: ImageLabels | None,
                 file_name: str, sha256: str, shape: tuple[int, int], revision: int) -> WriteOutcome:
    """Write `labels`, unless another writer saved since this one last read or wrote (`base_token`):
    then theirs and ours are merged and the merge is written. Locked, so two writers take turns."""
    with _locked(path):
        theirs = read_sidecar(path, sha256, shape) if path.exists() else None
        merged = None
        if theirs is not None and theirs.labels is not None and theirs.token != base_token:
            merged = merge_labels(base_labels, labels, theirs.labels)
            labels, revision = merged.labels, max(revision, theirs.revision + 1)
        token = uuid.uuid4().hex
        write_atomic(path, sidecar_bytes(labels, file_name=file_name, sha256=sha256, shape=shape,
                                         revision=revision, token=token))
    return WriteOutcome(token, labels, merged)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on a hidden file beside the sidecar, held while it is read and replaced. On POSIX the
    lock file is removed before the lock is released, so none is left beside the images; a writer that locked
    a file already removed (it waited while the holder finished) sees that and locks the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    while True:
        try:
            handle = open(lock, "a+b")
        except OSError as exc:
            raise AnnotationSaveError(exc.errno, storage.why(exc), str(path)) from exc
        held = _lock(handle, path)
        if sys.platform == "win32" or not held or _same_file(handle, lock):
            break
        handle.close()  # the file it waited on was removed by the holder: lock the one there now
    try:
        yield
    finally:
        if held and sys.platform != "win32":
            try:
                lock.unlink()
            except OSError:
                pass
        handle.close()  # closing releases the lock


def _lock(handle, path: Path) -> bool:
    """Blocks until the lock is held; False on a file system without locks (some network shares: tokens still
    catch a race)."""
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        return True
    except OSError as exc:
        if exc.errno not in (errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL):
            handle.close()
            raise AnnotationSaveError(exc.errno, storage.why(exc), str(path)) from exc
        return False


def _same_file(handle, lock: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(lock).st_ino
    except OSError:
        return False


def write_atomic(path: Path, data: bytes) -> None:
    """`storage.write_atomic`, its failure reported as an annotation that was not saved."""
    try:
        storage.write_atomic(path, data)
    except StorageError as exc:
        raise AnnotationSaveError(exc.errno, exc.strerror, exc.filename) from exc


remove_stale_temporaries = storage.remove_stale_temporaries  # the loader clears a killed writer's leftovers
