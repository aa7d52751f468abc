"""Training data: every source, every task, the builders, patient-level splits and the leakage check."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from train_fixtures import cbis_folder, class_folders, inbreast_folder, mias_folder, mias_tarball  # noqa: E402

from mammodesk.preprocessing import PipelineSpec  # noqa: E402
from mammodesk_train.data.builders import random_patches, roi_crops, whole_images  # noqa: E402
from mammodesk_train.data.sources import DataError, load_source  # noqa: E402
from mammodesk_train.data.tasks import get_task  # noqa: E402
from mammodesk_train.splits import LeakageError, check_leakage, patient_holdout, patient_kfold  # noqa: E402

SPEC = PipelineSpec([{"op": "resize", "params": {"width": 16, "height": 16}}, {"op": "normalise"}])


def _labels(records, task_name):
    task = get_task(task_name, records)
    return {r.image_id: (None if (v := task.label(r, None)) is None else task.classes[v]) for r in records}


def test_mias_folder_and_tarball(tmp_path):
    folder = load_source(f"mias:{mias_folder(tmp_path / 'a')}")
    archive = mias_tarball(tmp_path / "b")
    cache = tmp_path / "cache"
    tarball = load_source(f"mias:{archive}", cache_dir=cache)
    assert [r.image_id for r in folder] == [r.image_id for r in tarball]
    again = load_source(f"mias:{archive}", cache_dir=cache)  # unpacked once, then reused
    assert [p.name for p in cache.iterdir()] == [tarball[0].path.parents[1].name] and again[0].path == tarball[0].path
    assert len(folder) == 16 and folder[0].patient_key == folder[1].patient_key == "mias:001"
    labels = _labels(folder, "density")
    assert labels["mdb001"] == "G" and labels["mdb003"] == "D" and labels["mdb005"] == "F"
    assert _labels(folder, "normal_abnormal")["mdb002"] == "normal"
    assert _labels(folder, "benign_malignant")["mdb003"] == "malignant"
    assert _labels(folder, "benign_malignant")["mdb002"] is None
    assert _labels(folder, "normal_benign_malignant")["mdb002"] == "normal"
    assert _labels(folder, "normal_benign_malignant")["mdb009"] == "malignant"


def test_cbis_source(tmp_path):
    records = load_source(f"cbis:{cbis_folder(tmp_path)}")
    assert len(records) == 4 and len({r.patient_key for r in records}) == 4
    assert _labels(records, "benign_malignant") == {
        "Mass-Training_P_00000_LEFT_CC": "malignant", "Mass-Training_P_00001_RIGHT_MLO": "benign",
        "Mass-Training_P_00002_LEFT_MLO": "benign", "Mass-Training_P_00003_RIGHT_CC": "malignant"}
    assert _labels(records, "density_acr")["Mass-Training_P_00002_LEFT_MLO"] == "C"
    assert records[0].load().shape == (64, 64)


def test_inbreast_source_and_birads_rule(tmp_path):
    records = load_source(f"inbreast:{inbreast_folder(tmp_path)}")
    assert len(records) == 6 and len({r.patient_key for r in records}) == 3
    rule = _labels(records, "malignant_birads")
    assert [rule[str(22678600 + i)] for i in range(6)] == ["non_malignant", "non_malignant", "malignant",
                                                            "malignant", None, "malignant"]
    assert _labels(records, "density_acr")["22678603"] == "D"
    with_roi = next(r for r in records if r.image_id == "22678602")
    assert with_roi.labels.located_findings[0].shape.contains(14, 32)


def test_folder_per_class(tmp_path):
    records = load_source(f"folder:{class_folders(tmp_path)}")
    assert len(records) == 8
    assert _labels(records, "folder")["case0_malignant"] == "malignant"
    assert set(_labels(records, "normal_abnormal").values()) == {"abnormal"}  # benign and malignant: abnormal
    normal = tmp_path / "classes" / "normal"
    (tmp_path / "classes" / "benign").rename(normal)  # a normal folder: its images are normal, not guessed
    labels = _labels(load_source(f"folder:{tmp_path / 'classes'}"), "normal_abnormal")
    assert labels["case0_benign"] == "normal" and labels["case0_malignant"] == "abnormal"
    with pytest.raises(DataError, match="is a file"):
        load_source(f"folder:{next(normal.iterdir())}")


def test_lesion5_labels_and_arch_excluded(tmp_path):
    records = load_source(f"mias:{mias_folder(tmp_path)}")
    task = get_task("lesion5")
    by_id = {r.image_id: r for r in records}
    label = lambda ref: task.label(by_id[ref], by_id[ref].labels.findings[0])  # noqa: E731
    assert task.classes[label("mdb001")] == "benign_mass"
    assert task.classes[label("mdb005")] == "malignant_calcification"
    assert label("mdb013") is None  # architectural distortion: neither mass nor calcification
    assert task.classes[label("mdb002")] == "normal"


def test_mass_normal_labels_masses_of_any_pathology_and_nothing_else(tmp_path):
    records = load_source(f"mias:{mias_folder(tmp_path)}")
    task = get_task("mass_normal")
    by_id = {r.image_id: r for r in records}
    label = lambda ref: task.label(by_id[ref], by_id[ref].labels.findings[0])  # noqa: E731
    assert [task.classes[label(ref)] for ref in ("mdb001", "mdb003", "mdb007", "mdb002")] == \
        ["mass", "mass", "mass", "normal"]  # circumscribed benign, spiculated malignant, ill-defined; normal
    assert label("mdb005") is None and label("mdb013") is None  # a calcification, a distortion: neither
    assert task.label(by_id["mdb001"], None) is None  # ROIs only


@pytest.mark.parametrize("bad,message", [("mias", "KIND:PATH"), ("xray:/tmp", "unknown data source"),
                                         ("mias:/no/such/folder", "not found")])
def test_bad_sources(bad, message):
    with pytest.raises(DataError, match=message):
        load_source(bad)


def test_unknown_task():
    with pytest.raises(ValueError, match="did you mean 'density'"):
        get_task("densty")


def test_builders(tmp_path):
    records = load_source(f"mias:{mias_folder(tmp_path)}")
    whole = whole_images(records, get_task("density"), SPEC)
    assert whole.x.shape == (16, 1, 16, 16) and whole.x.dtype == np.float32 and len(whole.hashes) == 16
    rois = roi_crops(records, get_task("normal_abnormal"), SPEC, size=20, normals_per_image=2, seed=1)
    abnormal = sum(1 for r in records if not r.labels.is_normal)
    assert (rois.y == 1).sum() == abnormal and 0 < (rois.y == 0).sum() <= 2 * (16 - abnormal)
    patches = random_patches(rois, 8, {0: 2, 1: 5}, seed=0)
    assert patches.x.shape[1:] == (1, 8, 8)
    assert (patches.y == 1).sum() == 5 * (rois.y == 1).sum() and (patches.y == 0).sum() == 2 * (rois.y == 0).sum()
    np.testing.assert_array_equal(np.unique(patches.record_index), np.unique(rois.record_index))


def test_patient_kfold_keeps_patients_together_and_is_seeded():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"p{i}" for i in range(40)], 2)
    labels = np.repeat(rng.integers(0, 2, 40), 2)
    folds = patient_kfold(labels, groups, 5, seed=3)
    seen = np.concatenate([f.test for f in folds])
    assert sorted(seen.tolist()) == list(range(80))
    for fold in folds:
        assert not set(groups[fold.train]) & set(groups[fold.test])
        assert abs(labels[fold.test].mean() - labels.mean()) < 0.2  # stratified
    again = patient_kfold(labels, groups, 5, seed=3)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(folds, again))
    holdout = patient_holdout(labels, groups, 0.2, seed=0)
    assert 12 <= len(holdout.test) <= 20


def test_leakage_check_catches_patients_and_identical_images(tmp_path):
    records = load_source(f"mias:{mias_folder(tmp_path)}")
    assert check_leakage(records, [0, 1, 2, 3], [4, 5])["ok"]
    with pytest.raises(LeakageError, match="1 patient"):
        check_leakage(records, [0, 2, 3], [1, 4])  # mdb001 and mdb002 are one woman
    hashes = {i: f"h{i}" for i in range(16)}
    hashes[6] = hashes[0]  # the same pixels under another name
    with pytest.raises(LeakageError, match="1 identical image"):
        check_leakage(records, [0, 1], [6, 7], hashes)


def test_cbis_roi_masks_give_roi_crops(tmp_path):
    """CBIS-DDSM findings are mask files (relative to the CBIS root): ROI builders read them;
    a finding whose mask is missing is skipped, not a crash."""
    import cv2
    from dicom_factory import make_dataset, write

    from mammodesk_train.data.tasks import TASKS

    folder = cbis_folder(tmp_path)
    image_id = "Mass-Training_P_00000_LEFT_CC"
    mask = np.zeros((64, 64), np.uint8)
    cv2.circle(mask, (40, 20), 6, 255, -1)
    (folder / f"{image_id}_1" / "x").mkdir(parents=True)
    write(make_dataset(mask, phi=False), folder / f"{image_id}_1" / "x" / "000001.dcm")
    records = load_source(f"cbis:{folder}")
    rois = roi_crops(records, TASKS["benign_malignant"], PipelineSpec([]), 16, normals_per_image=0)
    assert len(rois) == 1 and rois.y[0] == 1  # the malignant case with a mask; three masks are missing
    assert records[rois.record_index[0]].image_id == image_id
