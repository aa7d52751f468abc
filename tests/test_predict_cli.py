"""`mammodesk predict`: batch inference over files and folders."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest
from onnx_models import build_model

from mammodesk.cli import main


def _folder(tmp_path, mias_images):
    folder = tmp_path / "images"
    (folder / "nested").mkdir(parents=True)
    for path in mias_images[:3]:
        shutil.copy(path, folder / path.name)
    shutil.copy(mias_images[3], folder / "nested" / mias_images[3].name)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x00")
    return folder


def test_predict_folder_to_csv_with_cams(tmp_path, mias_images, capsys):
    model = build_model(tmp_path / "tiny.onnx")
    out = tmp_path / "out" / "results.csv"
    code = main(["predict", str(_folder(tmp_path, mias_images)), "--model", str(model), "--out", str(out),
                 "--cams", str(tmp_path / "cams"), "--cpu"])
    assert code == 1  # one broken file
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with the mark Excel needs to read it so
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert len(rows) == 5 and sum(r["status"] == "ok" for r in rows) == 4
    assert [r["file"] for r in rows] == sorted(r["file"] for r in rows)  # file order, whatever the batching
    broken = next(r for r in rows if r["file"].endswith("broken.dcm"))
    assert broken["status"] == "failed" and broken["error"] and "broken.dcm" not in broken["error"]  # named once
    good = next(r for r in rows if r["status"] == "ok")
    assert float(good["p_normal"]) + float(good["p_abnormal"]) == pytest.approx(1.0, abs=2e-3)
    assert all(len(r[c].partition(".")[2]) <= 3 for r in rows for c in ("p_normal", "p_abnormal"))  # 3 decimals
    assert "provider" not in good and "weights_sha256" not in good  # the run's, written once beside it:
    about = json.loads((out.parent / "results.model.json").read_text())
    assert about["providers"] == ["CPUExecutionProvider"] and about["model"]["weights_sha256"] == "0" * 64
    assert about["images"] == 4 and about["failed"] == 1
    maps = sorted((tmp_path / "cams").glob("*.png"))
    assert len(maps) == 4
    heat = cv2.imread(str(maps[0]), cv2.IMREAD_UNCHANGED)
    assert heat.dtype == np.uint16 and heat.shape == (1024, 1024) and heat.max() > 60000
    err = capsys.readouterr().err
    assert "4 image(s) done, 1 failed, 1 non-image file(s) ignored" in err


def test_predict_json_with_roi_and_npy(tmp_path, mias_images):
    model = build_model(tmp_path / "roi.onnx", mode="roi", roi={"mode": "roi", "size": 64})
    out = tmp_path / "r.json"
    code = main(["predict", str(mias_images[0]), "--model", str(model), "--roi", "500,500,560,560",
                 "--out", str(out), "--cams", str(tmp_path / "c"), "--cam-format", "npy", "--cpu"])
    assert code == 0
    document = json.loads(out.read_text())
    assert document["model"]["labels"] == ["normal", "abnormal"] and document["failed"] == 0
    assert document["results"][0]["box"] == "498,498,562,562"  # the format --roi takes
    heat = np.load(next((tmp_path / "c").glob("*.npy")))
    assert heat.shape == (1024, 1024) and np.isnan(heat[0, 0]) and np.nanmax(heat) > 0.8


def test_predict_argument_errors(tmp_path, capsys):
    model = build_model(tmp_path / "tiny.onnx")
    assert main(["predict", "x.pgm", "--model", str(model), "--out", str(tmp_path / "o.txt")]) == 2
    assert main(["predict", "x.pgm", "--model", str(model), "--roi", "1,2,3", "--out", str(tmp_path / "o.csv")]) == 2
    assert main(["predict", "x.pgm", "--model", "no-such-model", "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "--out must end in .csv or .json" in err and "x0,y0,x1,y1" in err and "no model named" in err


def _header(path) -> list[str]:
    return next(csv.reader(path.open(encoding="utf-8-sig")))


def _first(path) -> dict:
    return next(csv.DictReader(path.open(encoding="utf-8-sig")))


def test_predict_writes_one_fixed_column_set(tmp_path, mias_images, capsys):
    """Whole image, --roi, a scan, failures only: the same columns for the same model, every run;
    the box written is the box --roi takes back."""
    from mammodesk.inference.batch import result_columns

    model = build_model(tmp_path / "roi.onnx", mode="roi", roi={"mode": "roi", "size": 64, "spacing_mm": 0.2})
    expected = result_columns(["normal", "abnormal"])
    runs = {"roi": ["--roi", "500,500,560,560"], "scan": [], "none": []}
    headers = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.csv"
        paths = [str(tmp_path / "missing.pgm")] if name == "none" else [str(mias_images[0])]
        main(["predict", *paths, "--model", str(model), "--out", str(out), "--cpu", *extra])
        headers[name] = _header(out)
    assert all(h == expected for h in headers.values()), headers
    roi_row = _first(tmp_path / "roi.csv")
    assert roi_row["region"] == "roi" and roi_row["windows"] == "1" and roi_row["spacing_source"] == "file"
    again = tmp_path / "again.csv"
    assert main(["predict", str(mias_images[0]), "--model", str(model), "--out", str(again), "--cpu",
                 "--roi", roi_row["box"]]) == 0
    assert _first(again)["box"] == roi_row["box"]  # out, in, out: the same box
    scan_row = _first(tmp_path / "scan.csv")
    assert scan_row["region"] == "scan: most positive window" and int(scan_row["windows"]) > 1
    whole = build_model(tmp_path / "whole.onnx")
    main(["predict", str(mias_images[0]), "--model", str(whole), "--out", str(tmp_path / "w.csv"), "--cpu"])
    assert _header(tmp_path / "w.csv") == expected
    assert _first(tmp_path / "w.csv")["region"] == "whole image"
    assert "CUDA requested" not in capsys.readouterr().err  # nobody asked for the GPU


def test_predict_assumes_a_spacing_only_when_asked_and_the_file_has_none(tmp_path, mias_images):
    model = build_model(tmp_path / "roi.onnx", mode="roi", roi={"mode": "roi", "size": 64, "spacing_mm": 0.2})
    png = tmp_path / "film.png"  # a PNG states no spacing, like a CBIS-DDSM DICOM
    cv2.imwrite(str(png), cv2.imread(str(mias_images[0]), cv2.IMREAD_UNCHANGED))
    plain, assumed = tmp_path / "plain.csv", tmp_path / "assumed.csv"
    roi = ["--roi", "500,500,510,510"]
    main(["predict", str(png), "--model", str(model), "--out", str(plain), "--cpu", *roi])
    main(["predict", str(png), "--model", str(model), "--out", str(assumed), "--cpu", *roi, "--assume-spacing", "0.1"])
    plain_row, assumed_row = _first(plain), _first(assumed)
    assert plain_row["spacing_source"] == "unknown" and "no pixel spacing" in plain_row["notes"]
    assert assumed_row["spacing_source"] == "assumed" and assumed_row["spacing_mm"] == "0.1" and not assumed_row["notes"]
    width = lambda row: float(row["box"].split(",")[2]) - float(row["box"].split(",")[0])  # noqa: E731
    assert width(plain_row) == 64 and width(assumed_row) == 128  # 64 px at 0.2 mm = 12.8 mm = 128 px at 0.1 mm
    mias = tmp_path / "mias.csv"  # a spacing the file states wins over the assumption
    main(["predict", str(mias_images[0]), "--model", str(model), "--out", str(mias), "--cpu", *roi,
          "--assume-spacing", "0.1"])
    assert _first(mias)["spacing_source"] == "file"


def test_ctrl_c_stops_predict_cleanly_and_says_how_to_continue(tmp_path, mias_images, capsys, monkeypatch):
    from mammodesk.inference import batch

    model = build_model(tmp_path / "tiny.onnx")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "run_batch", interrupted)
    code = main(["predict", str(mias_images[0]), "--model", str(model), "--out", str(tmp_path / "a.csv"), "--cpu"])
    said = capsys.readouterr().err
    assert code == 130 and "stopped (Ctrl+C)" in said and "--resume continues" in said and "Traceback" not in said
