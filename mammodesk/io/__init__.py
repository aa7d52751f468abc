"""Reading mammograms into `Image` objects. Each format is a module of `formats/` (see there)."""

from mammodesk.io.image import Image, ImageMeta, WindowPreset
from mammodesk.io.registry import ImageFormat, find_format, read_image, image_formats, register_format, supported_suffixes
from mammodesk.io.voi import apply_window
from mammodesk.io import formats  # noqa: F401  - registers every format

__all__ = [
    "Image", "ImageMeta", "WindowPreset", "ImageFormat", "apply_window", "find_format",
    "read_image", "image_formats", "register_format", "supported_suffixes",
]
