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


def test_a_mark_keeps_off_the_skin_line_the_image_edge_and_the_pectoral_muscle():
    from mammodesk.inference.location import tissue_cells

    rows, cols = 32, 20
    breast = np.zeros((rows, cols), bool)
    yy, xx = np.mgrid[0:rows, 0:cols]
    breast[(xx / 18.0) ** 2 + ((yy - 16) / 15.0) ** 2 < 1] = True  # a half-disc on the chest wall (left)
    pixels = np.zeros((rows * 16, cols * 16), np.float32)
    pixels[np.kron(breast, np.ones((16, 16), bool))] = 0.4
    muscle = np.zeros_like(pixels, bool)  # a bright triangle in the upper chest-wall corner
    py, px = np.mgrid[0:rows * 16, 0:cols * 16]
    muscle[(px < 160 - py * 0.6) & (pixels > 0)] = True
    pixels[muscle] = 0.95
    cells = tissue_cells(pixels, breast, "MLO")
    assert cells.any() and not (cells & ~breast).any()
    assert not cells[:, 0].any()  # never on the chest-wall edge of the map
    edge = breast & ~np.pad(breast, 1)[2:, 1:-1] | breast & ~np.pad(breast, 1)[:-2, 1:-1]
    assert not (cells & edge).any()  # nor on the skin line
    on_muscle = muscle[8::16, 8::16]
    assert on_muscle.any() and not (cells & on_muscle).any()
    assert (tissue_cells(pixels, breast, "CC") & on_muscle).any()  # a CC view has no pectoral muscle


def test_a_box_at_the_edge_moves_inside_and_is_never_cut():
    from mammodesk.inference.location import inside

    assert inside(-10, 40, 1000) == (10, 60)  # moved, same width, off the edge
    assert inside(980, 1030, 1000) == (940, 990)
    assert inside(100, 150, 1000) == (100, 150)
    cells = (40, 24)
    logits = np.zeros(cells)
    logits[0, 0] = 5.0  # the peak in the corner: the box stays whole, inside the image
    x0, y0, x1, y1 = peak_box(logits, np.ones(cells, bool), Geometry.identity((640, 384)), spacing_mm=0.5)
    assert x0 > 0 and y0 > 0 and x1 < 384 and y1 < 640
    assert (x1 - x0) * 0.5 == pytest.approx(LOCATION_MM, abs=1.0)


def test_a_box_nearly_as_wide_as_the_image_is_moved_not_cut():
    from mammodesk.inference.location import inside

    assert inside(-5, 95, 100) == (0, 100)  # as wide as the image: it fills it
    assert inside(-5, 93, 100) == (1, 99)  # a margin of what room is left
    assert inside(-50, 150, 100) == (0, 100)  # wider than the image: cut to it
