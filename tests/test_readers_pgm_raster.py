"""PGM (MIAS) and PNG/TIFF/JPEG readers on files written here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mammodesk.errors import CorruptFileError, UnsupportedFormatError
from mammodesk.io import read_image


def write_p5(path, pixels: np.ndarray, maxval: int, comment: bool = True):
    header = b"P5\n" + (b"# written by a test\n" if comment else b"")
    header += f"{pixels.shape[1]} {pixels.shape[0]}\n{maxval}\n".encode()
    body = pixels.astype(">u2" if maxval > 255 else "u1").tobytes()
    path.write_bytes(header + body)
    return path


def test_p5_8bit(tmp_path):
    pixels = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    image = read_image(write_p5(tmp_path / "a.pgm", pixels, 255))
    assert image.dtype == np.uint8 and image.meta.bits_stored == 8
    np.testing.assert_array_equal(image.pixels, pixels)


def test_p5_16bit_is_big_endian(tmp_path):
    pixels = (np.arange(12 * 10, dtype=np.uint16) * 500).reshape(12, 10)
    image = read_image(write_p5(tmp_path / "b.pgm", pixels, 65535))
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels, pixels)  # wrong byte order would swap 0x01F4 -> 0xF401


def test_p5_12bit_maxval_sets_bits_stored(tmp_path):
    pixels = np.full((4, 4), 4000, dtype=np.uint16)
    assert read_image(write_p5(tmp_path / "c.pgm", pixels, 4095)).meta.bits_stored == 12


def test_p2_plain_with_comments(tmp_path):
    path = tmp_path / "p2.pgm"
    path.write_text("P2\n# comment\n3 2 # inline\n15\n0 1 2\n13 14 15\n")
    np.testing.assert_array_equal(read_image(path).pixels, [[0, 1, 2], [13, 14, 15]])


def test_truncated_pgm(tmp_path):
    path = write_p5(tmp_path / "t.pgm", np.zeros((100, 100), np.uint8), 255)
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(CorruptFileError, match="truncated"):
        read_image(path)


def test_bad_pgm_header(tmp_path):
    path = tmp_path / "h.pgm"
    path.write_bytes(b"P5\n10 ten\n255\n" + bytes(100))
    with pytest.raises(CorruptFileError, match="not a number"):
        read_image(path)


def test_mias_name_gives_laterality_and_patient(tmp_path):
    pixels = np.zeros((8, 8), np.uint8)
    left = read_image(write_p5(tmp_path / "mdb012.pgm", pixels, 255))
    right = read_image(write_p5(tmp_path / "mdb011.pgm", pixels, 255))
    assert (left.meta.laterality, right.meta.laterality) == ("L", "R")
    assert left.meta.patient_key == right.meta.patient_key == "mias:006"


@pytest.mark.parametrize("suffix,dtype", [(".png", np.uint8), (".png", np.uint16), (".tif", np.uint16),
                                          (".tif", np.float32)])
def test_png_tiff_keep_depth(tmp_path, suffix, dtype):
    rng = np.random.default_rng(1)
    pixels = (rng.random((30, 20)) * (1.0 if dtype == np.float32 else np.iinfo(dtype).max)).astype(dtype)
    path = tmp_path / f"img{suffix}"
    assert cv2.imwrite(str(path), pixels)
    image = read_image(path)
    assert image.dtype == dtype and image.meta.format in ("PNG", "TIFF")
    np.testing.assert_array_equal(image.pixels, pixels)


def test_colour_png_converted_with_warning(tmp_path):
    colour = np.zeros((10, 10, 3), np.uint8)
    colour[..., 2] = 200  # red in OpenCV's BGR
    path = tmp_path / "colour.png"
    cv2.imwrite(str(path), colour)
    image = read_image(path)
    assert image.pixels.ndim == 2 and any("colour" in w for w in image.meta.warnings)


def test_grey_stored_as_rgb_is_not_warned(tmp_path):
    grey = np.full((10, 10, 3), 77, np.uint8)
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), grey)
    image = read_image(path)
    assert image.meta.warnings == () and int(image.pixels[0, 0]) == 77


def test_jpeg_and_extension_is_ignored(tmp_path):
    path = tmp_path / "actually_jpeg.png"
    ok, data = cv2.imencode(".jpg", np.full((16, 16), 100, np.uint8))
    path.write_bytes(data.tobytes())
    assert read_image(path).meta.format == "JPEG"


def test_corrupt_png(tmp_path):
    path = tmp_path / "bad.png"
    cv2.imwrite(str(path), np.zeros((50, 50), np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CorruptFileError, match="PNG"):
        read_image(path)


def test_unknown_format_lists_supported(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="DICOM.*PGM.*PNG"):
        read_image(path)


def test_ppm_colour_netpbm_is_refused(tmp_path):
    path = tmp_path / "c.ppm"
    path.write_bytes(b"P6\n1 1\n255\n\x00\x00\x00")
    with pytest.raises(UnsupportedFormatError):
        read_image(path)


def test_a_new_format_is_one_registration_and_every_list_follows(tmp_path):
    """What a format module does (`io/formats/`): register an ImageFormat. Reading, the folder listing and the Open
    dialog's filter then know it; nothing else is touched."""
    from mammodesk.io import Image, ImageMeta, ImageFormat, image_formats, register_format, supported_suffixes
    from mammodesk.io import registry
    from mammodesk.qt.viewer.opening import file_filter
    from mammodesk.services.loading import folder_files

    def read_raw(path, *, keep_identifying=False):
        data = np.frombuffer(path.read_bytes()[4:], np.uint8).reshape(8, 8)
        return Image(data.copy(), ImageMeta(source_path=path, bits_stored=8))

    reader = register_format(ImageFormat("raw8", "RAW8 test", lambda head: head.startswith(b"RAW8"), read_raw,
                                    suffixes=(".raw8",)))
    try:
        (tmp_path / "a.raw8").write_bytes(b"RAW8" + bytes(range(64)))
        (tmp_path / "b.other").write_bytes(b"x")
        assert ".raw8" in supported_suffixes() and "*.raw8" in file_filter()
        assert [p.rsplit("/", 1)[-1] for p in folder_files(tmp_path)] == ["a.raw8"]
        assert read_image(tmp_path / "a.raw8").pixels[7, 7] == 63
        assert image_formats()[-1] is reader
    finally:
        registry._FORMATS.remove(reader)
    assert ".raw8" not in supported_suffixes()


def test_every_built_in_format_lives_in_the_formats_package():
    from mammodesk.io import image_formats

    assert [r.name for r in image_formats()][:3] == ["dicom", "pgm", "raster"]
    assert all(r.read.__module__.startswith("mammodesk.io.formats.") for r in image_formats())
