"""The DICOM reader on synthetic files: standard-conformant pixel pipeline,
compressed syntaxes, privacy and damaged input."""

from __future__ import annotations

import numpy as np
import pytest
from dicom_factory import PHI, compress, make_dataset, phantom, write
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import (
    JPEG2000Lossless, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1, JPEGLSLossless, RLELossless, UID,
)

from mammodesk.errors import (
    CorruptFileError, ImageReadError, MissingPixelDataError, UnsupportedImageError,
)
from mammodesk.io import apply_window, read_image


def reference_display(ds: Dataset, index: int = 0) -> np.ndarray:
    """pydicom's own modality LUT -> VOI LUT, scaled to [0, 1], inverted for MONOCHROME1."""
    arr = apply_modality_lut(ds.pixel_array, ds)
    out = apply_voi_lut(arr, ds, index=index).astype(np.float64)
    if "VOILUTSequence" in ds:
        bits = int(ds.VOILUTSequence[index].LUTDescriptor[2])
        lo, span = 0.0, 2.0**bits - 1
    else:
        bits = int(ds.BitsStored)
        lo, hi = 0.0, 2.0**bits - 1
        slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
        lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
        span = hi - lo
    out = (out - lo) / span
    return 1.0 - out if ds.PhotometricInterpretation == "MONOCHROME1" else out


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_voi_functions_match_pydicom_reference(tmp_path, photometric, function):
    pixels = phantom(bits=12)
    ds = make_dataset(pixels, bits_stored=12, photometric=photometric,
                      WindowCenter=1500, WindowWidth=1800, VOILUTFunction=function)
    image = read_image(write(ds, tmp_path / "w.dcm"))
    shown = apply_window(image.pixels, image.meta.default_window)
    np.testing.assert_allclose(shown, reference_display(ds), atol=2e-3)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_voi_lut_sequence_matches_pydicom_reference(tmp_path, photometric):
    pixels = phantom(bits=12)
    table = (np.sqrt(np.linspace(0, 1, 3000)) * 65535).astype(np.uint16)  # a gamma-like VOI LUT
    item = Dataset()
    item.LUTDescriptor = [len(table), 500, 16]
    item.LUTData = table.tolist()
    item["LUTData"].VR = "US"
    item.LUTExplanation = "GAMMA"
    ds = make_dataset(pixels, bits_stored=12, photometric=photometric, VOILUTSequence=[item],
                      WindowCenter=2000, WindowWidth=400)
    image = read_image(write(ds, tmp_path / "lut.dcm"))
    assert [p.function for p in image.meta.window_presets] == ["LUT", "LINEAR"]
    assert image.meta.default_window.name == "GAMMA"
    shown = apply_window(image.pixels, image.meta.default_window)
    np.testing.assert_allclose(shown, reference_display(ds), atol=1e-4)


def test_all_window_presets_kept_in_order_with_names(tmp_path):
    ds = make_dataset(phantom(bits=12), bits_stored=12, WindowCenter=[2000, 1200], WindowWidth=[4000, 600],
                      WindowCenterWidthExplanation=["FULL", "DENSE"])
    presets = read_image(write(ds, tmp_path / "two.dcm")).meta.window_presets
    assert [(p.center, p.width, p.name) for p in presets] == [(2000, 4000, "FULL"), (1200, 600, "DENSE")]


def test_monochrome1_pixels_are_inverted_within_bit_depth(tmp_path):
    pixels = phantom(bits=12)
    image = read_image(write(make_dataset(pixels, bits_stored=12, photometric="MONOCHROME1"), tmp_path / "m1.dcm"))
    np.testing.assert_array_equal(image.pixels, 4095 - pixels)
    assert image.meta.photometric_interpretation == "MONOCHROME1"


def test_padding_value_and_range_become_mask(tmp_path):
    pixels = phantom(bits=12)
    pixels[:, :10] = 4095
    pixels[:, 10:12] = 4090
    one = read_image(write(make_dataset(pixels, bits_stored=12, PixelPaddingValue=4095), tmp_path / "p1.dcm"))
    np.testing.assert_array_equal(one.meta.padding_mask, pixels == 4095)
    ranged = make_dataset(pixels, bits_stored=12, PixelPaddingValue=4095, PixelPaddingRangeLimit=4090)
    two = read_image(write(ranged, tmp_path / "p2.dcm"))
    np.testing.assert_array_equal(two.meta.padding_mask, pixels >= 4090)


@pytest.mark.parametrize("bits", [12, 16])
def test_bit_depths_keep_native_dtype(tmp_path, bits):
    pixels = phantom(bits=bits)
    image = read_image(write(make_dataset(pixels, bits_stored=bits), tmp_path / f"b{bits}.dcm"))
    assert image.dtype == np.uint16 and image.meta.bits_stored == bits
    np.testing.assert_array_equal(image.pixels, pixels)


def test_rescale_gives_float_modality_values(tmp_path):
    pixels = phantom(bits=12)
    ds = make_dataset(pixels, bits_stored=12, RescaleSlope=2, RescaleIntercept=-100)
    image = read_image(write(ds, tmp_path / "r.dcm"))
    assert image.dtype == np.float32
    np.testing.assert_allclose(image.pixels, pixels * 2.0 - 100)


@pytest.mark.parametrize("syntax,bits", [
    (RLELossless, 16), (RLELossless, 12), (JPEGLosslessSV1, 12), (JPEGLosslessSV1, 16),
    (JPEGLSLossless, 12), (JPEG2000Lossless, 12), (JPEG2000Lossless, 16), (JPEGBaseline8Bit, 8),
    (JPEGExtended12Bit, 12),
])
def test_compressed_syntaxes_decode(tmp_path, syntax, bits):
    pixels = phantom(bits=bits)
    ds = compress(make_dataset(pixels, bits_stored=bits), pixels, syntax)
    image = read_image(write(ds, tmp_path / "c.dcm"))
    # baseline (quality 100) and extended (quality 95) JPEG are lossy; the rest must be exact
    tolerance = {JPEGBaseline8Bit: 2, JPEGExtended12Bit: 16}.get(syntax, 0)
    assert image.shape == pixels.shape
    assert np.abs(image.pixels.astype(int) - pixels.astype(int)).max() <= tolerance


def test_identifying_tags_absent_by_default(tmp_path):
    image = read_image(write(make_dataset(phantom()), tmp_path / "phi.dcm"))
    text = repr(image.meta) + repr(dict(image.meta.tags)) + str(image.meta.patient_key)
    for value in PHI.values():
        assert value not in text
    assert image.meta.identifying is None
    assert "PatientName" not in image.meta.tags and "StudyDate" not in image.meta.tags
    assert image.meta.tags["Modality"] == "MG"
    assert image.meta.patient_key.startswith("patient:")


def test_identifying_tags_kept_only_on_request(tmp_path):
    image = read_image(write(make_dataset(phantom()), tmp_path / "phi.dcm"), keep_identifying=True)
    assert image.meta.identifying["PatientName"] == "Doe^Jane^Q"
    assert image.meta.identifying["AccessionNumber"] == "ACC-998877"


def test_same_patient_same_key_different_patient_different_key(tmp_path):
    a = read_image(write(make_dataset(phantom(), PatientID="A1"), tmp_path / "a.dcm"))
    b = read_image(write(make_dataset(phantom(seed=1), PatientID="A1"), tmp_path / "b.dcm"))
    c = read_image(write(make_dataset(phantom(), PatientID="B2"), tmp_path / "c.dcm"))
    assert a.meta.patient_key == b.meta.patient_key != c.meta.patient_key


def test_non_mammography_modality_loads_with_warning(tmp_path):
    image = read_image(write(make_dataset(phantom(), modality="CT"), tmp_path / "ct.dcm"))
    assert any("CT" in w and "MG" in w for w in image.meta.warnings)


def test_view_and_laterality_fallbacks(tmp_path):
    code = Dataset()
    code.CodeMeaning = "medio-lateral oblique"
    ds = make_dataset(phantom(), ViewCodeSequence=[code], Laterality="R")
    del ds.ViewPosition, ds.ImageLaterality
    image = read_image(write(ds, tmp_path / "v.dcm"))
    assert (image.meta.laterality, image.meta.view) == ("R", "MLO")


def test_file_without_preamble_is_sniffed(tmp_path):
    path = tmp_path / "raw"
    make_dataset(phantom()).save_as(path, enforce_file_format=False, implicit_vr=False, little_endian=True)
    assert read_image(path).shape == (96, 80)


def test_multi_frame_is_refused(tmp_path):
    frames = np.stack([phantom(), phantom(seed=2)])
    ds = make_dataset(frames[0], bits_stored=12, NumberOfFrames=2)
    ds.PixelData = frames.tobytes()
    with pytest.raises(UnsupportedImageError, match="multi-frame.*2 frames"):
        read_image(write(ds, tmp_path / "mf.dcm"))


def test_colour_is_refused(tmp_path):
    rgb = np.zeros((20, 30, 3), dtype=np.uint8)
    with pytest.raises(UnsupportedImageError, match="colour DICOM"):
        read_image(write(make_dataset(rgb, photometric="RGB"), tmp_path / "rgb.dcm"))


def test_missing_pixel_data(tmp_path):
    ds = make_dataset(phantom())
    del ds.PixelData
    with pytest.raises(MissingPixelDataError, match="no pixel data"):
        read_image(write(ds, tmp_path / "sr.dcm"))


def test_unsupported_transfer_syntax(tmp_path):
    ds = compress(make_dataset(phantom(bits=12), bits_stored=12), phantom(bits=12), RLELossless)
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2
    with pytest.raises(UnsupportedImageError, match="MPEG2"):
        read_image(write(ds, tmp_path / "mpeg.dcm"))


def test_truncated_file_raises_typed_error(tmp_path):
    path = write(make_dataset(phantom()), tmp_path / "full.dcm")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 7, 200):
        short = tmp_path / f"cut{cut}.dcm"
        short.write_bytes(data[:cut])
        with pytest.raises(CorruptFileError):
            read_image(short)


@pytest.mark.parametrize("syntax", [None, RLELossless, JPEG2000Lossless])
def test_a_file_cut_in_its_pixel_data_says_how_much_arrived(tmp_path, syntax):
    """Native: 'pixel data truncated (N of M bytes)' with the exact counts; compressed: the bytes present
    and the least the fragments need. Cut anywhere after the header, never 'before its dataset begins'."""
    pixels = phantom(bits=12)
    ds = make_dataset(pixels, bits_stored=12)
    if syntax is not None:
        ds = compress(ds, pixels, syntax)
    path = write(ds, tmp_path / "full.dcm")
    data = path.read_bytes()
    start = data.rfind(b"\xe0\x7f\x10\x00") + 12  # explicit VR: tag, VR, reserved, length
    for cut in (start + 10, (start + len(data)) // 2, len(data) - 13):  # the last inside the last fragment
        short = tmp_path / f"cut{cut}.dcm"
        short.write_bytes(data[:cut])
        with pytest.raises(CorruptFileError) as error:
            read_image(short)
        message = str(error.value)
        assert message.count("cut") == 1 and "before its dataset begins" not in message  # named once
        if syntax is None:
            assert f"pixel data truncated ({cut - start} of {pixels.nbytes} bytes)" in message
        else:
            assert f"pixel data truncated ({cut - start} " in message


def test_truncated_compressed_frame_raises_typed_error(tmp_path):
    pixels = phantom(bits=12)
    path = write(compress(make_dataset(pixels, bits_stored=12), pixels, JPEG2000Lossless), tmp_path / "j.dcm")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - len(data) // 3])
    with pytest.raises(CorruptFileError):
        read_image(path)


def test_random_byte_damage_never_escapes_as_other_exception(tmp_path):
    pixels = phantom(bits=12)
    path = write(compress(make_dataset(pixels, bits_stored=12), pixels, RLELossless), tmp_path / "ok.dcm")
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(7)
    for trial in range(60):
        damaged = bytearray(data)
        for position in rng.integers(132, len(data), size=8):
            damaged[position] = int(rng.integers(0, 256))
        target = tmp_path / f"dmg{trial}.dcm"
        target.write_bytes(bytes(damaged))
        try:
            read_image(target)
        except ImageReadError:
            pass


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty"):
        read_image(empty)
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "nope.dcm")
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_pydicom_messages_reach_the_image_per_thread(tmp_path):
    """Non-conformant data is reported with the image that has it, even when files are read concurrently."""
    from concurrent.futures import ThreadPoolExecutor

    bad = make_dataset(phantom(bits=12), bits_stored=12)
    bad.SeriesInstanceUID = "1.2.3.abc"  # letters are not allowed in a UID
    bad_path = write(bad, tmp_path / "bad_uid.dcm")
    good_path = write(make_dataset(phantom(bits=12), bits_stored=12), tmp_path / "good.dcm")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(read_image, [bad_path, good_path] * 8))
    for index, image in enumerate(results):
        flagged = any("pydicom" in w for w in image.meta.warnings)
        assert flagged == (index % 2 == 0), (index, image.meta.warnings)


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 4095), (np.uint16, 65535)])
def test_auto_window_histogram_path_equals_numpy_percentiles(dtype, top):
    from mammodesk.io.voi import auto_window

    rng = np.random.default_rng(int(top))
    for size in (1, 2, 7, 1000, 50_000):
        values = rng.integers(0, top + 1, size).astype(dtype)
        lo, hi = np.percentile(values, [0.5, 99.5])
        hi = hi if hi > lo else lo + 1.0
        window = auto_window(values)
        assert window.center == pytest.approx((lo + hi) / 2, abs=1e-9) and window.width == pytest.approx(hi - lo, abs=1e-9)
