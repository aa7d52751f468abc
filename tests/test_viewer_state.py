"""The reading room's Qt-free state: hanging, windows as LUTs, orientation,
the spec editor, processing jobs and the decoding process pool."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from dicom_factory import make_dataset, phantom, write

from mammodesk.io import Image, ImageMeta, WindowPreset, apply_window, read_image
from mammodesk.preprocessing import PipelineSpec
from mammodesk.resources import resources_dir
from mammodesk.state import PipelineEditor, ViewerState
from mammodesk.io import display
from mammodesk.services.loading import ImageLoader, Loaded, LoadFailure, folder_files, load, read_identifying
from mammodesk.state.processing import Cancelled, Generations, preview_scale, process_for_display


def breast(rows=120, cols=100, chest_wall="left", bits=12) -> np.ndarray:
    pixels = phantom(rows, cols, bits=bits)  # the phantom's disc rests on the left edge
    return pixels if chest_wall == "left" else pixels[:, ::-1].copy()


# --- display -------------------------------------------------------------------------------
@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_window_lut_is_the_voi_function(function):
    preset = WindowPreset(2000.0, 1500.0, function)
    lut = display.window_lut(preset, 4096)
    values = np.array([0, 1000, 1999, 2000, 2600, 4095])
    expected = np.rint(apply_window(values, preset) * 255).astype(np.uint8)
    np.testing.assert_array_equal(lut[values], expected)
    np.testing.assert_array_equal(display.window_lut(preset, 4096, inverted=True)[values], 255 - expected)


def test_window_lut_for_a_dicom_lut_sequence():
    table = np.linspace(0, 1, 11, dtype=np.float32) ** 2
    preset = WindowPreset(0, 0, "LUT", lut=table, lut_first=100)
    lut = display.window_lut(preset, 256)
    assert lut[50] == 0 and lut[105] == round(0.25 * 255) and lut[200] == 255


def test_drag_window_directions():
    start = WindowPreset(2000, 1000, "LINEAR")
    wider = display.drag_window(start, 50, 0, 4095)
    assert wider.width > start.width and wider.center == start.center
    higher = display.drag_window(start, 0, 40, 4095)
    assert higher.center > start.center and higher.width == start.width
    narrowest = display.drag_window(start, -100000, 0, 4095)
    assert narrowest.width == 2.0
    assert display.drag_window(WindowPreset(0, 0, "LUT", lut=np.zeros(4)), 1, 1, 255).function == "LINEAR"


def test_processed_floats_become_display_integers():
    shown = display.to_display_integers(np.array([[0.0, 0.5, 1.0, np.nan]], np.float32))
    assert shown.dtype == np.uint16 and shown.tolist() == [[0, 32767, 65535, 0]]
    rgb = display.to_display_integers(np.dstack([np.full((2, 2), 10, np.uint8)] * 3))
    assert rgb.shape == (2, 2) and rgb.dtype == np.uint8
    z = display.to_display_integers(np.array([[-3.0, 1.0]], np.float32))  # z-scores: min-max scaled
    assert z.tolist() == [[0, 65535]]


# --- viewer state --------------------------------------------------------------------------
@pytest.fixture
def state():
    return ViewerState()


def image(laterality="L", view="CC", name="a.png", chest_wall="left") -> Image:
    return Image(breast(chest_wall=chest_wall), ImageMeta(source_path=Path(name), laterality=laterality, view=view,
                                                          bits_stored=12, window_presets=(
                                                              WindowPreset(1000, 800, name="soft"),
                                                              WindowPreset(2000, 3000, name="wide"))))


def test_documents_active_and_close(state):
    events = []
    state.active_changed.connect(lambda d: events.append(d and d.name))
    a = state.add_image(image(name="a.png"))
    b = state.add_image(image(name="b.png"))
    assert state.active is b and events == ["a.png", "b.png"]
    state.step_active(+1)
    assert state.active is a
    state.close(a)
    assert state.active is b and state.documents == [b]
    state.close(b)
    assert state.active is None


def test_recent_files_most_recent_first_and_bounded(state):
    for index in range(20):
        state.note_recent(f"/x/{index}.dcm")
    state.note_recent("/x/5.dcm")
    assert state.recent[0] == "/x/5.dcm" and len(state.recent) == 12 and state.recent.count("/x/5.dcm") == 1


def test_window_presets_invert_and_reset(state):
    doc = state.add_image(image())
    assert doc.window.name == "soft"  # the file's first preset is the default
    seen = []
    state.window_changed.connect(lambda d: seen.append(d.window.name))
    state.next_preset(doc)
    state.next_preset(doc)
    state.next_preset(doc)
    assert seen == ["wide", "auto (breast)", "soft"]
    state.drag_window(doc, 30, -10)
    assert doc.window.name == "custom"
    state.invert(doc)
    assert doc.inverted
    state.reset(doc)
    assert doc.window.name == "soft" and not doc.inverted


def test_orientation_toggle_and_displayed_chest_wall(state):
    doc = state.add_image(image(laterality="R", chest_wall="left"))
    assert doc.flip and state.displayed_flip(doc) and state.displayed_chest_wall(doc) == "right"
    state.toggle_orientation()
    assert not state.displayed_flip(doc) and state.displayed_chest_wall(doc) == "left"


def test_hanging_of_open_documents(state):
    docs = [state.add_image(image(lat, view, f"{lat}{view}.png")) for lat, view in
            [("L", "CC"), ("R", "MLO"), ("R", "CC"), ("L", "MLO")]]
    assert state.hanging() == {"LCC": docs[0], "RMLO": docs[1], "RCC": docs[2], "LMLO": docs[3]}
    state.set_layout("2x2")
    with pytest.raises(ValueError):
        state.set_layout("3x3")


def test_processed_window_follows_results_until_dragged(state):
    doc = state.add_image(image())
    spec = PipelineSpec([{"op": "median"}])
    first = process_for_display(doc.image, spec)
    state.set_processed(doc, first)
    assert doc.processed_window == first.auto_window
    state.drag_window(doc, 20, 0, processed=True)
    dragged = doc.processed_window
    state.set_processed(doc, process_for_display(doc.image, PipelineSpec([{"op": "gaussian"}])))
    assert doc.processed_window == dragged  # the user's window survives a new result
    state.reset(doc)
    assert doc.processed_window == doc.processed.auto_window
    state.close(doc)
    state.set_processed(doc, first)  # a late result for a closed image is ignored
    assert doc not in state.documents


# --- spec editor -----------------------------------------------------------------------------
def test_editor_edits_and_rejects_bad_values():
    editor = PipelineEditor()
    specs, errors = [], []
    editor.changed.connect(specs.append)
    editor.error.connect(errors.append)
    assert editor.add("median") and editor.add("clahe") and editor.add("gaussian", 0)
    assert [s.op for s in editor.steps] == ["gaussian", "median", "clahe"]
    assert editor.move(0, 2) and [s.op for s in editor.steps] == ["median", "clahe", "gaussian"]
    assert not editor.move(0, 5)
    assert editor.set_enabled(1, False) and [op.name for op in editor.spec.ops] == ["median", "gaussian"]
    assert editor.set_param(0, "ksize", 7) and editor.values(0) == {"ksize": 7}
    before = editor.spec
    assert not editor.set_param(0, "ksize", 4)
    assert editor.spec == before and "odd" in errors[-1]
    assert not editor.add("medain") and "did you mean 'median'" in errors[-1]
    assert editor.remove(2) and len(editor.steps) == 2
    assert len(specs) == 7


def test_editor_save_load_and_model_spec(tmp_path):
    editor = PipelineEditor()
    editor.add("clahe", params={"clip_limit": 3.0})
    editor.set_enabled(0, False)
    assert editor.save(tmp_path / "spec.json")
    other = PipelineEditor()
    assert other.load(tmp_path / "spec.json") and other.spec == editor.spec and other.source == "spec.json"
    (tmp_path / "bad.json").write_text('{"ops": [{"op": "nope"}]}')
    errors = []
    other.error.connect(errors.append)
    assert not other.load(tmp_path / "bad.json") and "bad.json" in errors[-1]
    assert other.spec == editor.spec  # a failed load changes nothing
    model = next(p for p in sorted((resources_dir() / "models").glob("*.onnx")) if ".decoder" not in p.name)
    from mammodesk.inference.contract import read_card

    assert other.load_from_model(model) and other.spec == read_card(model).spec
    assert not other.load_from_model(tmp_path / "bad.json")


def test_editor_save_failure_keeps_the_old_file(tmp_path):
    editor = PipelineEditor(PipelineSpec([{"op": "median"}]))
    errors = []
    editor.error.connect(errors.append)
    assert not editor.save(tmp_path / "missing-dir" / "spec.json")
    assert "Could not save" in errors[-1]


# --- processing jobs ------------------------------------------------------------------------
def test_preview_runs_at_view_scale_and_maps_back():
    img = image()
    spec = PipelineSpec([{"op": "median"}, {"op": "crop_to_breast"}])
    scale = preview_scale(img.shape, (50, 60))
    view = process_for_display(img, spec, scale=scale)
    assert view.preview and max(view.result.array.shape) < max(img.shape)
    full = process_for_display(img, spec)
    assert not full.preview
    # The preview's corners map back onto the same source region as the full result's.
    y0, x0, rows, cols = view.result.geometry.source_window()
    fy0, fx0, frows, fcols = full.result.geometry.source_window()
    assert abs(y0 - fy0) <= 2 and abs(x0 - fx0) <= 2 and abs(rows - frows) <= 3 and abs(cols - fcols) <= 3


def test_jobs_stop_at_op_boundaries_and_generations_supersede():
    generations = Generations()
    first = generations.start("doc")
    second = generations.start("doc")
    assert not generations.is_current("doc", first) and generations.is_current("doc", second)
    calls = []

    def stop_after_first_op():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled):
        process_for_display(image(), PipelineSpec([{"op": "median"}, {"op": "gaussian"}]),
                            should_stop=stop_after_first_op)
    generations.cancel_all()
    assert not generations.is_current("doc", second)


# --- decoding in worker processes ------------------------------------------------------------
def _die(path: str):  # a decoder that takes its process down
    os._exit(3)


def test_loader_decodes_in_another_process_and_survives_a_crash(tmp_path):
    path = write(make_dataset(phantom(bits=12), bits_stored=12), tmp_path / "a.dcm")
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    loader = ImageLoader(workers=1)
    try:
        loaded = loader.submit(load, str(path)).result(timeout=60)
        assert isinstance(loaded, Loaded) and loaded.image.shape == (96, 80)
        assert loaded.summary.thumbnail is not None and loaded.summary.anatomy.laterality == "L"
        failure = loader.submit(load, str(bad)).result(timeout=60)
        assert isinstance(failure, LoadFailure) and failure.message
        crashed = loader.submit(_die, str(path))
        with pytest.raises(Exception) as info:
            crashed.result(timeout=60)
        assert "BrokenProcessPool" in type(info.value).__name__
        loader.notice_broken(crashed)
        again = loader.submit(load, str(path)).result(timeout=60)  # a fresh pool
        assert isinstance(again, Loaded)
    finally:
        loader.shutdown()


def test_identifying_tags_only_on_request(tmp_path):
    path = write(make_dataset(phantom(bits=12), bits_stored=12), tmp_path / "a.dcm")
    assert "PatientName" not in read_image(path).meta.tags
    assert "PatientName" in read_identifying(str(path))
    assert read_identifying(str(tmp_path / "a.png")) == {}


def test_folder_listing(tmp_path):
    for name in ("b.dcm", "a.pgm", "IM0001", "notes.txt", ".hidden.dcm", "c.jpg", "d.JPEG"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    assert [Path(p).name for p in folder_files(tmp_path)] == ["IM0001", "a.pgm", "b.dcm", "c.jpg", "d.JPEG"]
    from mammodesk.qt.viewer.opening import file_filter

    assert "*.jpg" in file_filter() and "*.jpeg" in file_filter()  # the Open dialog offers what a folder lists


def _die_on_bad(path: str):
    if "bad" in Path(path).name:
        os._exit(3)
    return load(path)


def test_only_the_file_that_crashes_its_worker_is_blamed(qtbot, tmp_path):
    from mammodesk.qt.workers import CRASHED, LoaderBridge

    good = [write(make_dataset(phantom(seed=i, bits=12), bits_stored=12), tmp_path / f"good{i}.dcm") for i in range(3)]
    bad = write(make_dataset(phantom(bits=12), bits_stored=12), tmp_path / "bad.dcm")
    bridge = LoaderBridge()
    loaded, failed = [], []
    bridge.loaded.connect(lambda result: loaded.append(result.image.meta.source_path.name))
    bridge.failed.connect(lambda path, message: failed.append((Path(path).name, message)))
    try:
        for path in [good[0], bad, good[1], good[2]]:  # the crash breaks the pool under the others
            bridge._submit(_die_on_bad, str(path), bridge._on_loaded)
        qtbot.waitUntil(lambda: len(loaded) + len(failed) == 4 and bridge.pending == 0, timeout=120_000)
    finally:
        bridge.shutdown()
    assert sorted(loaded) == ["good0.dcm", "good1.dcm", "good2.dcm"]
    assert failed == [("bad.dcm", CRASHED)]


def test_display_copy_levels_halve_down_to_the_coarsest_and_pick_the_view_s_detail():
    from mammodesk.io.display import COARSEST, DISPLAY_LONGEST, display_copy

    pixels = np.arange(4096 * 3328, dtype=np.uint16).reshape(4096, 3328)
    copy = display_copy(pixels)
    levels = [copy]
    while levels[-1].coarser is not None:
        levels.append(levels[-1].coarser)
    assert [max(level.pixels.shape) for level in levels] == [DISPLAY_LONGEST, DISPLAY_LONGEST // 2]
    assert all(level.pixels.dtype == np.uint16 for level in levels)  # the same window LUT applies
    assert max(levels[-1].pixels.shape) // 2 < COARSEST
    for level in levels:  # the scale maps copy pixels back onto the source
        assert level.scale == (4096 / level.pixels.shape[0], 3328 / level.pixels.shape[1])
    assert copy.level_for(1.0) is copy  # zoomed in: every copy pixel is needed
    assert copy.level_for(levels[1].factor - 0.01) is copy
    assert copy.level_for(levels[1].factor) is levels[1]  # a 2x2 view at 1080p: a quarter of the pixels
    assert copy.level_for(100.0) is levels[-1]
    assert display_copy(pixels[:1024, :1024]) is None  # small enough to show as it is
