"""Image formats are a tiny protocol plus a registry (MONAI `ImageReader`, napari
reader hooks): each format recognises its files from their first bytes,
not from the extension, and turns the file into an `Image`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mammodesk.errors import CorruptFileError, ImageReadError, UnsupportedFormatError
from mammodesk.io.image import Image

HEAD_BYTES = 512


@dataclass(frozen=True)
class ImageFormat:
    name: str
    description: str
    sniff: Callable[[bytes], bool]
    read: Callable[..., Image]  # read(path, *, keep_identifying=False) -> Image
    suffixes: tuple[str, ...] = ()  # where such files are usually found ("" for none: DICOM often has none)


_FORMATS: list[ImageFormat] = []


def register_format(image_format: ImageFormat, *, first: bool = False) -> ImageFormat:
    """Add a format; `first=True` lets a plugin take precedence over the built-ins."""
    if any(r.name == image_format.name for r in _FORMATS):
        raise ValueError(f"an image format named {image_format.name!r} is already registered")
    _FORMATS.insert(0, image_format) if first else _FORMATS.append(image_format)
    return image_format


def image_formats() -> tuple[ImageFormat, ...]:
    return tuple(_FORMATS)


def supported_suffixes() -> tuple[str, ...]:
    """What a folder listing and the Open dialog offer: every registered format's suffixes, lower case."""
    return tuple(dict.fromkeys(s.lower() for image_format in _FORMATS for s in image_format.suffixes))


def find_format(path: str | Path) -> ImageFormat:
    path = Path(path)
    head = _read_head(path)
    for image_format in _FORMATS:
        if image_format.sniff(head):
            return image_format
    known = ", ".join(r.description for r in _FORMATS)
    if not head:
        raise CorruptFileError(path, "the file is empty")
    raise UnsupportedFormatError(path, f"not a recognised image format (supported: {known})")


def read_image(path: str | Path, *, keep_identifying: bool = False) -> Image:
    """Read any supported mammogram file. Raises a subclass of `ImageReadError`
    naming the file and the cause; never another exception for bad content."""
    path = Path(path)
    image_format = find_format(path)
    try:
        return image_format.read(path, keep_identifying=keep_identifying)
    except ImageReadError:
        raise
    except MemoryError as exc:
        raise ImageReadError(path, "not enough memory to decode this image") from exc
    except BaseException as exc:  # decoder libraries raise anything on damaged input, even panics
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise CorruptFileError(path, f"{image_format.name} data could not be decoded ({exc})") from exc


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
