"""The one rule for images without a pixel spacing, shared by the app and
`mammodesk predict`: scanned film (CBIS-DDSM, many research exports) often
carries no spacing tag, and ROI models cut ROIs of a physical size. The user
states a spacing (the panel's "No spacing: assume", or `--assume-spacing MM`);
without one, ROIs are taken at the model's size in pixels and every answer
says so in its notes. A spacing the file states always wins."""

from __future__ import annotations

import dataclasses

from mammodesk.io import Image


def with_assumed_spacing(image: Image, assumed_mm: float | None) -> Image:
    """The image as the models see it: `assumed_mm` only when the file states no spacing."""
    if image.meta.pixel_spacing_mm or not assumed_mm:
        return image
    return Image(image.pixels, dataclasses.replace(image.meta, pixel_spacing_mm=(assumed_mm, assumed_mm)))


def spacing_source(original: Image, assumed_mm: float | None) -> str:
    """'file', 'assumed' or 'unknown': where the spacing the models used came from."""
    if original.meta.pixel_spacing_mm:
        return "file"
    return "assumed" if assumed_mm else "unknown"
