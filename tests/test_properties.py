"""Property tests (hypothesis) over the whole op registry: shape and dtype
contracts, and geometry that maps points back within a pixel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mammodesk.io import Image, ImageMeta
from mammodesk.preprocessing import OPS, PipelineSpec, get_op, initial_frame

FLOAT_OUTPUT = {"window", "normalise"}
SMALL_PARAMS = {"resize": {"width": 24, "height": 20}, "nlmeans": {"template": 3, "search": 7}}
DTYPES = [np.uint8, np.uint16, np.float32]


@st.composite
def images(draw):
    dtype = draw(st.sampled_from(DTYPES))
    rows, cols = draw(st.integers(8, 48)), draw(st.integers(8, 48))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        pixels = rng.random((rows, cols), dtype=np.float32)
    else:
        top = 255 if dtype == np.uint8 else 4095
        pixels = rng.integers(0, top + 1, (rows, cols)).astype(dtype)
    bits = 8 if dtype == np.uint8 else (12 if dtype == np.uint16 else 32)
    laterality = draw(st.sampled_from([None, "L", "R"]))
    return Image(pixels, ImageMeta(bits_stored=bits, laterality=laterality))


@pytest.mark.parametrize("name", sorted(OPS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(image=images(), scale=st.sampled_from([1.0, 0.5]))
def test_op_output_contract(name, image, scale):
    op = get_op(name)(**SMALL_PARAMS.get(name, {}))
    frame = initial_frame(image, scale)
    out = op(frame)
    if name == "to_rgb":
        assert out.pixels.shape == frame.pixels.shape + (3,)
    else:
        assert out.pixels.ndim == 2
    expected = np.float32 if name in FLOAT_OUTPUT else frame.pixels.dtype
    assert out.pixels.dtype == expected
    assert out.geometry.output_shape == out.pixels.shape[:2]
    assert out.geometry.source_shape == image.shape
    if out.mask is not None:
        assert out.mask.shape == out.pixels.shape[:2] and out.mask.dtype == bool
    if np.issubdtype(out.pixels.dtype, np.floating):
        assert np.isfinite(out.pixels).all()


@settings(max_examples=60, deadline=None)
@given(image=images(), width=st.integers(4, 96), height=st.integers(4, 96), keep=st.booleans(),
       flip=st.booleans(), x=st.floats(0, 1), y=st.floats(0, 1))
def test_geometry_maps_a_bright_pixel_back_within_a_pixel(image, width, height, keep, flip, x, y):
    rows, cols = image.shape
    col, row = int(x * (cols - 1)), int(y * (rows - 1))
    pixels = np.zeros(image.shape, np.float32)
    pixels[row, col] = 1.0
    image = Image(pixels, ImageMeta(laterality="R" if flip else "L"))
    spec = PipelineSpec([
        {"op": "flip_laterality", "params": {"method": "tags"}},
        {"op": "resize", "params": {"width": width, "height": height, "keep_aspect": keep}},
    ])
    out = spec.apply(image)
    peak = np.unravel_index(np.argmax(out.array), out.array.shape)
    back = out.geometry.inverse_points([[peak[1], peak[0]]])[0]
    source_per_output = (abs(1 / out.geometry.matrix[0, 0]), abs(1 / out.geometry.matrix[1, 1]))
    assert abs(back[0] - col) <= max(1.0, source_per_output[0])
    assert abs(back[1] - row) <= max(1.0, source_per_output[1])
    forward = out.geometry.forward_points([[col, row]])
    np.testing.assert_allclose(out.geometry.inverse_points(forward)[0], [col, row], atol=1e-6)
