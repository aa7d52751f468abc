"""Domain exceptions. Each subclasses a built-in so callers can catch broadly,
and carries the context a user needs to act on it (DESIGN.md, convention 7)."""

from __future__ import annotations

from pathlib import Path


class MammoDeskError(Exception):
    """Base class of every error MammoDesk raises on purpose."""


class ImageReadError(MammoDeskError, ValueError):
    """A file could not be turned into an `Image`; names the file and the cause."""

    def __init__(self, path: str | Path | None, cause: str):
        self.path = None if path is None else Path(path)
        self.cause = cause
        where = f"{self.path.name}: " if self.path is not None else ""
        super().__init__(f"{where}{cause}")

    def __reduce__(self):  # crosses process boundaries (decoding runs in worker processes)
        return type(self), (self.path, self.cause)


class UnsupportedFormatError(ImageReadError):
    """No registered reader recognises the file's content."""


class CorruptFileError(ImageReadError):
    """The file claims a known format but its bytes are truncated or inconsistent."""


class UnsupportedImageError(ImageReadError):
    """A valid file we deliberately do not handle: multi-frame, colour DICOM,
    a compressed transfer syntax without a decoder."""


class MissingPixelDataError(ImageReadError):
    """A DICOM file without (7FE0,0010) Pixel Data, e.g. a structured report."""


class LabelReadError(MammoDeskError, ValueError):
    """A label file (MIAS Info.txt, CBIS-DDSM CSV, INbreast sheet or XML) is malformed."""

    def __init__(self, path: str | Path | None, cause: str, line: int | None = None):
        self.path = None if path is None else Path(path)
        self.line = line
        where = self.path.name if self.path is not None else "<labels>"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {cause}")


class SpecError(MammoDeskError, ValueError):
    """A preprocessing spec or one of its ops is invalid; the message says how to fix it."""


def did_you_mean(word: str, options) -> str:
    """'; did you mean X?' for the closest option (prefix or spelling), or ''."""
    import difflib

    options = [str(o) for o in options]
    prefixed = [o for o in options if o.startswith(word) or word.startswith(o)] if word else []
    close = prefixed or difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class StorageError(MammoDeskError, OSError):
    """A file could not be written (`mammodesk.storage`); the previous one is untouched. The message says
    why in words: the disk is full, no permission, ..."""


class AnnotationSaveError(StorageError):
    """Annotations could not be written; the previous file is untouched and the
    edits stay in memory (the message says why: disk full, read-only, ...)."""
