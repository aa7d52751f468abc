"""ROI labelling through the real window (pytest-qt, offscreen): every shape
drawn with mouse events, select/move/resize/vertex edit/delete, undo/redo,
label hotkeys, the findings panel, autosave and reopen, a corrupt sidecar,
import and export from the app."""

from __future__ import annotations

import json

import cv2
import numpy as np
from dicom_factory import make_dataset, phantom, write
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest
from test_reading_room import open_and_wait, settings_at

from mammodesk.annotations.model import Circle, Ellipse, FindingKind, Pathology, Point, Polygon, Rect
from mammodesk.qt.app import MainWindow

NO = QtCore.Qt.KeyboardModifier.NoModifier
LEFT = QtCore.Qt.MouseButton.LeftButton
MOVE_MS = 25  # pyqtgraph drops mouse moves that come faster than the screen refreshes


def image_file(tmp_path, name="case.png"):
    pixels = phantom(300, 240, bits=8)
    path = tmp_path / name
    cv2.imwrite(str(path), pixels)
    return path


def open_labelled(qtbot, win, path):
    (document,) = open_and_wait(qtbot, win, path)
    qtbot.waitUntil(lambda: document.id in win.labelling.state.sheets, timeout=10_000)
    win.docks["labels"].raise_()
    editor = win.labelling.editor_for(document)
    QtWidgets.QApplication.processEvents()
    return document, editor


def sheet(win, document):
    return win.labelling.state.sheets[document.id]


def pause():
    QTest.qWait(QtWidgets.QApplication.doubleClickInterval() + 30)  # two quick clicks would be a double click


def drag(editor, start, end, steps=6, modifier=NO):
    viewport = editor.canvas.viewport()
    a, b = editor.widget_point(*start), editor.widget_point(*end)
    pause()
    QTest.mousePress(viewport, LEFT, modifier, a)
    for step in range(1, steps + 1):
        QTest.qWait(MOVE_MS)
        QTest.mouseMove(viewport, a + (b - a) * step / steps)
    QTest.mouseRelease(viewport, LEFT, modifier, b)


def click(editor, point, modifier=NO, double=False):
    viewport = editor.canvas.viewport()
    pause()
    if double:  # the sequence a real double click makes: press, release, double-click, release
        where = editor.widget_point(*point)
        QTest.mousePress(viewport, LEFT, modifier, where)
        QTest.mouseRelease(viewport, LEFT, modifier, where)
        event = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseButtonDblClick, QtCore.QPointF(where),
                                  QtCore.QPointF(viewport.mapToGlobal(where)), LEFT, LEFT, modifier)
        QtWidgets.QApplication.sendEvent(viewport, event)
        QTest.mouseRelease(viewport, LEFT, modifier, where)
    else:
        QTest.mouseClick(viewport, LEFT, modifier, editor.widget_point(*point))


def tool(win, name):
    win.actions_[f"tool_{name}"].trigger()


def test_every_shape_drawn_with_the_mouse(window, qtbot, tmp_path):
    document, editor = open_labelled(qtbot, window, image_file(tmp_path))
    tolerance = 2 * editor._pixel() + 0.5
    tool(window, "rect")
    drag(editor, (20, 30), (80, 90))
    tool(window, "ellipse")
    drag(editor, (100, 40), (160, 80))
    tool(window, "circle")
    drag(editor, (120, 200), (150, 200))
    tool(window, "point")
    click(editor, (60, 250))
    tool(window, "polygon")
    for vertex in [(180, 120), (230, 130), (220, 180)]:
        click(editor, vertex)
    click(editor, (180, 120))  # back on the first vertex closes it
    tool(window, "freehand")
    viewport = editor.canvas.viewport()
    pause()
    trace = [(20 + 30 * np.cos(t), 200 + 30 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 40)]
    QTest.mousePress(viewport, LEFT, NO, editor.widget_point(*trace[0]))
    for point in trace[1:]:
        QTest.qWait(MOVE_MS)
        QTest.mouseMove(viewport, editor.widget_point(*point))
    QTest.mouseRelease(viewport, LEFT, NO, editor.widget_point(*trace[-1]))
    shapes = [f.shape for f in sheet(window, document).labels.findings]
    assert [type(s) for s in shapes] == [Rect, Ellipse, Circle, Point, Polygon, Polygon]
    rect, ellipse, circle, point, polygon, freehand = shapes
    assert np.allclose(rect.bbox(), (20, 30, 80, 90), atol=tolerance)
    assert np.allclose((ellipse.cx, ellipse.cy, ellipse.rx, ellipse.ry), (130, 60, 30, 20), atol=tolerance)
    assert np.allclose((circle.cx, circle.cy, circle.radius), (120, 200, 30), atol=tolerance)
    assert np.allclose((point.x, point.y), (60, 250), atol=tolerance)
    assert np.allclose(polygon.points, [(180, 120), (230, 130), (220, 180)], atol=tolerance)
    assert 8 <= len(freehand.points) < 40 and freehand.contains(20, 200) and not freehand.contains(60, 200)
    assert len(sheet(window, document).undo_stack) == 6  # one undo step per shape
    assert window.labelling.panel.table.rowCount() == 6


def test_mirrored_display_stores_source_coordinates(window, qtbot, tmp_path):
    ds = make_dataset(phantom(300, 240), ImageLaterality="R")
    document, editor = open_labelled(qtbot, window, write(ds, tmp_path / "right.dcm"))
    assert editor.canvas.flip  # a right breast stored chest wall left is mirrored
    tool(window, "rect")
    drag(editor, (20, 30), (80, 90))
    rect = sheet(window, document).labels.findings[0].shape
    assert np.allclose(rect.bbox(), (20, 30, 80, 90), atol=2 * editor._pixel() + 0.5)
    window.actions_["orientation"].trigger()  # shown as stored: same ROI, same numbers
    QtWidgets.QApplication.processEvents()
    assert not editor.canvas.flip and sheet(window, document).labels.findings[0].shape == rect


def test_select_move_resize_vertex_edit_delete_undo(window, qtbot, tmp_path):
    document, editor = open_labelled(qtbot, window, image_file(tmp_path))
    state, key = window.labelling.state, document.id
    rect_uid = state.add_finding(key, Rect(40, 40, 100, 100))
    poly_uid = state.add_finding(key, Polygon(((150, 150), (210, 150), (210, 210), (150, 210))))
    tool(window, "select")
    tol = 2 * editor._pixel() + 0.5
    drag(editor, (70, 70), (90, 80))  # drag the body: move
    moved = sheet(window, document).finding(rect_uid).shape
    assert np.allclose(moved.bbox(), (60, 50, 120, 110), atol=tol)
    drag(editor, (120, 110), (140, 150))  # the selected box's corner handle: resize
    assert np.allclose(sheet(window, document).finding(rect_uid).shape.bbox(), (60, 50, 140, 150), atol=tol)
    click(editor, (180, 180))  # select the polygon
    assert sheet(window, document).selected == poly_uid
    drag(editor, (210, 210), (230, 235))  # move one vertex
    points = sheet(window, document).finding(poly_uid).shape.points
    assert np.allclose(points[2], (230, 235), atol=tol) and np.allclose(points[0], (150, 150))
    click(editor, (180, 150.5), double=True)  # double-click an edge: a new vertex
    assert len(sheet(window, document).finding(poly_uid).shape.points) == 5
    click(editor, (150, 150), modifier=QtCore.Qt.KeyboardModifier.ShiftModifier)  # Shift+click: delete it
    assert len(sheet(window, document).finding(poly_uid).shape.points) == 4
    window.actions_["delete_finding"].trigger()
    assert [f.uid for f in sheet(window, document).labels.findings] == [rect_uid]
    history = [e.text for e in sheet(window, document).undo_stack]
    assert history[-6:] == ["Move ROI", "Resize ROI", "Resize ROI", "Add vertex", "Delete vertex", "Delete finding"]
    window.actions_["undo"].trigger()
    assert len(sheet(window, document).labels.findings) == 2
    for _ in range(5):
        window.actions_["undo"].trigger()
    assert sheet(window, document).finding(rect_uid).shape == Rect(40, 40, 100, 100)
    window.actions_["redo"].trigger()
    assert np.allclose(sheet(window, document).finding(rect_uid).shape.bbox(), (60, 50, 120, 110), atol=tol)


def test_polygon_keys_and_label_hotkeys_with_the_panel(window, qtbot, tmp_path):
    document, editor = open_labelled(qtbot, window, image_file(tmp_path))
    state, key, panel = window.labelling.state, document.id, window.labelling.panel
    tool(window, "polygon")
    for vertex in [(30, 30), (90, 30), (90, 90), (60, 120)]:
        click(editor, vertex)
    window.actions_["stop"].trigger()  # Esc drops the polygon being placed
    assert sheet(window, document).labels.findings == () and editor.vertices == []
    for vertex in [(30, 30), (90, 30), (90, 90), (60, 120)]:
        click(editor, vertex)
    window.labelling.delete_or_back()  # Backspace: the last vertex
    assert window.labelling.finish_polygon()  # Enter
    (finding,) = sheet(window, document).labels.findings
    assert len(finding.shape.points) == 3
    window.activateWindow()
    window.area.setFocus()
    for keys in ("Shift+C", "Ctrl+M", "Alt+4"):
        combination = QtGui.QKeySequence(keys)[0]
        QTest.keyClick(window, combination.key(), combination.keyboardModifiers())
    finding = sheet(window, document).labels.findings[0]
    assert (finding.kind, finding.pathology, finding.birads) == (FindingKind.CALCIFICATION, Pathology.MALIGNANT, 4)
    assert panel.type_combo.currentText() == "calcification" and panel.birads.currentText() == "4"
    assert panel.form.isRowVisible(panel.attribute_combos["morphology"])
    assert not panel.form.isRowVisible(panel.attribute_combos["margin"])
    combo = panel.attribute_combos["morphology"]
    combo.textActivated.emit("fine pleomorphic")
    assert sheet(window, document).labels.findings[0].attributes["morphology"] == "fine pleomorphic"
    panel.density.setCurrentText("C")
    panel.density.activated.emit(panel.density.currentIndex())
    assert sheet(window, document).labels.density == "C"
    state.select(key, None)
    assert not panel.table.selectedIndexes()
    panel.table.selectRow(0)
    assert sheet(window, document).selected == finding.uid


def test_autosave_survives_reopen_and_corrupt_sidecars_are_reported(qtbot, tmp_path):
    path = image_file(tmp_path)
    first = MainWindow(settings_at(tmp_path / "s.ini"))
    qtbot.addWidget(first)
    first.show()
    document, _ = open_labelled(qtbot, first, path)
    uid = first.labelling.state.add_finding(document.id, Circle(100, 120, 30), "mass")
    first.labelling.state.update_finding(document.id, uid, note="check at follow-up")
    qtbot.waitUntil(lambda: sheet(first, document).saved, timeout=5000)
    assert "saved to case.png.mammodesk.json" in first.labelling.panel.status.text()
    first.close()
    second = MainWindow(settings_at(tmp_path / "s.ini"))
    qtbot.addWidget(second)
    second.show()
    reopened, _ = open_labelled(qtbot, second, path)
    (finding,) = sheet(second, reopened).labels.findings
    assert finding.shape == Circle(100, 120, 30) and finding.note == "check at follow-up" and finding.uid == uid
    second.close()
    sidecar = tmp_path / "case.png.mammodesk.json"
    sidecar.write_text(sidecar.read_text()[:40])  # a torn file (not something our writer leaves)
    third = MainWindow(settings_at(tmp_path / "s.ini"))
    qtbot.addWidget(third)
    third.show()
    document, _ = open_labelled(qtbot, third, path)
    assert "kept as" in third.labelling.panel.status.text()
    assert len(list(tmp_path.glob("case.png.mammodesk.json.corrupt-*"))) == 1
    third.close()


def test_export_and_reimport_from_the_app(window, qtbot, tmp_path):
    document, editor = open_labelled(qtbot, window, image_file(tmp_path))
    state, key = window.labelling.state, document.id
    state.add_finding(key, Rect(10, 10, 50, 60), "mass", pathology=Pathology.BENIGN)
    state.add_finding(key, Ellipse(120, 100, 20, 10), "asymmetry")
    state.set_image(key, density="B")
    for kind, name in [("csv", "f.csv"), ("coco", "c.json"), ("mias", "Info.txt")]:
        assert window.labelling.export(kind, tmp_path / name)
    original = sheet(window, document).labels.findings
    state.delete_finding(key, original[0].uid)
    state.delete_finding(key, original[1].uid)
    window.labelling.import_file(str(tmp_path / "f.csv"), "csv").result(10)
    qtbot.waitUntil(lambda: len(sheet(window, document).labels.findings) == 2, timeout=5000)
    back = sheet(window, document).labels.findings
    assert [(f.kind, f.shape, f.pathology) for f in back] == [(f.kind, f.shape, f.pathology) for f in original]
    coco = json.loads((tmp_path / "c.json").read_text())
    assert coco["images"][0]["file_name"] == "case.png" and len(coco["annotations"]) == 2
    # a PNG states no side: the export keeps the app's reading of it from the pixels, in a column of its own
    anatomy = document.anatomy
    assert anatomy.laterality in ("L", "R") and anatomy.laterality_source == "pixels"
    import csv

    (row, *_) = csv.DictReader((tmp_path / "f.csv").open())
    assert (row["laterality"], row["laterality_from_pixels"]) == ("", anatomy.laterality)
    assert coco["images"][0]["mammodesk"]["laterality_from_pixels"] == anatomy.laterality


def test_real_mias_info_import_in_the_app(window, qtbot, mias_dir):
    document, editor = open_labelled(qtbot, window, mias_dir / "mdb028.pgm")
    window.labelling.import_file(str(mias_dir / "Info.txt"), "mias").result(10)
    qtbot.waitUntil(lambda: len(sheet(window, document).labels.findings) == 1, timeout=5000)
    finding = sheet(window, document).labels.findings[0]
    assert finding.shape == Circle(338.0, 709.0, 56.0) and finding.pathology == Pathology.MALIGNANT
    assert len(window.labelling.pending_imports) > 100  # the rest wait for their images
    window.labelling.state.undo(document.id)  # leave the shared folder as it was
    assert window.labelling.saver.flush(5)
    sidecar = mias_dir / "mdb028.pgm.mammodesk.json"
    if sidecar.exists():
        sidecar.unlink()


def test_next_file_and_the_taxonomy_dialog(window, qtbot, tmp_path):
    from mammodesk.qt.labelling.controller import TaxonomyDialog

    first, second = image_file(tmp_path, "a.png"), image_file(tmp_path, "b.png")
    window.open_folder(str(tmp_path))  # two files: both open, in the hanging
    qtbot.waitUntil(lambda: len(window.labelling.state.sheets) == 2, timeout=20_000)
    window.state.set_layout("single")
    by_name = {d.image.meta.source_path.name: d for d in window.state.documents}
    window.state.set_active(by_name["a.png"])
    window.actions_["next_file"].trigger()
    assert window.state.active.image.meta.source_path.name == "b.png"
    window.actions_["next_file"].trigger()  # wraps
    assert window.state.active.image.meta.source_path.name == "a.png"
    window.state.close(window.state.active)  # b stays open; the next file (a) is read in its place
    window.actions_["next_file"].trigger()
    qtbot.waitUntil(lambda: window.state.active is not None
                    and window.state.active.image.meta.source_path.name == "a.png", timeout=20_000)
    assert [d.image.meta.source_path.name for d in window.state.documents] == ["a.png"]
    window.actions_["prev_file"].trigger()
    qtbot.waitUntil(lambda: window.state.active is not None
                    and window.state.active.image.meta.source_path.name == "b.png", timeout=20_000)
    assert [d.image.meta.source_path.name for d in window.state.documents] == ["b.png"]
    assert {first.name, second.name} == {"a.png", "b.png"}

    dialog = TaxonomyDialog(window.labelling.state.taxonomy, tmp_path, window)
    dialog.text.setPlainText('{"finding_types": ["mass"]}')
    dialog._save()
    assert "missing" in dialog.error.text() and not (tmp_path / "mammodesk-taxonomy.json").exists()
    text = json.loads(window.labelling.state.taxonomy.to_json())
    text["finding_types"].append("lymph node")
    dialog.text.setPlainText(json.dumps(text))
    dialog._save()
    assert dialog.result() == QtWidgets.QDialog.DialogCode.Accepted
    window.labelling.state.set_taxonomy(dialog.result_taxonomy)
    panel = window.labelling.panel
    assert "lymph node" in [panel.type_combo.itemText(i) for i in range(panel.type_combo.count())]
    assert "lymph node" in (tmp_path / "mammodesk-taxonomy.json").read_text()


def test_patient_identifiers_enter_exports_only_after_a_confirmation(window, monkeypatch):
    action = window.actions_["include_identifiers"]
    asked = []
    answers = iter([QtWidgets.QMessageBox.StandardButton.No, QtWidgets.QMessageBox.StandardButton.Yes])
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or next(answers))
    assert action.shortcut().isEmpty()  # no chord turns it on
    action.trigger()  # from the menu: asked, and No leaves it off
    assert not action.isChecked() and "birth date" in asked[0]
    action.trigger()
    assert action.isChecked() and len(asked) == 2
    assert "INCLUDE patient identifiers" in window.statusBar().currentMessage()
    action.trigger()  # off again without a question
    assert not action.isChecked() and len(asked) == 2


def test_dicom_sr_is_offered_only_when_a_dicom_image_is_open(window, qtbot, tmp_path, monkeypatch):
    from mammodesk.services import label_io

    png = tmp_path / "film.png"
    cv2.imwrite(str(png), (phantom(200, 160, bits=12) >> 4).astype(np.uint8))
    open_and_wait(qtbot, window, png)
    window.labelling.state.add_finding(window.state.active.id, Rect(10, 10, 40, 40))
    offered = []
    monkeypatch.setattr(QtWidgets.QInputDialog, "getItem", lambda *a, **k: offered.append(a[3]) or ("", False))
    window.labelling.export_dialog()
    assert label_io.EXPORT_FORMATS["sr"] not in offered[0] and label_io.EXPORT_FORMATS["csv"] in offered[0]
    dicom = write(make_dataset(phantom(200, 160, bits=12), bits_stored=12, PixelSpacing=[0.1, 0.1]), tmp_path / "a.dcm")
    open_and_wait(qtbot, window, dicom)
    window.labelling.export_dialog()
    assert label_io.EXPORT_FORMATS["sr"] in offered[1]


def test_next_file_says_when_it_wraps_to_the_first(window, qtbot, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    for name in ("a.dcm", "b.dcm"):
        write(make_dataset(phantom(200, 160, bits=12), bits_stored=12, PixelSpacing=[0.1, 0.1]), folder / name)
    window.open_paths([str(folder)])
    qtbot.waitUntil(lambda: len(window.state.documents) == 2, timeout=30_000)
    window.state.set_active(next(d for d in window.state.documents if d.name == "b.dcm"))
    window.labelling.step_file(+1)
    assert window.state.active.name == "a.dcm" and "Wrapped to the first file" in window.statusBar().currentMessage()
    window.labelling.step_file(+1)
    assert window.state.active.name == "b.dcm" and "Wrapped" not in window.statusBar().currentMessage()


def test_an_image_without_rois_shows_no_other_images_finding(window, qtbot, tmp_path):

    first, _ = open_labelled(qtbot, window, image_file(tmp_path, "one.png"))
    state = window.labelling.state
    state.add_finding(first.id, Rect(40, 40, 100, 100))
    state.label_selected(first.id, pathology=Pathology.MALIGNANT)
    panel = window.labelling.panel
    assert panel.pathology.currentText() == Pathology.MALIGNANT.value
    second, _ = open_labelled(qtbot, window, image_file(tmp_path, "two.png"))
    window.state.set_active(second)
    QtWidgets.QApplication.processEvents()
    assert not panel.editor.isEnabled()
    assert panel.pathology.currentText() == "" and panel.type_combo.currentText() == "" and panel.note.text() == ""


def test_an_export_that_cannot_hold_a_label_asks_before_writing(window, qtbot, tmp_path, monkeypatch):
    from mammodesk.services import label_io

    document, _ = open_labelled(qtbot, window, image_file(tmp_path, "nodensity.png"))
    window.labelling.state.add_finding(document.id, Rect(40, 40, 100, 100), "mass")
    monkeypatch.setattr(QtWidgets.QInputDialog, "getItem", lambda *a, **k: (label_io.EXPORT_FORMATS["mias"], True))
    asked = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QtWidgets.QMessageBox.StandardButton.No)
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("asked where to write")))
    window.labelling.export_dialog()  # No: nothing is written, and the reason named the image
    assert len(asked) == 1 and "nodensity: no breast density" in asked[0]
    assert not list(tmp_path.glob("*.txt"))


def test_the_study_is_a_worklist_that_survives_a_restart(qtbot, tmp_path):
    """Three folders (two of JPEGs, one name in two folders), 60 files: label 20, restart, and the worklist
    shows 20 of 60 labelled from the sidecars, filters to the unlabelled and goes on to the 21st image."""
    from mammodesk.qt.app import MainWindow

    folders = []
    for index, suffix in enumerate((".jpg", ".jpeg", ".png")):
        folder = tmp_path / f"site{index}"
        folder.mkdir()
        for n in range(19 if index == 2 else 20):  # and site1's same.png below: 60 in all
            pixels = (phantom(160, 128, bits=12) >> 4).astype(np.uint8)
            pixels[10 + n:20 + n, 10 + n:20 + n] = 255 - 20 * index  # distinct pixels: distinct sidecars
            cv2.imwrite(str(folder / f"case{n}{suffix}"), pixels)
        folders.append(folder)
    (folders[2] / "case0.png").rename(folders[2] / "same.png")
    cv2.imwrite(str(folders[1] / "same.png"), (phantom(160, 128, bits=12) >> 4).astype(np.uint8))  # the same name
    first = MainWindow(settings_at(tmp_path / "a.ini"))
    qtbot.addWidget(first)
    paths = [folders[0] / f"case{n}.jpg" for n in range(20)]
    documents = open_and_wait(qtbot, first, *paths)
    for document in documents:
        qtbot.waitUntil(lambda d=document: d.id in first.labelling.state.sheets, timeout=10_000)
        first.labelling.state.add_finding(document.id, Rect(10, 10, 40, 40), "mass")
    qtbot.waitUntil(lambda: all(first.labelling.state.sheets[d.id].saved for d in documents), timeout=10_000)
    first.close()

    second = MainWindow(settings_at(tmp_path / "b.ini"))
    qtbot.addWidget(second)
    for folder in folders:
        second.open_paths([str(folder)])
    browser = second.browser
    qtbot.waitUntil(lambda: browser.count() == 60 and "reading" not in "".join(
        browser.entry_text(p) for p in browser.paths()), timeout=120_000)
    assert browser.progress() == (20, 60)
    assert "site1/same.png" in browser.entry_text(str(folders[1] / "same.png"))  # told apart by folder
    assert "site2/same.png" in browser.entry_text(str(folders[2] / "same.png"))
    assert "✓ 1" in browser.entry_text(str(paths[0]))
    assert "unlabelled" in browser.entry_text(str(folders[1] / "case5.jpeg"))
    browser.set_unlabelled_only(True)
    assert [p for p in browser.paths() if not browser.item(browser.paths().index(p)).isHidden()] == \
        [p for p in browser.paths() if p not in {str(q) for q in paths}]
    second.open_paths([str(paths[-1])])
    qtbot.waitUntil(lambda: second.state.active is not None and second.state.active.name == "case19.jpg",
                    timeout=30_000)
    second.labelling.step_file(+1, unlabelled=True)  # the 21st image: the first of the next folder
    qtbot.waitUntil(lambda: second.state.active is not None and second.state.active.name == "case0.jpeg",
                    timeout=30_000)
    second.close()
