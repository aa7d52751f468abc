"""Each op against its formula or an independent reference implementation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from dicom_factory import phantom
from scipy import ndimage, signal

from mammodesk.errors import SpecError
from mammodesk.io import Image, ImageMeta, WindowPreset
from mammodesk.preprocessing import PipelineSpec, get_op, initial_frame


def run(op: str, image: Image, scale: float = 1.0, **params):
    return get_op(op)(**params)(initial_frame(image, scale))


def grey(pixels, bits=None, **meta):
    bits = bits or (8 if pixels.dtype == np.uint8 else 16)
    return Image(pixels, ImageMeta(bits_stored=bits, **meta))


def noisy_phantom(bits=8, size=128, sigma=12.0, seed=0):
    top = 2**bits - 1
    clean = cv2.GaussianBlur(phantom(size, size, bits=8).astype(np.float32) / 255, (0, 0), 4) * top
    rng = np.random.default_rng(seed)
    noisy = clean + rng.normal(0, sigma / 255 * top, clean.shape)
    dtype = np.uint8 if bits == 8 else np.uint16
    return clean, np.clip(noisy, 0, top).astype(dtype)


# --- window -------------------------------------------------------------
def test_window_linear_formula():
    pixels = np.array([[74, 75, 100, 124, 125]], dtype=np.uint16)
    out = run("window", grey(pixels), center=100, width=51).pixels
    expected = np.clip((pixels - 99.5) / 50 + 0.5, 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_window_uses_image_preset_by_default():
    pixels = np.array([[0, 1000, 2000]], dtype=np.uint16)
    image = grey(pixels, 12, window_presets=(WindowPreset(1000, 2000, "LINEAR_EXACT"),))
    np.testing.assert_allclose(run("window", image).pixels, [[0.0, 0.5, 1.0]])


def test_window_needs_both_center_and_width():
    with pytest.raises(SpecError, match="both"):
        get_op("window")(center=10)


# --- threshold ROI, normalise, to_rgb -------------------------------------
def test_threshold_roi_8bit_level_193():
    pixels = np.array([[192, 193, 250, 10]], dtype=np.uint8)
    out = run("threshold_roi", grey(pixels), level=193)
    np.testing.assert_array_equal(out.pixels, [[0, 193, 250, 0]])
    np.testing.assert_array_equal(out.mask, [[False, True, True, False]])


def test_threshold_roi_is_relative_to_bit_depth():
    cutoff = 4095 * 193 / 255  # 3099.2
    pixels = np.array([[int(cutoff), int(cutoff) + 1]], dtype=np.uint16)
    np.testing.assert_array_equal(run("threshold_roi", grey(pixels, 12), level=193).pixels, [[0, 3100]])


def test_normalise_modes():
    pixels = np.array([[10, 20, 30, 40]], dtype=np.uint8)
    np.testing.assert_allclose(run("normalise", grey(pixels)).pixels, [[0, 1 / 3, 2 / 3, 1]], atol=1e-6)
    z = run("normalise", grey(pixels), mode="zscore").pixels
    assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-6
    fixed = PipelineSpec([{"op": "to_rgb"}, {"op": "normalise", "params": {
        "mode": "fixed", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}])
    out = fixed.apply(grey(np.full((2, 2), 1.0, np.float32))).array
    np.testing.assert_allclose(out[0, 0], [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225], rtol=1e-6)


def test_normalise_range_keeps_absolute_intensity():
    """The bit depth's range, not the image's own: a dim ROI stays dim (what the plain baseline lives on)."""
    dim = np.array([[10, 20, 30, 40]], dtype=np.uint8)
    np.testing.assert_allclose(run("normalise", grey(dim), mode="range").pixels, dim / 255, atol=1e-7)
    twelve = np.array([[0, 1000, 4095]], dtype=np.uint16)
    np.testing.assert_allclose(run("normalise", grey(twelve, 12), mode="range").pixels, twelve / 4095, atol=1e-7)


def test_normalise_fixed_per_channel_needs_rgb():
    with pytest.raises(SpecError, match="to_rgb"):
        PipelineSpec([{"op": "normalise", "params": {"mode": "fixed", "mean": [1, 2, 3], "std": [1, 1, 1]}}]).apply(
            grey(np.zeros((4, 4), np.uint8)))


def test_to_rgb_repeats_channel():
    out = run("to_rgb", grey(np.arange(6, dtype=np.uint8).reshape(2, 3))).pixels
    assert out.shape == (2, 3, 3) and all(np.array_equal(out[..., c], out[..., 0]) for c in range(3))


# --- filters ----------------------------------------------------------------
@pytest.mark.parametrize("dtype,ksize", [(np.uint8, 7), (np.uint16, 5), (np.uint16, 9), (np.float32, 3)])
def test_median_matches_scipy_in_the_interior(dtype, ksize):
    _, pixels = noisy_phantom(8 if dtype == np.uint8 else 16)
    if dtype == np.float32:
        pixels = (pixels / 65535).astype(np.float32)
    out = run("median", grey(pixels), ksize=ksize).pixels
    reference = ndimage.median_filter(pixels, size=ksize)
    m = ksize
    assert out.dtype == dtype
    np.testing.assert_array_equal(out[m:-m, m:-m], reference[m:-m, m:-m])


def test_gaussian_matches_scipy():
    _, pixels = noisy_phantom(16)
    f = (pixels / 65535).astype(np.float32)
    out = run("gaussian", grey(f), sigma=2.5).pixels
    reference = ndimage.gaussian_filter(f, 2.5, mode="reflect", truncate=4.0)
    np.testing.assert_allclose(out[12:-12, 12:-12], reference[12:-12, 12:-12], atol=2e-3)


def test_wiener_matches_scipy_formula():
    _, pixels = noisy_phantom(16)
    f = (pixels / 65535).astype(np.float32)
    noise = 0.002
    out = run("wiener", grey(f), ksize=5, noise=noise).pixels
    reference = signal.wiener(f.astype(np.float64), mysize=5, noise=noise)
    np.testing.assert_allclose(out[3:-3, 3:-3], reference[3:-3, 3:-3], atol=1e-4)


@pytest.mark.parametrize("bits", [8, 16])
def test_nlmeans_reduces_noise(bits):
    clean, noisy = noisy_phantom(bits)
    out = run("nlmeans", grey(noisy), h=10).pixels
    assert out.dtype == noisy.dtype
    mse = lambda a: float(np.mean((a.astype(np.float64) - clean) ** 2))  # noqa: E731
    assert mse(out) < mse(noisy) / 5


def test_nlmeans_16bit_matches_8bit_behaviour():
    _, noisy8 = noisy_phantom(8)
    out8 = run("nlmeans", grey(noisy8), h=10).pixels.astype(np.float64)
    out16 = run("nlmeans", grey(noisy8.astype(np.uint16) * 257), h=10).pixels / 257.0
    assert np.abs(out16 - out8).mean() < 1.0  # grey levels on the 8-bit scale


def test_clahe_increases_local_contrast_and_keeps_range():
    low = (np.random.default_rng(0).random((128, 128)) * 200 + 1500).astype(np.uint16)
    out = run("clahe", grey(low, 12), clip_limit=2.0).pixels
    assert out.dtype == np.uint16 and out.max() <= 4095
    assert out.std() > 3 * low.std()


def test_clahe_does_not_depend_on_bits_stored():
    _, pixels16 = noisy_phantom(16)
    pixels12 = pixels16 >> 4
    out16 = run("clahe", grey(pixels12 << 4, 16)).pixels.astype(np.float64)
    out12 = run("clahe", grey(pixels12, 12)).pixels.astype(np.float64)
    diff = np.abs(out12 * 65535 / 4095 - out16)
    step = 65535 / 4095  # one 12-bit grey level
    # x16 (shift) and x16.004 (range spread) put a few values in neighbouring bins
    assert diff.mean() < 0.5 * step and np.percentile(diff, 99) < 4 * step


# --- geometry ops -----------------------------------------------------------
def test_crop_to_breast_drops_label_and_background():
    pixels = phantom(200, 160, bits=8)
    pixels[5:15, 140:155] = 255  # a film label away from the breast
    out = run("crop_to_breast", grey(pixels), opening=3)
    rows, cols = out.pixels.shape
    assert cols < 140 and rows < 200  # label column and dark margin gone
    assert out.mask.shape == out.pixels.shape and out.mask.mean() > 0.6
    assert (out.pixels[~out.mask] == 0).all()
    corner = out.geometry.inverse_points([[0, 0]])[0]
    assert corner[0] == 0 and corner[1] > 0


def test_crop_to_breast_on_rgb():
    rgb = PipelineSpec([{"op": "to_rgb"}, {"op": "crop_to_breast"}]).apply(grey(phantom(200, 160, bits=8)))
    assert rgb.array.ndim == 3 and (rgb.array[~rgb.mask] == 0).all()


def test_flip_laterality_puts_chest_wall_left():
    pixels = phantom(100, 80, bits=8)[:, ::-1].copy()  # chest wall on the right
    out = run("flip_laterality", grey(pixels))
    np.testing.assert_array_equal(out.pixels, pixels[:, ::-1])
    np.testing.assert_allclose(out.geometry.inverse_points([[0, 10]]), [[79, 10]])
    kept = run("flip_laterality", grey(pixels), chest_wall="right")
    assert kept.pixels is not None and np.array_equal(kept.pixels, pixels)


def test_flip_by_tags():
    pixels = phantom(100, 80, bits=8)
    out = run("flip_laterality", grey(pixels, laterality="R"), method="tags")
    np.testing.assert_array_equal(out.pixels, pixels[:, ::-1])


def test_resize_keep_aspect_pads_and_maps_geometry():
    pixels = np.zeros((100, 50), np.uint8)
    out = run("resize", grey(pixels), width=64, height=64)
    assert out.pixels.shape == (64, 64)
    # content is 64 x 32, centred: columns 16..47
    np.testing.assert_allclose(out.geometry.forward_points([[-0.5, -0.5], [49.5, 99.5]]), [[15.5, -0.5], [47.5, 63.5]])
    assert out.scale == 1.0


def test_resize_rgb_and_chest_wall_alignment():
    pixels = phantom(100, 50, bits=8)[:, ::-1].copy()  # chest wall right
    rgb = run("resize", grey(pixels), width=64, height=64, align="chest-wall")
    assert rgb.pixels[:, -1].max() > 0 and rgb.pixels[:, 0].max() == 0
    three = PipelineSpec([{"op": "to_rgb"}, {"op": "resize", "params": {"width": 20, "height": 30}}])
    assert three.apply(grey(pixels)).array.shape == (30, 20, 3)


# --- preview scale --------------------------------------------------------
def test_preview_scale_keeps_kernels_equivalent():
    _, pixels = noisy_phantom(16, size=512)
    image = grey(pixels)
    spec = PipelineSpec([{"op": "gaussian", "params": {"sigma": 8.0}}])
    full = spec.apply(image).array.astype(np.float32)
    expected = cv2.resize(full, (128, 128), interpolation=cv2.INTER_AREA)
    preview = spec.apply(image, scale=0.25).array.astype(np.float32)
    assert preview.shape == (128, 128)
    unscaled = cv2.GaussianBlur(cv2.resize(pixels, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32),
                                (0, 0), 8.0)
    error_scaled = np.abs(preview - expected)[8:-8, 8:-8].mean()
    error_unscaled = np.abs(unscaled - expected)[8:-8, 8:-8].mean()
    assert error_scaled < error_unscaled / 3


def test_preview_geometry_maps_back_to_full_resolution():
    image = grey(np.zeros((400, 300), np.uint8))
    out = PipelineSpec([]).apply(image, scale=0.25)
    assert out.array.shape == (100, 75)
    np.testing.assert_allclose(out.geometry.inverse_points([[0, 0], [74, 99]]), [[1.5, 1.5], [297.5, 397.5]])


def test_resample_gives_film_of_any_digitisation_the_same_tissue_per_pixel():
    """A breast digitised at 0.05 mm and at 0.2 mm comes out the same size at 0.4 mm, maps back to its
    source pixels, and a padded (not enlarged) canvas keeps that spacing."""
    fine = phantom(800, 600, bits=12)
    coarse = cv2.resize(fine, (150, 200), interpolation=cv2.INTER_AREA)
    spec = PipelineSpec([{"op": "resample", "params": {"spacing_mm": 0.4}},
                         {"op": "resize", "params": {"width": 100, "height": 120, "upscale": False,
                                                     "align": "top-left"}}])
    a = spec.apply(Image(fine, ImageMeta(bits_stored=12, pixel_spacing_mm=(0.05, 0.05))))
    b = spec.apply(Image(coarse, ImageMeta(bits_stored=12, pixel_spacing_mm=(0.2, 0.2))))
    assert a.array.shape == b.array.shape == (120, 100)
    assert a.mask is None or a.mask.shape == (120, 100)
    np.testing.assert_allclose(a.array[:100, :75], b.array[:100, :75], atol=0.02 * 4095)  # same tissue per pixel
    assert (a.array[100:] == 0).all() and (a.array[:, 75:] == 0).all()  # padded, never enlarged
    # pixel centres: output (37, 49.5) is source ((37 + 0.5) * 8 - 0.5, (49.5 + 0.5) * 8 - 0.5)
    np.testing.assert_allclose(a.geometry.inverse_points([[37.0, 49.5]]), [[299.5, 399.5]], atol=1e-6)
    only_resample = PipelineSpec([{"op": "resample", "params": {"spacing_mm": 0.4}}])
    unknown = only_resample.apply(Image(coarse, ImageMeta(bits_stored=12)))  # no spacing: taken as 205 mm tall
    assert unknown.array.shape == (512, 384)
