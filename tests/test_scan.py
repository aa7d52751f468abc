"""Breast scans: batched windows give the per-window answers exactly, heat maps
are computed only where shown, and `mammodesk predict` scans headless."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from onnx_models import build_model

from mammodesk.cli import main as mammodesk_main
from mammodesk.inference import ModelRunner
from scan_reference import scan_per_window

from mammodesk.inference.scan import scan
from mammodesk.io import read_image

PATCH_ROI = {"mode": "patches", "size": 120, "patch_size": 48, "patches": 9, "seed": 0, "spacing_mm": 0.2}
PATCH_SPEC = [{"op": "median", "params": {"ksize": 3}}, {"op": "resize", "params": {"width": 96, "height": 96}},
              {"op": "normalise", "params": {"mode": "range"}}, {"op": "to_rgb"}]


@pytest.fixture(scope="module")
def mdb028(mias_dir):
    return read_image(mias_dir / "mdb028.pgm")


@pytest.mark.parametrize("kind", ["roi", "patches"])
def test_batched_scan_equals_the_per_window_path(tmp_path, mdb028, kind):
    if kind == "patches":
        path = build_model(tmp_path / "patch.onnx", mode="patches", roi=PATCH_ROI, size=48, channels=3,
                           spec=PATCH_SPEC, threshold=0.45, embedding=True)
    else:
        path = build_model(tmp_path / "roi.onnx", mode="roi", roi={"mode": "roi", "size": 120, "spacing_mm": 0.2},
                           size=120, threshold=0.45)
    runner = ModelRunner(path, prefer_gpu=False)
    fast, reference = scan(mdb028, runner), scan_per_window(mdb028, runner)
    assert len(fast.predictions) == len(reference.predictions) > 20
    for a, b in zip(fast.predictions, reference.predictions):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)
        assert a.roi_box == b.roi_box
        if kind == "patches":
            assert a.votes.tolist() == b.votes.tolist()
    np.testing.assert_allclose(np.nan_to_num(fast.map.values), np.nan_to_num(reference.map.values), atol=1e-4)
    top = fast.ranked()[0]
    assert fast.ranked() == reference.ranked()
    shown = [i for i, p in enumerate(fast.predictions) if p.heatmaps is not None]
    assert shown == [top]  # heat maps only where they are shown


def test_a_scan_can_be_stopped(tmp_path, mdb028):
    path = build_model(tmp_path / "patch.onnx", mode="patches", roi=PATCH_ROI, size=48, channels=3, spec=PATCH_SPEC)
    runner = ModelRunner(path, prefer_gpu=False)
    calls = []
    with pytest.raises(InterruptedError):
        scan(mdb028, runner, should_stop=lambda: calls.append(1) or len(calls) > 1)


def test_predict_scans_each_breast_headless(tmp_path, mias_dir, capsys):
    path = build_model(tmp_path / "scanner.onnx", mode="patches", roi=PATCH_ROI, size=48, channels=3,
                       spec=PATCH_SPEC, threshold=0.45)
    images = tmp_path / "images"
    images.mkdir()
    for name in ("mdb028.pgm", "mdb002.pgm"):
        (images / name).write_bytes((mias_dir / name).read_bytes())
    out = tmp_path / "scan.csv"
    code = mammodesk_main(["predict", str(images), "--model", str(path), "--out", str(out), "--cams",
                           str(tmp_path / "maps"), "--cpu"])
    assert code == 0 and "2 image(s) done" in capsys.readouterr().err
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for row in rows:
        assert row["region"] == "scan: most positive window" and int(row["windows"]) > 20
        assert len(row["box"].split(",")) == 4 and 0 <= float(row["p_abnormal"]) <= 1
        assert row["domain"] and row["answer"]
    maps = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert "mdb028.scanner.scan.abnormal.png" in maps and any(".combined." in m for m in maps)


def _chest_wall_reach(image, boxes) -> float:
    """How far the windows fall short of the tissue at the chest wall, in pixels (0: flush with it)."""
    from mammodesk.anatomy import read_anatomy
    from mammodesk.inference.scan import tissue_mask

    mask = tissue_mask(image)
    xs = np.flatnonzero(mask.any(axis=0))
    if read_anatomy(image).chest_wall == "right":
        return float(xs.max() + 1 - boxes[:, 2].max())
    return float(boxes[:, 0].min() - xs.min())


def test_windows_reach_the_chest_wall_and_skip_the_film_border(tmp_path, cbis_dicoms, mias_dir):
    """CBIS-DDSM film has bright edge strips and a frame that used to join the breast to every border,
    so the mask's box was the whole film and the last windows stopped short of the chest wall."""
    from mammodesk.inference.scan import scan_windows
    from mammodesk.preprocessing.spatial import breast_mask

    path = build_model(tmp_path / "roi.onnx", mode="roi", roi={"mode": "roi", "size": 120, "spacing_mm": 0.2},
                       size=120, threshold=0.45)
    runner = ModelRunner(path, prefer_gpu=False)
    for dicom in cbis_dicoms:
        image = read_image(dicom)
        image = type(image)(image.pixels, __import__("dataclasses").replace(image.meta, pixel_spacing_mm=(0.05, 0.05)))
        ys, xs = np.nonzero(breast_mask(image.pixels))
        rows, cols = image.shape
        assert xs.max() - xs.min() < 0.8 * cols, dicom.name  # the far side's air and border are not breast
        assert ys.min() > 0 or ys.max() < rows - 1 or image.meta.view == "MLO", dicom.name
        boxes = scan_windows(image, runner)
        assert _chest_wall_reach(image, boxes) <= 1.0, dicom.name
    for name in ("mdb001.pgm", "mdb028.pgm", "mdb050.pgm", "mdb120.pgm"):
        image = read_image(mias_dir / name)
        assert _chest_wall_reach(image, scan_windows(image, runner)) <= 1.0, name


def test_the_pectoral_muscle_is_found_where_seen_and_never_guessed(mias_images):
    """MIAS (all MLO): where a muscle is reported it starts at the top of the chest wall, is brighter than
    the rest of the breast and narrows downwards; where none is seen, None. Found on a fair share."""
    from mammodesk.anatomy import read_anatomy
    from mammodesk.preprocessing.pectoral import pectoral_mask
    from mammodesk.preprocessing.spatial import breast_mask

    found = 0
    for path in mias_images[::3]:
        image = read_image(path)
        breast = breast_mask(image.pixels)
        wall = read_anatomy(image).chest_wall
        muscle = pectoral_mask(image.pixels, breast, wall)
        if muscle is None:
            continue
        found += 1
        pixels = image.pixels.astype(float)
        assert pixels[muscle].mean() > pixels[breast & ~muscle].mean(), path.name
        rows = np.flatnonzero(muscle.any(axis=1))
        widths = muscle.sum(axis=1)[rows]
        assert rows.min() < 0.1 * image.shape[0] and widths[: len(widths) // 4].mean() > widths[-len(widths) // 4:].mean()
        columns, breast_columns = np.flatnonzero(muscle.any(axis=0)), np.flatnonzero(breast.any(axis=0))
        gap = breast_columns.max() - columns.max() if wall == "right" else columns.min() - breast_columns.min()
        assert gap <= 0.01 * image.shape[1], path.name  # against the chest wall (found on a 256-row copy)
    assert found >= 0.2 * len(mias_images[::3])
