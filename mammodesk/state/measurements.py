"""Rulers: distances measured on an image, in millimetres where its pixel
spacing is known and in pixels (with a note) otherwise. They are reading aids,
kept per open image and never written to the labels."""

from __future__ import annotations

import math

Point = tuple[float, float]
Segment = tuple[Point, Point]
SCALE_STEPS_MM = (1, 2, 5, 10, 20, 50, 100)


def length_mm(segment: Segment, spacing: tuple[float, float] | None) -> float | None:
    """Physical length; spacing is (row, column) mm per pixel as DICOM's PixelSpacing."""
    if not spacing:
        return None
    (x0, y0), (x1, y1) = segment
    return math.hypot((x1 - x0) * spacing[1], (y1 - y0) * spacing[0])


def length_text(segment: Segment, spacing: tuple[float, float] | None) -> str:
    mm = length_mm(segment, spacing)
    if mm is not None:
        return f"{mm:.1f} mm"
    (x0, y0), (x1, y1) = segment
    return f"{math.hypot(x1 - x0, y1 - y0):.0f} px (no pixel spacing)"


def scale_bar(pixels_per_screen_pixel: float, spacing: tuple[float, float] | None,
              target_px: float = 110.0) -> tuple[float, str]:
    """(bar length in screen pixels, its label): a round length near `target_px` on screen."""
    source_px = target_px * pixels_per_screen_pixel
    if spacing:
        wanted = source_px * spacing[1]
        mm = min(SCALE_STEPS_MM, key=lambda step: abs(math.log(step / max(wanted, 1e-9))))
        return mm / spacing[1] / pixels_per_screen_pixel, f"{mm} mm"
    steps = [10, 20, 50, 100, 200, 500, 1000, 2000]
    px = min(steps, key=lambda step: abs(math.log(step / max(source_px, 1e-9))))
    return px / pixels_per_screen_pixel, f"{px} px (no spacing)"
