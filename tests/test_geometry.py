"""Geometry: points and heat maps back to source pixels."""

from __future__ import annotations

import numpy as np
from dicom_factory import phantom

from mammodesk.io import Image, ImageMeta
from mammodesk.preprocessing import Geometry, PipelineSpec


def test_compose_crop_flip_resize_points():
    g = Geometry.identity((100, 200)).crop(10, 20, 50, 80).flip_horizontal().scale_to(100, 160)
    source = np.array([[20.0, 10.0], [99.0, 59.0], [55.5, 33.25]])
    out = g.forward_points(source)
    np.testing.assert_allclose(out[0], [(79 - 0 + 0.5) * 2 - 0.5, 0.5 * 2 - 0.5])
    np.testing.assert_allclose(g.inverse_points(out), source, atol=1e-9)


def test_cam_peak_lands_on_the_right_source_pixel():
    """A 7x7 map with one hot cell, over a 224x224 model input, after crop + flip + resize."""
    pixels = phantom(400, 300, bits=8)
    spec = PipelineSpec([{"op": "crop_to_breast"}, {"op": "flip_laterality", "params": {"chest_wall": "right"}},
                         {"op": "resize", "params": {"width": 224, "height": 224}}])
    out = spec.apply(Image(pixels, ImageMeta()))
    heat = np.zeros((7, 7), np.float32)
    heat[2, 5] = 1.0
    back = out.geometry.inverse_map(heat)
    assert back.shape == pixels.shape
    peak_row, peak_col = np.unravel_index(np.nanargmax(back), back.shape)
    cell_centre_output = [[(5 + 0.5) * 32 - 0.5, (2 + 0.5) * 32 - 0.5]]
    expected = out.geometry.inverse_points(cell_centre_output)[0]
    source_px_per_output_px = 1 / out.geometry.matrix[1, 1]
    assert abs(peak_col - expected[0]) <= source_px_per_output_px
    assert abs(peak_row - expected[1]) <= source_px_per_output_px


def test_inverse_map_marks_uncovered_source_pixels():
    g = Geometry.identity((10, 10)).crop(2, 3, 5, 4)
    back = g.inverse_map(np.ones((5, 4), np.float32))
    assert np.isnan(back[0, 0]) and np.isnan(back[9, 9])
    assert np.all(back[2:7, 3:7] == 1.0)
    assert np.isnan(back).sum() == 100 - 20


def test_coverage_mask_general_matrix_path():
    rotate = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # transpose
    g = Geometry.identity((4, 6)).then(rotate, (6, 4))
    assert g.coverage_mask().all()


def test_padding_after_a_crop_never_maps_onto_source_outside_the_crop():
    """Crop to a narrow region, then resize with aspect-keeping padding: the padded
    columns map (affinely) onto source pixels the output never contained."""
    g = Geometry.identity((100, 100)).crop(10, 40, 80, 20).scale_to(80, 80, 0, 30, (80, 20))
    window = g.source_window()
    assert window == (10, 40, 80, 20)
    back = g.inverse_map(np.ones((8, 8), np.float32))
    assert np.isnan(back[:, :40]).all() and np.isnan(back[:, 60:]).all()
    assert not np.isnan(back[10:90, 40:60]).any()
    cover = g.coverage_mask()
    assert cover.sum() == 80 * 20 and cover[10:90, 40:60].all()


def test_crop_box_survives_flip_and_resize():
    g = Geometry.identity((50, 60)).crop(5, 10, 30, 20).flip_horizontal().scale_to(60, 40)
    assert g.source_window() == (5, 10, 30, 20)
    np.testing.assert_allclose(g.source_box, (9.5, 4.5, 29.5, 34.5))


def test_a_window_partly_or_wholly_outside_the_image_is_zero_and_invalid_there():
    from mammodesk.preprocessing import crop_frame

    pixels = np.arange(1, 13 * 17 + 1, dtype=np.uint16).reshape(13, 17)
    image = Image(pixels, ImageMeta())
    for y0, x0 in [(2, 15), (2, 17), (2, 30), (-10, 3), (-2, -3), (11, -9), (20, 20), (0, 0)]:
        frame = crop_frame(image, y0, x0, 6, 5)
        rows = np.arange(y0, y0 + 6)[:, None]
        cols = np.arange(x0, x0 + 5)[None, :]
        inside = (rows >= 0) & (rows < 13) & (cols >= 0) & (cols < 17)
        expected = np.where(inside, pixels[rows.clip(0, 12), cols.clip(0, 16)], 0)
        assert frame.pixels.shape == (6, 5)
        np.testing.assert_array_equal(frame.mask, inside)
        np.testing.assert_array_equal(frame.pixels, expected)
