"""`whole`: the whole processed image is classified (the VAE-latent CNN, SimCLR)."""

from __future__ import annotations

from mammodesk.inference.modes.base import ReadingMode, reading_mode
from mammodesk.preprocessing import Geometry


@reading_mode
class Whole(ReadingMode):
    name = "whole"
    words = "Whole image"
    reads_whole_image = True

    def region(self, geometry: Geometry) -> None:
        return None
