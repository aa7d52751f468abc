"""One labelled data list for every command: the manifest (CSV and JSON), the app's own labels, folder names
mapped to tasks, and patients grouped for real (a column, the DICOM PatientID, the file name), checked before
any image is read."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dicom_factory import make_dataset, write  # noqa: E402
from train_fixtures import breast  # noqa: E402

from mammodesk_train.data.patients import grouping  # noqa: E402
from mammodesk_train.data.sources import DataError, load_source  # noqa: E402
from mammodesk_train.data.tasks import check_task, get_task  # noqa: E402
from mammodesk_train.splits import patient_kfold  # noqa: E402


def _png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), breast(seed))
    return path


def _manifest(tmp_path, text: str, name="list.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_manifest_lists_images_with_patients_findings_and_boxes(tmp_path, capsys):
    for name in ("a_L_CC", "a_R_CC", "b_L_CC", "plain"):
        _png(tmp_path / "img" / f"{name}.png")
    path = _manifest(tmp_path, "path,patient,laterality,view,label,finding,box,spacing\n"
                               "img/a_L_CC.png,W1,L,CC,malignant,mass,10 12 30 40,0.1\n"
                               "img/a_L_CC.png,W1,L,CC,benign,calcification,,0.1\n"
                               "img/a_R_CC.png,W1,R,CC,normal,,,\n"
                               "img/b_L_CC.png,W2,left,cc,abnormal,,,\n"
                               "img/missing.png,W3,L,CC,normal,,,\n"
                               "img/plain.png,W4,R,MLO,negative,,,\n")
    records = load_source(f"manifest:{path}")
    assert [r.image_id for r in records] == ["a_L_CC", "a_R_CC", "b_L_CC", "plain"]
    first = records[0]
    assert first.patient_key == records[1].patient_key != records[2].patient_key and first.patient_from == "given"
    assert len(first.labels.findings) == 2 and first.labels.findings[0].shape.bbox() == (10, 12, 30, 40)
    assert first.assumed_spacing_mm == 0.1 and (records[2].labels.laterality, records[2].labels.view) == ("L", "CC")
    task = get_task("normal_abnormal")
    assert task.labels_for(records) == [1, 0, 1, 0]
    assert get_task("benign_malignant").labels_for(records)[0] == 1  # malignant wins over benign
    stated = records[3].load().meta  # the file's name says nothing; the list's columns fill it
    assert (stated.laterality, stated.view) == ("R", "MLO")
    said = capsys.readouterr().err
    assert "4 images of 3 patients" in said and "skipped 1 file not found (e.g. img/missing.png)" in said


def test_a_json_manifest_reads_like_the_csv(tmp_path):
    _png(tmp_path / "x.png")
    path = _manifest(tmp_path, json.dumps({"images": [{"path": "x.png", "label": "normal", "patient": 7}]}),
                     "list.json")
    (record,) = load_source(f"manifest:{path}")
    assert record.labels.is_normal and record.patient_from == "given"


@pytest.mark.parametrize("row,where", [
    ("x.png,maybe,,", "row 2, column label: 'maybe' is not a label"),
    ("x.png,benign,1 2 3,", "row 2, column box"),
    ("x.png,normal,,Z", "row 2, column density"),
    (",normal,,", "row 2, column path: empty"),
])
def test_a_malformed_row_is_named_by_row_and_column(tmp_path, row, where):
    _png(tmp_path / "x.png")
    with pytest.raises(DataError, match=where):
        load_source("manifest:" + str(_manifest(tmp_path, "path,label,box,density\n" + row + "\n")))


def test_one_image_with_two_sides_or_normal_and_abnormal_is_refused(tmp_path):
    _png(tmp_path / "x.png")
    with pytest.raises(DataError, match="row 3, column laterality: x.png has laterality L and R"):
        load_source("manifest:" + str(_manifest(tmp_path, "path,label,laterality\nx.png,benign,L\nx.png,benign,R\n")))
    with pytest.raises(DataError, match="normal in one row and abnormal in another"):
        load_source("manifest:" + str(_manifest(tmp_path, "path,label\nx.png,benign\nx.png,normal\n")))


def test_labels_that_do_not_map_to_the_task_are_refused_up_front(tmp_path):
    lines = "".join(f"p{i}.png,{'AB'[i % 2]}\n" for i in range(12))
    for i in range(12):
        _png(tmp_path / f"p{i}.png", i)
    records = load_source("manifest:" + str(_manifest(tmp_path, "path,density\n" + lines)))
    with pytest.raises(DataError, match="A in 6, B in 6, C in 0, D in 0"):  # a 4-class task needs all 4
        check_task(records, get_task("density_acr"), 5)
    with pytest.raises(DataError) as refused:
        check_task(records, get_task("normal_abnormal"), 5)
    message = str(refused.value)
    assert "normal in 0, abnormal in 0" in message and "density A (6)" in message and "BI-RADS 1 vs 3-6" in message


def test_a_patient_id_shared_by_two_dicoms_keeps_them_in_one_fold(tmp_path):
    root = tmp_path / "data"
    for i in range(12):
        side = "normal" if i % 2 else "abnormal"
        folder = root / side
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (breast(i) // 16).astype(np.uint16)
        write(make_dataset(pixels, PatientID=f"WOMAN{i // 4}", phi=False), folder / f"scan{i}.dcm")
    records = load_source(f"folder:{root}")
    assert {r.patient_from for r in records} == {"PatientID"} and len({r.patient_key for r in records}) == 3
    by_patient = {}
    labels = check_task(records, get_task("normal_abnormal"), 3)
    for fold in patient_kfold(labels, [r.patient_key for r in records], 3, seed=0):
        for index in fold.test:
            by_patient.setdefault(records[index].patient_key, set()).add(fold.index)
    assert all(len(folds) == 1 for folds in by_patient.values())
    from mammodesk.io import read_image

    assert records[0].patient_key == read_image(records[0].path).meta.patient_key  # the app's key, too


def test_file_names_group_a_womans_views_and_unknown_patients_are_said(tmp_path):
    for name in ("PAT0001_L_MLO", "PAT0001_R_MLO", "PAT0002_L_CC", "scan7"):
        _png(tmp_path / "data" / "abnormal" / f"{name}.png")
    records = load_source(f"folder:{tmp_path / 'data'}")
    keys = {r.image_id: r.patient_key for r in records}
    assert keys["PAT0001_L_MLO"] == keys["PAT0001_R_MLO"] != keys["PAT0002_L_CC"]
    said = grouping([r.patient_from for r in records])
    assert not said["patient_level"] and said["statement"].startswith("patients unknown for 1 of 4 images")
    assert grouping(["file", "file"])["statement"] == "patients unknown: split by image; figures may be optimistic"


def test_folder_names_map_to_tasks_and_normal_is_never_the_positive_class(tmp_path):
    for folder in ("abnormal", "normal"):
        _png(tmp_path / "d" / folder / "x.png")
    records = load_source(f"folder:{tmp_path / 'd'}")
    assert get_task("folder", records).classes == ("normal", "abnormal")
    for folder in "ABCD":
        _png(tmp_path / "density" / folder / "y.png")
    records = load_source(f"folder:{tmp_path / 'density'}")
    assert get_task("density_acr").labels_for(records) == [0, 1, 2, 3]
    assert get_task("normal_abnormal").labels_for(records) == [None] * 4


def test_birads_without_findings_labels_normal_vs_abnormal(tmp_path):
    for i in range(4):
        _png(tmp_path / f"b{i}.png")
    path = _manifest(tmp_path, "path,birads\nb0.png,1\nb1.png,2\nb2.png,5\nb3.png,0\n")
    assert get_task("normal_abnormal").labels_for(load_source(f"manifest:{path}")) == [0, None, 1, None]


def test_labels_drawn_in_the_app_are_a_data_source(tmp_path):
    from mammodesk.annotations import ImageLabels
    from mammodesk.annotations.exports import ExportImage, write_csv
    from mammodesk.annotations.model import Finding, FindingKind, Pathology, Rect
    from mammodesk.annotations.sidecar import sidecar_bytes

    folder = tmp_path / "study"
    drawn = {"m1_L_CC": ImageLabels("m1_L_CC", (Finding(FindingKind.MASS, Pathology.MALIGNANT, Rect(5, 5, 20, 20)),)),
             "m1_R_CC": ImageLabels("m1_R_CC", (Finding(FindingKind.NORMAL),)),
             "m2_L_CC": ImageLabels("m2_L_CC")}
    for name, labels in drawn.items():
        image = _png(folder / f"{name}.png")
        (folder / f"{name}.png.mammodesk.json").write_bytes(
            sidecar_bytes(labels, file_name=image.name, sha256="0" * 64, shape=(96, 80), revision=1))
    records = load_source(f"labels:{folder}")
    assert [r.image_id for r in records] == ["m1_L_CC", "m1_R_CC"]  # m2 holds no labels yet
    assert get_task("normal_abnormal").labels_for(records) == [1, 0]
    assert records[0].patient_key == records[1].patient_key and records[0].labels.located_findings
    exported = tmp_path / "study" / "findings.csv"
    write_csv([ExportImage(labels, f"{name}.png", 96, 80, "0" * 64) for name, labels in drawn.items()], exported)
    from_csv = load_source(f"manifest:{exported}")
    assert [r.image_id for r in from_csv] == ["m1_L_CC", "m1_R_CC"]
    assert get_task("normal_abnormal").labels_for(from_csv) == [1, 0]


def test_a_file_outside_the_manifest_folder_and_cbis_dicoms_keep_their_patients(tmp_path):
    elsewhere = _png(tmp_path / "elsewhere" / "scan1.png")
    (tmp_path / "lists").mkdir()
    path = _manifest(tmp_path / "lists", f"path,label\n{elsewhere},normal\n")  # an absolute path, another folder
    (record,) = load_source(f"manifest:{path}")
    assert record.patient_from == "file" and record.path == elsewhere
    root = tmp_path / "cbis" / "abnormal"
    root.mkdir(parents=True)
    for view in ("CC", "MLO"):  # CBIS-DDSM keeps the view in PatientID: one woman, as the app keys her
        pixels = (breast(1) // 16).astype(np.uint16)
        write(make_dataset(pixels, PatientID=f"Mass-Test_P_00173_LEFT_{view}", phi=False), root / f"1-{view}.dcm")
    records = load_source(f"folder:{tmp_path / 'cbis'}")
    from mammodesk.io import read_image

    assert records[0].patient_key == records[1].patient_key == read_image(records[0].path).meta.patient_key
