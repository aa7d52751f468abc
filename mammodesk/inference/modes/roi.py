"""`roi`: one region the user draws (or a scan places) is cropped at the model's size and classified."""

from __future__ import annotations

from mammodesk.inference.modes.base import ReadingMode, reading_mode


@reading_mode
class Roi(ReadingMode):
    name = "roi"
    words = "Drawn ROI"
