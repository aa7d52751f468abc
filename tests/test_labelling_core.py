"""ROI labelling without a window: geometry, the undo/redo history, sidecar
persistence (atomic writes, corrupt files kept aside, full disks), autosave,
the taxonomy, and every export format's round trip, including the PHI check."""

from __future__ import annotations

import csv
import dataclasses
import errno
import json
import math
import time

import cv2
import numpy as np
import pytest
from dicom_factory import PHI, make_dataset, phantom, write

from mammodesk.annotations import exports, geometry
from mammodesk.annotations.dicom_sr import read_sr, write_sr
from mammodesk.annotations.model import (
    Circle, Ellipse, Finding, FindingKind, ImageLabels, Pathology, Point, Polygon, Rect,
)
from mammodesk.annotations.sidecar import pixel_sha256, read_sidecar, sidecar_path, write_atomic
from mammodesk.annotations.taxonomy import TAXONOMY_FILE, Taxonomy, load_taxonomy
from mammodesk.errors import AnnotationSaveError
from mammodesk.services import label_io
from mammodesk.services.autosave import AutoSaver, SaveJob
from mammodesk.state.labelling import LabellingState

SHAPE = (120, 100)


def every_shape_labels(image_id: str = "img") -> ImageLabels:
    return ImageLabels(image_id, findings=(
        Finding(FindingKind.MASS, Pathology.MALIGNANT, Ellipse(40.25, 30.5, 10.0, 6.0, 20.0), 5,
                {"margin": "spiculated", "shape": "irregular"}, "look here", uid="a1", author="ann",
                created="2026-11-01T10:00:00Z", modified="2026-11-02T11:00:00Z", modified_by="bob"),
        Finding(FindingKind.CALCIFICATION, Pathology.BENIGN, Polygon(((1.0, 2.0), (10.0, 3.0), (5.0, 9.0))), 2,
                {"morphology": "amorphous", "distribution": "grouped"}, uid="a2"),
        Finding(FindingKind.ASYMMETRY, Pathology.UNKNOWN, Rect(1.0, 2.0, 30.0, 40.0), uid="a3"),
        Finding(FindingKind.NORMAL, shape=Point(3.0, 4.0), uid="a4"),
        Finding(FindingKind.OTHER, shape=Circle(50.0, 50.0, 7.0), attributes={"finding_type": "lymph node"},
                uid="a5"),
        Finding(FindingKind.ARCHITECTURAL_DISTORTION, Pathology.MALIGNANT, None, 4, uid="a6", note="no location"),
    ), density="C", density_system="acr", birads=4, note="image note")


def new_state(tmp_path, saver=None) -> tuple[LabellingState, int]:
    state = LabellingState(saver, author="tester")
    sha = "0" * 64
    state.attach(1, file_name="img.png", sha256=sha, shape=SHAPE,
                 read=read_sidecar(tmp_path / "img.png.mammodesk.json", sha, SHAPE))
    return state, 1


# --- geometry -----------------------------------------------------------------------------------
def test_handles_resize_and_snap_to_the_image():
    bounds = SHAPE
    rect = Rect(10, 10, 20, 30)
    assert geometry.drag_handle(rect, "x1y1", 500, 25, bounds) == Rect(10, 10, 99.5, 25)  # snapped to the edge
    assert geometry.drag_handle(rect, "y0", 15, -40, bounds) == Rect(10, -0.5, 20, 30)
    assert geometry.drag_handle(Circle(5, 5, 2), "r", 5, 9, bounds).radius == pytest.approx(4)
    assert geometry.drag_handle(Ellipse(50, 50, 10, 5), "ry+", 50, 62, bounds).ry == pytest.approx(12)
    poly = Polygon(((0, 0), (10, 0), (10, 10)))
    assert geometry.drag_handle(poly, "v2", 4, 7, bounds).points[2] == (4, 7)
    assert geometry.move_within(Rect(90, 10, 99, 20), 50, 0, bounds) == Rect(90.5, 10, 99.5, 20)
    assert geometry.insert_vertex(poly, 5, -1).points == ((0, 0), (5, -1), (10, 0), (10, 10))
    with pytest.raises(ValueError):
        geometry.delete_vertex(poly, 0)


def test_outline_area_and_enclosing_circle():
    assert geometry.area(Rect(0, 0, 10, 4)) == pytest.approx(40)
    assert geometry.area(Polygon(geometry.outline(Circle(0, 0, 10), 720))) == pytest.approx(math.pi * 100, rel=1e-3)
    circle = geometry.enclosing_circle(Rect(0, 0, 6, 8))
    assert (circle.cx, circle.cy, circle.radius) == pytest.approx((3, 4, 5), abs=0.02)
    assert geometry.rect_from_polygon([(1, 2), (5, 2), (5, 7), (1, 7)]) == Rect(1, 2, 5, 7)
    assert geometry.rect_from_polygon([(1, 2), (5, 2), (6, 7), (1, 7)]) is None


# --- state and history ---------------------------------------------------------------------------
def test_every_edit_undoes_and_redoes(tmp_path):
    state, key = new_state(tmp_path)
    uid = state.add_finding(key, Rect(30, 40, 10, 20), "mass")
    assert state.sheets[key].finding(uid).shape == Rect(10, 20, 30, 40)  # normalised
    state.update_finding(key, uid, type="mass", attributes={"margin": "spiculated"}, pathology=Pathology.MALIGNANT)
    state.set_shape(key, uid, Rect(11, 21, 31, 41))
    state.set_image(key, density="B", birads=3)
    state.update_finding(key, uid, type="calcification")  # a calcification has no margin
    assert "margin" not in state.sheets[key].finding(uid).attributes
    snapshots = [e.after for e in state.sheets[key].undo_stack]
    for expected in reversed([e.before for e in state.sheets[key].undo_stack]):
        state.undo(key)
        assert state.sheets[key].labels == expected
    assert state.sheets[key].labels.findings == () and state.undo(key) is None
    for expected in snapshots:
        state.redo(key)
        assert state.sheets[key].labels == expected
    state.delete_finding(key, uid)
    assert state.sheets[key].selected is None and not state.sheets[key].redo_stack


def test_label_hotkeys_relabel_selection_or_set_defaults(tmp_path):
    state, key = new_state(tmp_path)
    state.label_selected(key, type="calcification", pathology=Pathology.BENIGN)
    uid = state.add_finding(key, Point(5, 5))
    finding = state.sheets[key].finding(uid)
    assert finding.kind == FindingKind.CALCIFICATION and finding.pathology == Pathology.BENIGN
    assert finding.author == "tester" and finding.created.endswith("Z") and finding.modified_by == ""
    state.author = "second reader"
    state.update_finding(key, uid, note="seen twice")
    finding = state.sheets[key].finding(uid)
    assert (finding.author, finding.modified_by) == ("tester", "second reader")  # creator kept
    state.author = "tester"
    state.label_selected(key, birads=4)  # the new ROI is selected: it gets BI-RADS 4
    assert state.sheets[key].finding(uid).birads == 4
    state.select(key, None)
    state.label_selected(key, birads=2)  # nothing selected: the image
    assert state.sheets[key].labels.birads == 2
    state.label_selected(key, type="lymph node")
    other = state.add_finding(key, Point(1, 1))
    assert state.sheets[key].finding(other).attributes["finding_type"] == "lymph node"


def test_shape_and_margin_keys_step_through_the_taxonomy(tmp_path):
    state, key = new_state(tmp_path)
    calc = state.add_finding(key, Point(5, 5), "calcification")
    assert state.cycle_attribute(key, "margin") is None  # a calcification has no margin
    mass = state.add_finding(key, Rect(10, 10, 40, 40), "mass")
    margins = [state.cycle_attribute(key, "margin") for _ in range(7)]
    assert margins[:2] == ["circumscribed", "obscured"] and margins[6] == "circumscribed"  # wraps
    assert state.cycle_attribute(key, "shape") == "oval"
    finding = state.sheets[key].finding(mass)
    assert finding.attributes["margin"] == "circumscribed" and finding.attributes["shape"] == "oval"
    assert "margin" not in state.sheets[key].finding(calc).attributes
    state.undo(key)
    assert "shape" not in state.sheets[key].finding(mass).attributes  # one undo step each
    state.select(key, None)
    assert state.cycle_attribute(key, "shape") is None


def test_import_adds_editable_findings_once(tmp_path):
    state, key = new_state(tmp_path)
    imported = every_shape_labels()
    assert state.import_labels(key, imported, "Import") == 6
    assert state.import_labels(key, imported, "Import again") == 0
    assert state.sheets[key].labels.density == "C"
    assert len({f.uid for f in state.sheets[key].labels.findings}) == 6
    state.undo(key)
    state.undo(key)
    assert state.sheets[key].labels.findings == ()


# --- taxonomy ---------------------------------------------------------------------------------
def test_taxonomy_per_project_and_validation(tmp_path):
    assert load_taxonomy(tmp_path) == (Taxonomy(), None)
    custom = Taxonomy(finding_types=(*Taxonomy().finding_types, "lymph node"))
    (tmp_path / TAXONOMY_FILE).write_text(custom.to_json())
    (tmp_path / "sub").mkdir()
    loaded, problem = load_taxonomy(tmp_path / "sub")
    assert problem is None and "lymph node" in loaded.finding_types
    assert loaded.attributes_for("mass") == ("shape", "margin")
    (tmp_path / TAXONOMY_FILE).write_text(json.dumps({"finding_types": ["mass"]}))
    fallback, problem = load_taxonomy(tmp_path)
    assert fallback == Taxonomy() and "missing" in problem


# --- sidecars -----------------------------------------------------------------------------------
def test_sidecar_round_trip_and_identity(tmp_path):
    pixels = phantom(40, 30)
    sha = pixel_sha256(pixels)
    assert sha != pixel_sha256(pixels.astype(np.uint8)) and sha == pixel_sha256(pixels.copy())
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    path = sidecar_path(image, sha)
    assert path == tmp_path / "a.png.mammodesk.json"
    job = SaveJob(1, path, every_shape_labels("a"), "a.png", sha, (40, 30), 7)
    job.write()
    read = read_sidecar(path, sha, (40, 30))
    assert read.labels == every_shape_labels("a") and read.revision == 7 and read.problems == []
    document = json.loads(path.read_text())
    assert document["schema"] == "mammodesk-annotations" and document["version"] == 1
    assert str(tmp_path) not in path.read_text()  # the folder (which may name a patient) is not stored
    other = read_sidecar(path, "f" * 64, (40, 30))
    assert other.labels is not None and "different pixels" in other.problems[0]


def test_corrupt_sidecar_is_kept_aside_and_reported(tmp_path):
    path = tmp_path / "a.png.mammodesk.json"
    path.write_text('{"schema": "mammodesk-annotations", "labels": {"findings": [')
    read = read_sidecar(path, "0" * 64, (4, 4))
    assert read.labels is None and "kept as" in read.problems[0]
    kept = list(tmp_path.glob("a.png.mammodesk.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text().endswith("[") and not path.exists()
    path.write_text(json.dumps({"schema": "mammodesk-annotations", "version": 99, "labels": {}}))
    assert "newer MammoDesk" in read_sidecar(path, "0" * 64, (4, 4)).problems[0]
    assert len(list(tmp_path.glob("*.corrupt-*"))) == 2


def test_read_only_folder_uses_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMODESK_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "ro"
    folder.mkdir()
    monkeypatch.setattr("os.access", lambda *_a, **_k: False)
    path = sidecar_path(folder / "x.dcm", "ab" * 32)
    assert path == tmp_path / "data" / "annotations" / "ab" / f"{'ab' * 32}.json"


def test_images_in_the_study_cache_keep_their_labels_outside_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMODESK_DATA_DIR", str(tmp_path / "data"))
    cached = tmp_path / "data" / "cache" / "team" / "1.2.3" / "x.dcm"  # writable, but evicted by size
    cached.parent.mkdir(parents=True)
    assert sidecar_path(cached, "cd" * 32) == tmp_path / "data" / "annotations" / "cd" / f"{'cd' * 32}.json"
    local = tmp_path / "exam" / "x.dcm"
    local.parent.mkdir()
    assert sidecar_path(local, "cd" * 32) == local.with_name("x.dcm.mammodesk.json")


def test_full_disk_keeps_the_old_file_and_reports(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    write_atomic(path, b"old")

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.fsync", lambda fd: None)
    import builtins
    real_open = builtins.open

    class FullFile:
        def __init__(self, *a, **k):
            self.handle = real_open(*a, **k)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(builtins, "open", FullFile)
    with pytest.raises(AnnotationSaveError, match="disk is full"):
        write_atomic(path, b"new")
    monkeypatch.setattr(builtins, "open", real_open)
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_autosave_debounces_retries_and_reports(tmp_path):
    done = []
    saver = AutoSaver(debounce_s=0.2, retry_s=0.1, on_done=lambda job, error: done.append((job.revision, error)))
    state, key = new_state(tmp_path, saver)
    for i in range(5):
        state.add_finding(key, Point(i, i))
    time.sleep(0.05)
    assert done == []  # still inside the debounce
    assert saver.flush(5)
    assert [revision for revision, _ in done] == [5]  # five edits, one write
    for revision, error in done:
        state.on_saved(type("J", (), {"key": key, "path": state.sheets[key].sidecar, "revision": revision})(),
                       error)
    assert state.sheets[key].saved
    # a failing write is retried until it succeeds; the edit is never dropped
    failures = iter([OSError(errno.ENOSPC, "full"), OSError(errno.ENOSPC, "full")])

    def flaky(self):
        error = next(failures, None)
        if error:
            raise AnnotationSaveError(error.errno, "the disk is full", str(self.path))
        SaveJob.write.__wrapped__(self)

    flaky.__wrapped__ = SaveJob.write
    SaveJob.write, original = flaky, SaveJob.write
    try:
        state.add_finding(key, Point(9, 9))
        deadline = time.monotonic() + 5
        while len(done) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        SaveJob.write = original
    assert [type(e).__name__ if e else None for _, e in done[1:4]] == ["AnnotationSaveError"] * 2 + [None]
    saved = read_sidecar(state.sheets[key].sidecar, "0" * 64, SHAPE)
    assert len(saved.labels.findings) == 6 and saved.revision == 6
    saver.close()


# --- exports: round trips ------------------------------------------------------------------------
def export_item(labels: ImageLabels, sha: str = "1" * 64) -> exports.ExportImage:
    return exports.ExportImage(labels, f"{labels.image_id}.png", SHAPE[0], SHAPE[1], sha)


def test_csv_round_trip_is_exact(tmp_path):
    labels = dataclasses.replace(every_shape_labels(), laterality="L", view="MLO")
    empty = ImageLabels("empty", density="A", density_system="acr", birads=1)
    rows = exports.write_csv([export_item(labels), export_item(empty, "2" * 64)], tmp_path / "f.csv")
    assert rows == 7
    back = exports.read_csv(tmp_path / "f.csv")
    assert back["img"].findings == labels.findings
    assert (back["img"].density, back["img"].birads, back["img"].note) == ("C", 4, "image note")
    assert (back["img"].laterality, back["img"].view) == ("L", "MLO") and back["empty"].laterality is None
    assert "pixel centres" in (tmp_path / "f.README.txt").read_text()  # the convention, written beside it
    # the side read from the pixels goes in its own column, and only where the file states none
    exports.write_csv([dataclasses.replace(export_item(labels), pixel_laterality="R"),
                       dataclasses.replace(export_item(empty, "2" * 64), pixel_laterality="R")], tmp_path / "p.csv")
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert {(r["laterality"], r["laterality_from_pixels"]) for r in rows} == {("L", ""), ("", "R")}
    assert back["empty"].findings == () and back["empty"].birads == 1 and back["empty"].extra["pixel_sha256"] == "2" * 64


def test_coco_round_trip_exact_and_as_plain_coco(tmp_path):
    labels = every_shape_labels()
    exports.write_coco([export_item(labels)], tmp_path / "c.json", Taxonomy().finding_types)
    back = exports.read_coco(tmp_path / "c.json")["img"]
    assert back.findings == labels.findings and back.density == "C"
    data = json.loads((tmp_path / "c.json").read_text())
    assert "top-left corner of the top-left pixel" in data["info"]["coordinates"]
    rect = next(a for a in data["annotations"] if a["mammodesk"]["uid"] == "a3")
    assert rect["bbox"] == [1.5, 2.5, 29.0, 38.0]  # COCO's origin is the pixel corner
    for annotation in data["annotations"]:  # another tool's COCO: geometry from segmentation/keypoints
        annotation.pop("mammodesk")
    (tmp_path / "plain.json").write_text(json.dumps(data))
    plain = exports.read_coco(tmp_path / "plain.json")["img"]
    by_kind = {f.kind: f for f in plain.findings}
    assert by_kind[FindingKind.ASYMMETRY].shape == Rect(1.0, 2.0, 30.0, 40.0)
    assert by_kind[FindingKind.NORMAL].shape == Point(3.0, 4.0)
    assert by_kind[FindingKind.CALCIFICATION].shape == Polygon(((1.0, 2.0), (10.0, 3.0), (5.0, 9.0)))
    mass = by_kind[FindingKind.MASS]
    assert mass.pathology == Pathology.MALIGNANT and mass.birads == 5 and mass.attributes["margin"] == "spiculated"
    assert geometry.area(mass.shape) == pytest.approx(geometry.area(labels.findings[0].shape), rel=0.01)
    assert by_kind[FindingKind.OTHER].attributes["finding_type"] == "lymph node"


def test_mias_round_trip(tmp_path):
    labels = ImageLabels("mdb999", findings=(
        Finding(FindingKind.MASS, Pathology.MALIGNANT, Circle(535, 425, 197), attributes={"margin": "spiculated"}),
        Finding(FindingKind.CALCIFICATION, Pathology.BENIGN, Circle(10, 20, 8)),
        Finding(FindingKind.MASS, Pathology.BENIGN, Circle(300, 300, 40), attributes={"margin": "ill-defined"}),
        Finding(FindingKind.ARCHITECTURAL_DISTORTION, Pathology.MALIGNANT, Rect(100, 100, 140, 130)),
        Finding(FindingKind.CALCIFICATION, Pathology.MALIGNANT, None),
    ), density="G", density_system="mias")
    item = exports.ExportImage(labels, "mdb999.pgm", 1024, 1024, "3" * 64)
    rows, skipped = exports.write_mias([item], tmp_path / "Info.txt")
    assert rows == 5 and skipped == []
    back = label_io.read_labels_file(tmp_path / "Info.txt", "mias")[0]
    assert back.density == "G"
    for original, read in zip(labels.findings[:3], back.findings[:3]):
        assert (read.kind, read.pathology, read.shape) == (original.kind, original.pathology, original.shape)
    assert back.findings[0].attributes["margin"] == "spiculated"
    box = back.findings[3].shape  # a box becomes the circle around it (MIAS has only circles)
    assert all(box.contains(x, y) for x, y in [(100, 100), (140, 130)])
    assert back.findings[4].shape is None


def test_dicom_sr_round_trip(tmp_path):
    source = write(make_dataset(phantom()), tmp_path / "x.dcm")
    labels = every_shape_labels()
    assert write_sr(labels, source, tmp_path / "sr.dcm", author="Ann Tester") == 6  # 5 ROIs + image labels
    referenced, back = read_sr(tmp_path / "sr.dcm")
    located = [f for f in labels.findings if f.shape is not None]
    assert len(back.findings) == len(located)
    for original, read in zip(located, back.findings):
        assert (read.kind, read.pathology, read.birads, read.note, read.uid) == \
            (original.kind, original.pathology, original.birads, original.note, original.uid)
        assert dict(read.attributes) == dict(original.attributes)
        assert type(read.shape) is type(original.shape)
        assert np.allclose(np.ravel(geometry.outline(read.shape)), np.ravel(geometry.outline(original.shape)),
                           atol=1e-3)  # SCOORD values are 32-bit floats
    assert (back.density, back.birads, back.note) == ("C", 4, "image note")
    import pydicom
    assert referenced != pydicom.dcmread(source).SOPInstanceUID  # de-identified reference by default


def test_no_default_export_carries_phi(tmp_path):
    ds = make_dataset(phantom(), PatientComments="Lives at 1 Privacy Lane", OperatorsName="Op^Erator",
                      StationName="MAMMO-ROOM-7", DeviceSerialNumber="SN-12345")
    source = write(ds, tmp_path / "case.dcm")
    header = ds
    identifying = [str(header.data_element(k).value) for k in [*PHI, "PatientComments", "OperatorsName",
                                                               "StationName", "DeviceSerialNumber",
                                                               "StudyInstanceUID", "SeriesInstanceUID",
                                                               "SOPInstanceUID"]]
    target = label_io.LabelTarget(1, source, pixel_sha256(phantom()), (96, 80), is_dicom=True)
    labels = every_shape_labels("case")
    out = tmp_path / "out"
    out.mkdir()
    for kind, name in [("csv", "f.csv"), ("coco", "c.json"), ("mias", "Info.txt"), ("sr", "sr")]:
        label_io.export(kind, out / name, [(target, labels)], finding_types=Taxonomy().finding_types,
                        author="Ann Tester")
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == 5  # the CSV with its README
    for path in files:
        raw = path.read_bytes()
        for value in identifying:
            for variant in {value, value.replace("^", " "), *value.split("^")}:
                if len(variant) >= 3:
                    assert variant.encode() not in raw, f"{variant!r} leaked into {path.name}"
    # opting in keeps the identity in the report
    label_io.export("sr", out / "with-id", [(target, labels)], include_identifiers=True)
    assert b"MRN-0042-SECRET" in next((out / "with-id").iterdir()).read_bytes()


def test_identifying_file_names_are_replaced(tmp_path):
    ds = make_dataset(phantom(), PatientID="Doe123")
    source = write(ds, tmp_path / "Doe123_L_CC.dcm")
    target = label_io.LabelTarget(1, source, "ab" * 32, (96, 80), is_dicom=True)
    assert label_io.public_names(target) == ("image-abababababab", "image-abababababab.dcm")
    plain = label_io.LabelTarget(2, tmp_path / "mdb001.pgm", "cd" * 32, (96, 80))
    assert label_io.public_names(plain) == ("mdb001", "mdb001.pgm")


def test_matching_imports_to_open_images(tmp_path):
    targets = [label_io.LabelTarget(1, tmp_path / "mdb001.pgm", "a" * 64, SHAPE),
               label_io.LabelTarget(2, tmp_path / "Mass-Training_P_00001_LEFT_CC" / "1-1.dcm", "b" * 64, SHAPE),
               label_io.LabelTarget(3, tmp_path / "22678622_5a4ab_MG_L_CC.dcm", "c" * 64, SHAPE)]
    imported = [ImageLabels("mdb001"), ImageLabels("Mass-Training_P_00001_LEFT_CC"), ImageLabels("22678622"),
                ImageLabels("renamed", extra={"pixel_sha256": "a" * 64}), ImageLabels("mdb002")]
    matched, unmatched = label_io.match(imported, targets)
    assert sorted(matched) == [1, 2, 3] and unmatched == ["mdb002"]


def test_real_mias_info_imports_as_editable_rois(mias_dir, tmp_path):
    imported = label_io.read_labels_file(mias_dir / "Info.txt", "mias")
    target = label_io.LabelTarget(1, mias_dir / "mdb028.pgm", "d" * 64, (1024, 1024))
    matched, _ = label_io.match(imported, [target])
    state, key = new_state(tmp_path)
    state.sheets[key].shape = (1024, 1024)
    assert state.import_labels(key, matched[1], "Import MIAS") == 1
    finding = state.sheets[key].labels.findings[0]
    assert finding.kind == FindingKind.MASS and finding.pathology == Pathology.MALIGNANT
    assert finding.shape == Circle(338.0, 1023 - 314.0, 56.0) and finding.source == "MIAS:CIRC"
    state.set_shape(key, finding.uid, geometry.translate(finding.shape, 3, 0))  # editable like any ROI
    assert state.sheets[key].labels.findings[0].shape.cx == 341.0


def test_cbis_masks_become_editable_outlines(tmp_path):
    mask = np.zeros((200, 160), np.uint8)
    cv2.circle(mask, (80, 90), 30, 255, -1)
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "masks" / "roi.png"), mask)
    header = ("patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,"
              "mass shape,mass margins,assessment,pathology,subtlety,image file path,cropped image file path,"
              "ROI mask file path\n")
    rows = ("P_00001,3,LEFT,CC,1,mass,OVAL,SPICULATED,4,MALIGNANT,4,Mass-Training_P_00001_LEFT_CC/a.dcm,,"
            "masks/roi.png\n"
            "P_00001,3,LEFT,CC,2,mass,ROUND,CIRCUMSCRIBED,3,BENIGN,2,Mass-Training_P_00001_LEFT_CC/a.dcm,,"
            "masks/missing.png\n")
    (tmp_path / "mass.csv").write_text(header + rows)
    (labels,) = label_io.read_labels_file(tmp_path / "mass.csv", "cbis")
    outline, missing = labels.findings
    assert isinstance(outline.shape, Polygon) and outline.pathology == Pathology.MALIGNANT
    assert geometry.area(outline.shape) == pytest.approx(math.pi * 30**2, rel=0.08)
    assert outline.shape.contains(80, 90) and not outline.shape.contains(80, 125)
    assert missing.shape is None and "ROI mask not read" in missing.note
