"""Readers are a tiny protocol plus a registry (MONAI `ImageReader`, napari
reader hooks): each reader recognises its format from the file's first bytes,
not from the extension, and turns the file into an `Image`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mammodesk.errors import CorruptFileError, ImageReadError, UnsupportedFormatError
from mammodesk.io.image import Image

HEAD_BYTES = 512


@dataclass(frozen=True)
class Reader:
    name: str
    description: str
    sniff: Callable[[bytes], bool]
    read: Callable[..., Image]  # read(path, *, keep_identifying=False) -> Image
    suffixes: tuple[str, ...] = ()  # where such files are usually found ("" for none: DICOM often has none)


_READERS: list[Reader] = []


def register_reader(reader: Reader, *, first: bool = False) -> Reader:
    """Add a reader; `first=True` lets a plugin take precedence over the built-ins."""
    if any(r.name == reader.name for r in _READERS):
        raise ValueError(f"a reader named {reader.name!r} is already registered")
    _READERS.insert(0, reader) if first else _READERS.append(reader)
    return reader


def readers() -> tuple[Reader, ...]:
    return tuple(_READERS)


def supported_suffixes() -> tuple[str, ...]:
    """What a folder listing and the Open dialog offer: every registered reader's suffixes, lower case."""
    return tuple(dict.fromkeys(s.lower() for reader in _READERS for s in reader.suffixes))


def find_reader(path: str | Path) -> Reader:
    path = Path(path)
    head = _read_head(path)
    for reader in _READERS:
        if reader.sniff(head):
            return reader
    known = ", ".join(r.description for r in _READERS)
    if not head:
        raise CorruptFileError(path, "the file is empty")
    raise UnsupportedFormatError(path, f"not a recognised image format (supported: {known})")


def read_image(path: str | Path, *, keep_identifying: bool = False) -> Image:
    """Read any supported mammogram file. Raises a subclass of `ImageReadError`
    naming the file and the cause; never another exception for bad content."""
    path = Path(path)
    reader = find_reader(path)
    try:
        return reader.read(path, keep_identifying=keep_identifying)
    except ImageReadError:
        raise
    except MemoryError as exc:
        raise ImageReadError(path, "not enough memory to decode this image") from exc
    except BaseException as exc:  # decoder libraries raise anything on damaged input, even panics
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise CorruptFileError(path, f"{reader.name} data could not be decoded ({exc})") from exc


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(HEAD_BYTES)
    except FileNotFoundError as exc:
        raise ImageReadError(path, "file not found") from exc
    except IsADirectoryError as exc:
        raise ImageReadError(path, "is a folder, not a file") from exc
    except OSError as exc:
        raise ImageReadError(path, f"cannot be read ({exc.strerror or exc})") from exc
