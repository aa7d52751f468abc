"""Reading mammograms into `Image` objects. Each format is a module of `formats/` (see there)."""

from mammodesk.io.image import Image, ImageMeta, WindowPreset
from mammodesk.io.registry import Reader, find_reader, read_image, readers, register_reader, supported_suffixes
from mammodesk.io.voi import apply_window
from mammodesk.io import formats  # noqa: F401  - registers every format

__all__ = [
    "Image", "ImageMeta", "WindowPreset", "Reader", "apply_window", "find_reader",
    "read_image", "readers", "register_reader", "supported_suffixes",
]
