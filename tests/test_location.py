"""Where an image reader points: a box of LOCATION_MM on the breast, whatever the reader's cell size."""

from __future__ import annotations

import numpy as np
import pytest

from mammodesk.inference.location import LOCATION_MM, location_cells, peak_box
from mammodesk.preprocessing import Geometry


@pytest.mark.parametrize("spacing_mm,input_shape", [(0.4, (640, 384)), (0.8, (320, 192))])
def test_the_location_box_is_the_same_size_on_the_breast_at_any_spacing(spacing_mm, input_shape):
    cells = (input_shape[0] // 16, input_shape[1] // 16)
    logits = np.zeros(cells)
    logits[cells[0] // 2, cells[1] // 2] = 5.0
    geometry = Geometry.identity(input_shape)  # source pixels are the input's: spacing_mm each
    x0, y0, x1, y1 = peak_box(logits, np.ones(cells, bool), geometry, spacing_mm=spacing_mm)
    assert (x1 - x0) * spacing_mm == pytest.approx(LOCATION_MM, abs=2 * spacing_mm)  # whole pixels
    assert (y1 - y0) * spacing_mm == pytest.approx(LOCATION_MM, abs=2 * spacing_mm)  # whole pixels
    centre = ((y0 + y1) / 2, (x0 + x1) / 2)
    assert centre == pytest.approx(((cells[0] // 2 + 0.5) * 16, (cells[1] // 2 + 0.5) * 16), abs=1.0)
    assert location_cells(16 * spacing_mm) == pytest.approx(LOCATION_MM / (16 * spacing_mm))
