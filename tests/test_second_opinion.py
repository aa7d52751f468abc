"""The second opinion end to end (pytest-qt, offscreen): every bundled model
runs on a real MIAS image and a real CBIS-DDSM DICOM through the model panel,
answers arrive from the worker, the heat map is a layer aligned with the image,
answers can be accepted as annotations, and failures are reported, not raised.
The Qt-free state (targets, cache, accept, overlay settings) is tested without a window."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from onnx_models import build_model

from mammodesk.anatomy import read_anatomy
from mammodesk.inference import ModelLibrary
from mammodesk.inference.scan import scan_windows
from mammodesk.io import Image, ImageMeta, read_image
from mammodesk.preprocessing.spatial import breast_mask
from mammodesk.state.opinion import OpinionState, Target, cache_key
from mammodesk.state.opinion_jobs import run_opinion
from mammodesk.state.viewer import Document, default_window

RUN_TIMEOUT = 240_000


@pytest.fixture(scope="module")
def library():
    return ModelLibrary()


@pytest.fixture(scope="module")
def bundled(library) -> dict:
    """The models shipped in resources/models/: only those that beat the plain baseline."""
    return {e.name: e for e in library.entries if e.bundled and e.card is not None}


@pytest.fixture(scope="module")
def patch_model(bundled) -> str:
    return next(name for name, e in bundled.items() if e.card.roi.mode == "patches")


@pytest.fixture(scope="module")
def test_models(tmp_path_factory) -> Path:
    """Contract models with known maps (tests/onnx_models.py): a whole-image one and one with per-branch maps,
    for the panel's whole-image and branch paths, which no bundled model exercises."""
    folder = tmp_path_factory.mktemp("test-models")
    build_model(folder / "whole-test.onnx", cam_peak=(4, 4), metadata={"metrics": {"how": "test", "auc": {"mean": 0.5, "sd": 0.0}}})
    build_model(folder / "branches-test.onnx", branches=True)
    return folder


def document_for(path) -> Document:
    image = read_image(path)
    return Document(image, default_window(image), read_anatomy(image))


def overlay_on(window, canvas):
    return window.second_opinion.layer.overlay_on(canvas)


def assert_layer_aligned(canvas, overlay, row: int, col: int) -> None:
    """The heat-map pixel over source (row, col) is drawn where the mammogram draws that pixel."""
    x0, y0, sx, sy = overlay._placement
    on_layer = overlay.item.mapToView(QtCore.QPointF((col + 0.5 - x0) / sx, (row + 0.5 - y0) / sy))
    on_image = canvas.image_item.mapToView(QtCore.QPointF(col + 0.5, row + 0.5))
    assert abs(on_layer.x() - on_image.x()) < 1 and abs(on_layer.y() - on_image.y()) < 1


def run_and_wait(qtbot, window, entry=None, mode="auto", all_images=False) -> None:
    opinion = window.second_opinion
    with qtbot.waitSignal(opinion.idle, timeout=RUN_TIMEOUT):
        assert opinion.run(entry, mode, all_images) > 0


def test_bundled_models_beat_their_baseline_and_carry_cards(bundled):
    assert bundled, "no bundled model"
    for name, entry in bundled.items():
        card = entry.card
        assert card.metrics["auc"]["sd"] > 0 and "cross-validation" in card.metrics["how"]
        comparison = card.metrics["baseline"]
        assert comparison["beats_baseline"] and comparison["difference"]["mean"] > comparison["spread"], name
        assert card.calibration and card.graph_sha256
        assert entry.path.with_suffix(".md").is_file()
        assert entry.path.stat().st_size < 25 * 1024 * 1024


def test_every_bundled_model_in_the_app_with_overlay_and_findings(qtbot, window, bundled, patch_model, test_models,
                                                                   mias_images, cbis_dicoms, tmp_path):
    import cv2

    mias = next(p for p in mias_images if p.name == "mdb010.pgm")
    window.open_paths([str(mias)])
    window.opinions.add_model_folder(str(test_models))
    qtbot.waitUntil(lambda: len(window.state.documents) == 1, timeout=60_000)
    document = window.state.documents[0]
    panel = window.second_opinion.panel
    names = [*bundled, "whole-test", "branches-test"]
    for name in names:
        panel.select_model(name)
        run_and_wait(qtbot, window, panel.current_entry(), "auto")
    answers = {o.model_name: o for o in window.opinions.for_document(document)}
    assert set(answers) == set(names), [o.error for o in window.opinions.opinions]
    assert all(o.error is None for o in answers.values()), [o.error for o in answers.values()]
    assert answers[patch_model].target.kind == "scan"  # no ROI placed: the breast is scanned
    assert panel.findings.topLevelItemCount() == len(names)

    # A whole-image map drawn as a layer over the image: the layer's peak pixel lands on the same
    # screen point as that source pixel of the mammogram, mirrored display included.
    window.opinions.select(answers["whole-test"])
    grid = panel.bars.layout()
    shown_labels = [grid.itemAt(i).widget().text() for i in range(grid.count())
                    if isinstance(grid.itemAt(i).widget(), QtWidgets.QLabel)]
    assert len(panel.bars.bars) == len(answers["whole-test"].prediction.labels)
    for bar in panel.bars.bars:  # each percentage beside its bar, never drawn over the bar's end
        assert not bar.isTextVisible() and bar.format() in shown_labels
    canvas = window.area.canvases[0]
    overlay = overlay_on(window, canvas)
    assert overlay.item.isVisible() and overlay.peak is not None
    row, col = overlay.peak
    shown = window.opinions.overlay_map(answers["whole-test"])[0]
    assert_layer_aligned(canvas, overlay, row, col)
    item_rect = overlay.item.mapRectToView(overlay.item.boundingRect())
    assert abs(item_rect.width() - shown.values.shape[1]) < 2 and abs(item_rect.height() - shown.values.shape[0]) < 2

    # H toggles the layer, never the pixels.
    pixels_before = canvas.image_item.image.copy()
    window.actions_["overlay"].trigger()
    assert not overlay.item.isVisible() and not window.opinions.overlay.visible
    window.actions_["overlay"].trigger()
    assert overlay.item.isVisible()
    np.testing.assert_array_equal(canvas.image_item.image, pixels_before)

    # Opacity only recolours: alpha scales, colours stay.
    rgba_before = overlay.shown_rgba().copy()
    panel.opacity.setValue(30)
    rgba_after = overlay.shown_rgba()
    assert rgba_after[..., 3].max() < rgba_before[..., 3].max()
    np.testing.assert_array_equal(rgba_after[..., :3], rgba_before[..., :3])

    # Per-branch maps; the scan of the patch model lands inside the breast.
    assert {"combined", "branch_b"} <= set(answers["branches-test"].map_names())
    scan = answers[patch_model]
    window.opinions.select(scan)
    row, col = overlay.peak
    assert breast_mask(document.image.pixels)[row, col]
    assert_layer_aligned(canvas, overlay, row, col)

    # The findings entry becomes an annotation linked to the model and its weights.
    panel.accept_button.click()
    finding = window.opinions.accepted[document.id][-1]
    assert finding.attributes["model"] == patch_model
    assert finding.attributes["weights_sha256"] == scan.entry.card.weights_sha256
    assert finding.shape is not None and finding.source.startswith(f"model:{patch_model}@")
    labelled = window.labelling.state.sheets[document.id].labels.findings[-1]  # an editable, saved ROI too
    assert labelled.source == finding.source and labelled.attributes["model"] == patch_model
    assert labelled.shape.bbox() == pytest.approx([v - 0.5 for v in finding.shape.bbox()])
    window.labelling.state.undo(document.id)  # leave the shared folder's sidecar empty again

    # A mirrored copy whose name still says left breast is shown flipped back to the standard
    # orientation; the layer flips with it.
    mirrored = tmp_path / "mdb010-mirrored.png"
    cv2.imwrite(str(mirrored), np.ascontiguousarray(document.image.pixels[:, ::-1]))
    window.open_paths([str(mirrored)])
    qtbot.waitUntil(lambda: len(window.state.documents) == 2, timeout=60_000)
    window.state.set_active(window.state.documents[1])
    panel.select_model("whole-test")
    run_and_wait(qtbot, window, panel.current_entry())
    assert canvas.flip and canvas.document is window.state.documents[1]
    row, col = overlay.peak
    assert_layer_aligned(canvas, overlay, row, col)

    # A real CBIS-DDSM DICOM (no pixel spacing, so the patch model needs an assumed one): it scans that too.
    window.open_paths([str(cbis_dicoms[0])])
    qtbot.waitUntil(lambda: len(window.state.documents) == 3, timeout=60_000)
    window.state.set_active(window.state.documents[2])
    panel.select_model(patch_model)
    panel.spacing.setValue(0.05)
    panel.assume_spacing.setChecked(True)
    run_and_wait(qtbot, window, panel.current_entry())
    dicom_answer = window.opinions.for_document(window.state.documents[2])[-1]
    assert dicom_answer.error is None and dicom_answer.prediction.heatmaps is not None


def test_vae_reconstruction_is_offered_beside_the_map(qtbot, window, mias_images, tmp_path):
    torch = pytest.importorskip("torch")
    from mammodesk_train.data.tasks import get_task
    from mammodesk_train.engine import FitConfig
    from mammodesk_train.families.vae_cnn import TrainedVaeCnn, VaeCnnFamily, VaeCnnPreset
    from mammodesk_train.models.vae_cnn import VAE, LatentClassifier

    torch.manual_seed(0)
    preset = VaeCnnPreset("tiny", "test", 16, 24, (4, 4, 4), 8, FitConfig(epochs=1), FitConfig(epochs=1))
    model = TrainedVaeCnn(VAE(24, 16, (4, 4, 4), 8).eval(), LatentClassifier(3).eval())
    VaeCnnFamily(preset, device="cpu", progress=False).export(
        model, get_task("density"), tmp_path / "models" / "vae-tiny.onnx", {"dataset": "synthetic"},
        {"how": "untrained"}, "vae-tiny")
    window.opinions.add_model_folder(str(tmp_path / "models"))
    window.open_paths([str(mias_images[0])])
    qtbot.waitUntil(lambda: len(window.state.documents) == 1, timeout=60_000)
    panel = window.second_opinion.panel
    panel.select_model("vae-tiny")
    assert "vae-reconstruction" in panel.current_entry().companions
    run_and_wait(qtbot, window, panel.current_entry())
    answer = window.opinions.for_document(window.state.documents[0])[-1]
    assert answer.error is None and answer.reconstruction is not None


def test_placed_roi_runs_roi_models_there_and_answers_are_cached(qtbot, window, patch_model, mias_images):
    window.open_paths([str(mias_images[0])])
    qtbot.waitUntil(lambda: len(window.state.documents) == 1, timeout=60_000)
    document = window.state.documents[0]
    panel = window.second_opinion.panel
    panel.select_model(patch_model)
    window.actions_["place_roi"].trigger()
    rows, cols = document.image.shape
    window.second_opinion.on_clicked(document, cols * 0.6, rows * 0.5)
    box = window.opinions.rois[document.id][0]
    assert box[2] - box[0] == pytest.approx(120, abs=1)  # the model's 120-pixel ROI at MIAS spacing
    run_and_wait(qtbot, window, panel.current_entry(), "auto")
    answer = window.opinions.for_document(document)[-1]
    assert answer.target == Target("roi", box) and answer.prediction.votes.sum() == 25
    assert window.second_opinion.run(panel.current_entry(), "auto") == 0  # the same request: from the cache
    assert window.opinions.selected is answer


def test_failures_are_reported_in_the_panel(qtbot, window, patch_model, tmp_path):
    small = tmp_path / "tiny.png"
    import cv2

    cv2.imwrite(str(small), np.full((40, 40), 120, np.uint8))
    window.open_paths([str(small)])
    qtbot.waitUntil(lambda: len(window.state.documents) == 1, timeout=60_000)
    panel = window.second_opinion.panel
    panel.select_model(patch_model)
    run_and_wait(qtbot, window, panel.current_entry(), "scan")
    answer = window.opinions.opinions[-1]
    assert answer.error and "smaller" in answer.error
    assert "failed" in panel.findings.topLevelItem(0).text(0)
    assert window.isVisible()

    broken = tmp_path / "models"
    broken.mkdir()
    (broken / "not-a-model.onnx").write_bytes(b"\x00garbage")
    window.opinions.add_model_folder(str(broken))
    unusable = [panel.models.item(i).text() for i in range(panel.models.count()) if "unusable" in
                panel.models.item(i).text()]
    assert unusable == ["not-a-model.onnx  (unusable)"]


def test_cache_key_follows_image_model_and_region(test_models, mias_images, tmp_path):
    library = ModelLibrary([test_models])
    entry = library.find("whole-test")
    first, second = document_for(mias_images[0]), document_for(mias_images[0])
    key = cache_key(first, entry, Target("whole"), None)
    assert key == cache_key(first, entry, Target("whole"), None)
    assert key != cache_key(second, entry, Target("whole"), None)  # another image (even the same file reopened)
    assert key != cache_key(first, entry, Target("roi", (0, 0, 10, 10)), None)
    copy = tmp_path / "copy.onnx"
    shutil.copy(entry.path, copy)
    assert key != cache_key(first, library.find(copy), Target("whole"), None)  # another model file


def test_state_targets_accept_and_overlay_validation(test_models, patch_model, mias_images):
    library = ModelLibrary([test_models])
    state = OpinionState(library)
    document = document_for(mias_images[0])
    fusion, vae = library.find(patch_model), library.find("whole-test")
    assert state.targets_for(vae, document) == [Target("whole")]
    assert state.targets_for(fusion, document) == [Target("scan")]
    assert state.targets_for(fusion, document, scan_when_no_roi=False) == []  # "Run all": no scan of its own
    assert state.targets_for(fusion, document, "scan", scan_when_no_roi=False) == [Target("scan")]
    state.add_roi(document, (10, 20, 130, 140))
    state.add_roi(document, (200, 200, 320, 320))
    assert [t.box for t in state.targets_for(fusion, document)] == [(10, 20, 130, 140), (200, 200, 320, 320)]
    assert state.targets_for(fusion, document, "last_roi") == [Target("roi", (200.0, 200.0, 320.0, 320.0))]
    with pytest.raises(ValueError, match="opacity"):
        state.set_overlay(opacity=1.5)
    with pytest.raises(ValueError, match="colour map"):
        state.set_overlay(colour_map="rainbow")
    opinion = run_opinion(library, vae, document, document.image, Target("whole"), prefer_gpu=False)
    state.add(opinion)
    finding = state.accept(opinion)
    assert finding.shape is None and finding.attributes["model_label"] in ("normal", "abnormal")
    assert state.cached(document, vae, Target("whole")) is opinion


def test_scan_windows_cover_the_breast_at_the_model_scale(library, patch_model, mias_images):
    image = read_image(next(p for p in mias_images if p.name == "mdb023.pgm"))
    runner = library.runner(patch_model, prefer_gpu=False)
    boxes = scan_windows(image, runner)
    mask = breast_mask(image.pixels)
    centres = np.column_stack([(boxes[:, 1] + boxes[:, 3]) / 2, (boxes[:, 0] + boxes[:, 2]) / 2]).astype(int)
    assert len(boxes) > 10 and mask[centres[:, 0], centres[:, 1]].all()
    assert np.allclose(boxes[:, 2] - boxes[:, 0], 120)  # 24 mm at 0.2 mm per pixel
    blank = Image(np.zeros((400, 400), np.uint8), ImageMeta(pixel_spacing_mm=(0.2, 0.2)))
    with pytest.raises(Exception, match="no breast"):
        scan_windows(blank, runner)


def test_demo_runs_the_models_on_the_four_views(qtbot, window, cbis_dicoms):
    from mammodesk.cli import demo_files

    files = demo_files()
    window.open_paths(files)
    window.state.set_layout("2x2")
    with qtbot.waitSignal(window.second_opinion.idle, timeout=RUN_TIMEOUT * 2):
        window.run_models_when_loaded(assumed_spacing_mm=0.05)
    assert len({o.document.id for o in window.opinions.opinions}) == 4
    assert all(o.error is None for o in window.opinions.opinions), [o.error for o in window.opinions.opinions]
    documents = list(window.state.documents)
    for canvas in window.area.visible_canvases():  # a view shows its map (and its box) only where it has an answer
        view, caveat = window.opinions.as_read(window.opinions.shown_for(canvas.document), documents)
        overlay = overlay_on(window, canvas)
        assert overlay.item.isVisible() == (not caveat and not view.caveat)
        assert not (caveat or view.caveat) or not overlay._boxes
    best = window.opinions.selected  # the demo ends on the model with the best cross-validated AUC
    assert best is not None and best.document is window.state.active
    assert best.entry.card.roi.mode == "image"  # the whole-mammogram reader is the default answer (#23)


def test_switching_views_switches_the_answer(qtbot, window, test_models, mias_images):
    """A reader's safety rule: the answer in the panel is always the active view's, named above it,
    and every findings row says which view it is about."""
    first, second = (next(p for p in mias_images if p.name == name) for name in ("mdb001.pgm", "mdb002.pgm"))
    window.opinions.add_model_folder(str(test_models))
    window.open_paths([str(first), str(second)])
    qtbot.waitUntil(lambda: len(window.state.documents) == 2, timeout=60_000)
    by_name = {d.name: d for d in window.state.documents}
    panel = window.second_opinion.panel
    panel.select_model("whole-test")
    window.state.set_active(by_name["mdb001.pgm"])
    run_and_wait(qtbot, window, panel.current_entry())
    assert window.opinions.selected.document is by_name["mdb001.pgm"]
    assert "mdb001.pgm" in panel.about.text()

    window.state.set_active(by_name["mdb002.pgm"])  # no answer for it yet: none is shown, and it says so
    assert window.opinions.selected is None and not panel.bars.bars
    assert "mdb002.pgm" in panel.about.text() and "no answer yet" in panel.about.text()
    run_and_wait(qtbot, window, panel.current_entry())
    assert window.opinions.selected.document is by_name["mdb002.pgm"]

    window.state.set_active(by_name["mdb001.pgm"])  # back: its own answer again, from the same model
    assert window.opinions.selected.document is by_name["mdb001.pgm"]
    assert panel.about.text().startswith(by_name["mdb001.pgm"].anatomy.label) and "mdb001.pgm" in panel.about.text()
    rows = [panel.findings.topLevelItem(i).text(0) for i in range(panel.findings.topLevelItemCount())]
    assert sorted(r.splitlines()[0] for r in rows) == sorted(
        f"{d.anatomy.label} · {d.name}" for d in by_name.values())  # each row leads with its view and file

    # Picking the other view's row in the findings makes that view active: panel and view agree.
    row = next(i for i, text in enumerate(rows) if "mdb002.pgm" in text.splitlines()[0])
    panel.findings.setCurrentItem(panel.findings.topLevelItem(row))
    assert window.state.active is by_name["mdb002.pgm"] and window.opinions.selected.document is by_name["mdb002.pgm"]

    # Answers arriving for a view that is not active never take over the panel.
    window.state.set_active(by_name["mdb001.pgm"])
    shown = window.opinions.selected
    window.opinions.add(next(o for o in window.opinions.opinions if o.document is by_name["mdb002.pgm"]))
    assert window.opinions.selected is shown and shown.document is by_name["mdb001.pgm"]


def test_the_reader_answers_each_breast_above_the_views(qtbot, window, bundled, mias_images):
    """The default second opinion is the whole-mammogram reader's: per view with a location, and an
    exam line per breast at its operating point, above the views' detail."""
    reader = next(e for e in bundled.values() if e.card.roi.mode == "image")
    right, left = (next(p for p in mias_images if p.name == n) for n in ("mdb001.pgm", "mdb002.pgm"))
    window.open_paths([str(right), str(left)])
    qtbot.waitUntil(lambda: len(window.state.documents) == 2, timeout=60_000)
    window.state.set_layout("2x2")
    window.opinions.assumed_spacing_mm = 0.2
    left_document = next(d for d in window.state.documents if d.name == "mdb002.pgm")
    window.opinions.add_roi(left_document, (300.0, 300.0, 420.0, 420.0))
    run_and_wait(qtbot, window, None, all_images=True)  # every model, as the demo runs them
    panel = window.second_opinion.panel
    # Run all asks an ROI model about the ROI placed, never for a breast scan of its own
    roi_answers = [o for o in window.opinions.opinions if not o.entry.card.reads_whole_image]
    assert roi_answers and all(o.target.kind == "roi" and o.document is left_document for o in roi_answers)
    for document in window.state.documents:
        assert window.opinions.best_for(document).entry.path == reader.path  # the reader speaks first
    answers = [o for o in window.opinions.opinions if o.entry.path == reader.path]
    assert len(answers) == 2 and all(o.view is not None and o.prediction.roi_box for o in answers)
    lines = panel.exam.text()
    assert panel.exam.isVisibleTo(panel) and lines.index("Exam:") < lines.index("R breast:") < lines.index("L breast:")
    assert "any abnormality" in lines and "benign included" in lines and "not cancer" in lines  # what was learnt
    from mammodesk.inference.bilateral import Bilateral

    levels = reader.card.level_rules
    bilateral = Bilateral.from_card(reader.card.bilateral)  # with it, each MLO is read against the other's
    assert bilateral is not None and levels.breast is not None and levels.rule is not None
    alone = {o.view.laterality: o.view for o in answers}
    exam = window.opinions.exam(list(window.state.documents))
    for breast in exam.breasts:
        (view,) = breast.views
        own, other = alone[breast.laterality], alone["L" if breast.laterality == "R" else "R"]
        expected = bilateral.probability(own.logit, other.logit)
        assert view.compared_with == other.name and view.alone == own.probability
        assert view.probability == pytest.approx(expected) and breast.probability == view.probability  # one number
        assert f"{breast.name}: {levels.breast.answer(expected)} · score {levels.breast.score(expected)}/10" in lines
        opinion = next(o for o in answers if o.view.laterality == breast.laterality)
        documents = list(window.state.documents)  # the view's marker is drawn when its breast is flagged
        assert window.opinions.marks_a_place(opinion, documents) == levels.breast.flagged(expected)
        window.opinions.select(opinion)  # its bars show the breast's one number, the view alone on request
        assert panel.bars.bars[1].value() == round(expected * 1000)
        captions = [w.text() for w in panel.findChildren(QtWidgets.QLabel) if "probabilities" in w.text()]
        assert any(f"read against {other.name}" in c and "place this p among the normal cases" in c
                   for c in captions)  # why a p under a half can answer 'abnormal'
        assert window.opinions.summary(opinion).startswith(levels.breast.answer(expected))
    expected = levels.rule.probability([alone["R"].logit, alone["L"].logit])
    assert exam.ruled and exam.probability == pytest.approx(expected)
    answer, any_flagged = levels.exam.answer(expected), any(breast.flagged for breast in exam.breasts)
    if (answer == "normal" and any_flagged) or (answer == "abnormal" and not any_flagged):
        answer = "no clear answer"  # the exam agrees with its breasts
    assert f"Exam: {answer}" in lines and f"score {levels.exam.score(expected)}/10" in lines
    for opinion in answers:  # the map shown is of the finding, whatever the answer's class
        _, name, index = window.opinions.overlay_map(opinion)
        assert name == "patch probability" and opinion.prediction.labels[index] == "abnormal"


def test_heat_map_colours_fade_in_above_the_threshold_and_hide_the_unanalysed():
    from mammodesk.qt.opinion.overlay import colour_lut, rgba
    from mammodesk.state.opinion import OverlaySettings

    settings = OverlaySettings(opacity=0.5, threshold=0.3, colour_map="inferno")
    RAMP = settings.ramp  # noqa: N806
    values = np.array([[np.nan, np.inf, 0.0, 0.2, 0.299, 0.3 + RAMP / 2, 0.3 + RAMP, 1.0]], np.float32)
    out = rgba(values, settings)
    assert out.shape == (1, values.shape[1], 4) and out.dtype == np.uint8
    alpha = out[0, :, 3].astype(int)
    assert (alpha[:5] == 0).all()  # not analysed, zero, and below the threshold: not drawn
    assert abs(alpha[5] - 0.5 * 255 / 2) <= 2  # halfway up the ramp: half the opacity
    assert alpha[6] >= 126 and alpha[7] == int(0.5 * 255)  # past the ramp: the full opacity, no more
    assert (out[0, 7, :3] == colour_lut("inferno")[255]).all()
    brighter = rgba(values, OverlaySettings(opacity=1.0, threshold=0.3, colour_map="inferno"))
    assert brighter[0, 7, 3] == 255 and (brighter[0, :5, 3] == 0).all()  # the table follows the settings
    steep = rgba(values, OverlaySettings(opacity=0.5, threshold=0.3, ramp=0.05))
    assert steep[0, 5, 3] == int(0.5 * 255)  # a reader's map: full colour a little above its operating point


def test_run_and_ctrl_r_ask_the_whole_mammogram_reader_first(window, bundled):
    """With nothing chosen, the model Run (and Ctrl+R) asks is the reader, as `predict` without --model, not
    the first file in the folder (an ROI model, whose Run would scan the breast in windows)."""
    panel = window.second_opinion.panel
    reader = next(e for e in bundled.values() if e.card.roi.mode == "image")
    assert panel.current_entry() is not None and panel.current_entry().path == reader.path
    assert window.opinions.library.default_reader().path == reader.path


def test_an_exam_still_being_read_looks_unfinished(window):
    from mammodesk.inference.exam import ViewAnswer, combine
    from mammodesk.inference.levels import Level, Levels

    level = Level("view", 0.3, 0.5, tuple(np.linspace(0.1, 0.9, 9)))
    exam = combine([ViewAnswer("R MLO", "R", "MLO", 0.9, scale=level)], Levels(level, population="MIAS: test"))
    panel = window.second_opinion.panel
    panel.show_exam(exam, running=True)
    assert "not final" in panel.exam.text() and "#7f8c8d" in panel.exam.text().split("<br>")[0]  # grey, said
    panel.show_exam(exam, running=False)
    assert "not final" not in panel.exam.text() and "#c0392b" in panel.exam.text().split("<br>")[0]  # red once done


def test_a_model_folder_added_once_is_there_at_the_next_start(qtbot, window, test_models, tmp_path):
    from PySide6 import QtCore

    from mammodesk.qt.app import MainWindow

    window.second_opinion.add_model_folder(str(test_models))
    assert "whole-test" in [e.name for e in window.opinions.library.entries]
    window.settings.sync()
    again = MainWindow(QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert "whole-test" in [e.name for e in again.opinions.library.entries]
    again.close()


def test_inference_reads_the_breast_found_at_load(library, bundled, mias_images, monkeypatch):
    """The breast outline and the anatomy are found once, when the image is added; the reader's answer and
    a scan's windows read them from the document, never again from the pixels."""
    from mammodesk.inference import exam, scan as scan_module
    from mammodesk.state.viewer import ViewerState

    image = read_image(next(p for p in mias_images if p.name == "mdb001.pgm"))
    document = ViewerState().add_image(image)
    assert document.outline is not None and document.outline.mask.any()
    expected = run_opinion(library, next(e for e in bundled.values() if e.card.mode.whole_mammogram), document,
                           image, Target("whole"))

    def found_again(*_args, **_kwargs):
        raise AssertionError("the breast was found again")

    monkeypatch.setattr(exam, "outline_breast", found_again)
    monkeypatch.setattr(exam, "read_anatomy", found_again)
    monkeypatch.setattr(scan_module, "read_anatomy", found_again)
    reader = next(e for e in bundled.values() if e.card.mode.whole_mammogram)
    opinion = run_opinion(library, reader, document, image, Target("whole"))
    assert opinion.error is None and opinion.view is not None
    assert (opinion.view.probability, opinion.view.above_nipple, opinion.view.box) == \
        (expected.view.probability, expected.view.above_nipple, expected.view.box)
    runner = library.runner(bundled[next(n for n, e in bundled.items() if e.card.mode.votes)].path)
    assert len(scan_windows(image, runner, anatomy=document.anatomy)) > 0


def test_a_run_is_planned_in_state_without_a_window(tmp_path, mias_images):
    """Run is a state action: whole-image models first, ROI models on the ROIs placed (a scan only when one
    is asked for by name), and answers already known shown again without a job."""
    build_model(tmp_path / "whole.onnx")
    build_model(tmp_path / "roi.onnx", mode="roi", roi={"mode": "roi", "size": 64})
    opinions = OpinionState(ModelLibrary([tmp_path], include_bundled=False))
    document = document_for(mias_images[0])
    roi_model = next(e for e in opinions.models if e.name == "roi")
    assert [(j.entry.name, j.target.kind) for j in opinions.plan_run(None, [document])] == [("whole", "whole")]
    assert [j.target.kind for j in opinions.plan_run(roi_model, [document])] == ["scan"]
    opinions.add_roi(document, (300.0, 300.0, 420.0, 420.0))
    jobs = opinions.plan_run(None, [document])
    assert [(j.entry.name, j.target.kind) for j in jobs] == [("whole", "whole"), ("roi", "roi")]
    answer = run_opinion(opinions.library, jobs[0].entry, document, jobs[0].image, jobs[0].target)
    opinions.add(answer)
    opinions.opinions.clear()
    assert [(j.entry.name, j.target.kind) for j in opinions.plan_run(None, [document])] == [("roi", "roi")]
    assert opinions.opinions == [answer]  # the known answer is shown again
