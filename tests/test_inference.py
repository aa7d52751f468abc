"""The inference engine end to end on real MIAS images, with ONNX models
built in the tests (see onnx_models.py)."""

from __future__ import annotations

import threading

import numpy as np
import onnxruntime as ort
import pytest
from onnx_models import build_model

from mammodesk.annotations import Circle, Rect, read_mias_info
from mammodesk.inference import ModelInputError, ModelLibrary, ModelRunner
from mammodesk.inference import runner as runner_module
from mammodesk.inference.patches import patch_positions
from mammodesk.io import Image, ImageMeta, read_image


@pytest.fixture(scope="module")
def mdb001(mias_dir):
    return read_image(mias_dir / "mdb001.pgm")


def test_whole_image_prediction_and_cam_geometry(tmp_path, mdb001):
    runner = ModelRunner(build_model(tmp_path / "whole.onnx"))
    prediction = runner.predict(mdb001)
    processed = runner.card.spec.apply(mdb001)
    expected_class = int(processed.array.mean() > 0.5)
    assert prediction.probabilities.shape == (2,)
    assert prediction.probabilities.sum() == pytest.approx(1.0)
    assert prediction.predicted_index == expected_class
    # the hot CAM cell (row 2, column 5 of 8x8 over the 64x64 input) maps through crop + flip + resize
    cell_centre = [[(5 + 0.5) * 8 - 0.5, (2 + 0.5) * 8 - 0.5]]
    expected = processed.geometry.inverse_points(cell_centre)[0]
    for class_index in (0, 1):
        peak_row, peak_col = prediction.heatmaps.source(class_index).peak()
        pixel = 1 / abs(processed.geometry.matrix[0, 0])
        assert abs(peak_col - expected[0]) <= pixel and abs(peak_row - expected[1]) <= pixel
    # mdb001 is a right breast: the spec flips it, so the map must be mirrored back
    assert expected[0] < 1024 / 2 + 300
    window = prediction.heatmaps.source(1)
    assert 0.9 < np.nanmax(window.values) <= 1.0 and np.nanmin(window.values) >= 0  # bilinear: near the cell peak
    full = window.full(mdb001.shape)
    assert full.shape == mdb001.shape and np.isnan(full).any()  # the background crop is not covered


def test_probabilities_match_softmax_of_graph(tmp_path, mdb001):
    runner = ModelRunner(build_model(tmp_path / "three.onnx", labels=("a", "b", "c")))
    mean = runner.card.spec.apply(mdb001).array.mean()
    logits = np.linspace(-10, 10, 3) * mean - np.linspace(-10, 10, 3) * 0.5
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(runner.predict(mdb001).probabilities, expected, rtol=1e-5)


def test_binary_sigmoid_model(tmp_path, mdb001):
    runner = ModelRunner(build_model(tmp_path / "sig.onnx", activation="sigmoid"))
    prediction = runner.predict(mdb001)
    p = 1 / (1 + np.exp(-(20 * runner.card.spec.apply(mdb001).array.mean() - 10)))
    np.testing.assert_allclose(prediction.probabilities, [1 - p, p], rtol=1e-5)
    raw = prediction.heatmaps.raw["combined"][0]
    np.testing.assert_allclose(prediction.heatmaps.model_space("combined", 0), np.maximum(-raw, 0) / np.maximum(-raw, 0).max())


def test_model_without_cams_says_so(tmp_path, mdb001):
    runner = ModelRunner(build_model(tmp_path / "nocam.onnx", cams=False))
    assert not runner.card.has_cams and runner.predict(mdb001).heatmaps is None


def test_branch_cams_are_exposed(tmp_path, mdb001):
    prediction = ModelRunner(build_model(tmp_path / "hy.onnx", branches=True)).predict(mdb001)
    assert prediction.heatmaps.names == ("combined", "branch_b")
    assert prediction.heatmaps.source(1, "branch_b").values.shape == prediction.heatmaps.source(1).values.shape


def test_rgb_models(tmp_path, mdb001):
    prediction = ModelRunner(build_model(tmp_path / "rgb.onnx", channels=3)).predict(mdb001)
    assert prediction.probabilities.sum() == pytest.approx(1.0)


def test_roi_mode_uses_model_size_and_spacing(tmp_path, mias_dir, mdb001):
    roi = {"mode": "roi", "size": 120, "spacing_mm": 0.2}
    runner = ModelRunner(build_model(tmp_path / "roi.onnx", mode="roi", size=64, roi=roi,
                                     spec=[{"op": "resize", "params": {"width": 64, "height": 64}}, {"op": "normalise"}]))
    finding = read_mias_info(mias_dir / "Info.txt")["mdb001"].located_findings[0]
    prediction = runner.predict(mdb001, finding.shape)
    cx, cy = finding.shape.cx, finding.shape.cy
    assert prediction.roi_box == (round(cx - 60), round(cy - 60), round(cx + 60), round(cy + 60))
    assert prediction.heatmaps.source(1).values.shape == (120, 120)
    # the hot cell (2, 5) of the 8x8 map over the 64x64 input, in source pixels: ROI origin + scaled cell centre
    peak_row, peak_col = prediction.heatmaps.source(1).peak()
    x0, y0 = prediction.roi_box[:2]
    assert abs(peak_col - (x0 + (5.5 * 8) * 120 / 64 - 0.5)) <= 2
    assert abs(peak_row - (y0 + (2.5 * 8) * 120 / 64 - 0.5)) <= 2
    finer = mdb001.with_meta(pixel_spacing_mm=(0.1, 0.1))  # the same ROI is 240 pixels at 100 microns
    fx0, fy0, fx1, fy1 = runner.predict(finer, finding.shape).roi_box
    assert (fx1 - fx0, fy1 - fy0) == (240, 240)
    assert prediction.notes == []
    no_spacing = mdb001.with_meta(pixel_spacing_mm=None)
    assert "no pixel spacing" in runner.predict(no_spacing, finding.shape).notes[0]


def test_roi_models_need_an_roi(tmp_path, mdb001):
    runner = ModelRunner(build_model(tmp_path / "roi.onnx", mode="roi", roi={"mode": "roi", "size": 64}))
    with pytest.raises(ModelInputError, match="give it an ROI"):
        runner.predict(mdb001)
    with pytest.raises(ModelInputError, match="outside"):
        runner.predict(mdb001, Rect(2000, 2000, 2100, 2100))


def test_roi_at_the_border_is_padded(tmp_path, mdb001):
    runner = ModelRunner(build_model(tmp_path / "roi.onnx", mode="roi", roi={"mode": "roi", "size": 64}))
    prediction = runner.predict(mdb001, Circle(5, 5, 10))
    assert prediction.roi_box == (0, 0, 37, 37)  # clipped to the image in the report
    assert prediction.probabilities.sum() == pytest.approx(1.0)


def test_patch_votes_are_deterministic_and_counted(tmp_path):
    roi = {"mode": "patches", "size": 120, "patch_size": 72, "patches": 25, "seed": 3}
    spec = [{"op": "resize", "params": {"width": 120, "height": 120}}, {"op": "normalise"}]
    runner = ModelRunner(build_model(tmp_path / "patch.onnx", mode="patches", size=72, roi=roi, spec=spec))
    pixels = np.zeros((300, 300), np.uint8)
    pixels[:, 150:] = 255  # left half dark, right half bright
    pixels[0, 0] = 1       # min-max normalisation keeps 0 and 255 at 0 and 1
    image = Image(pixels, ImageMeta())
    prediction = runner.predict(image, Rect(90, 90, 210, 210))
    processed = runner.card.spec.apply(Image(pixels[90:210, 90:210].copy()))
    positions = patch_positions((120, 120), 72, 25, 3)
    means = np.array([processed.array[y:y + 72, x:x + 72].mean() for y, x in positions])
    expected_votes = np.bincount((means > 0.5).astype(int), minlength=2)
    np.testing.assert_array_equal(prediction.votes, expected_votes)
    assert prediction.votes.sum() == 25 and prediction.patch_boxes.shape == (25, 4)
    assert prediction.predicted_index == int(np.argmax(expected_votes))
    again = runner.predict(image, Rect(90, 90, 210, 210))
    np.testing.assert_array_equal(again.votes, prediction.votes)
    votes = prediction.vote_maps.source(1, "votes").full(image.shape)
    assert np.nanmean(votes[100:200, 200:209]) > np.nanmean(votes[100:200, 91:100])  # bright side voted 1
    assert prediction.heatmaps.source(1).values.shape == (120, 120)


def test_patch_votes_on_a_real_mias_lesion(tmp_path, mias_dir, mdb001):
    roi = {"mode": "patches", "size": 120, "spacing_mm": 0.2, "patch_size": 72, "patches": 25, "seed": 11}
    spec = [{"op": "median", "params": {"ksize": 3}}, {"op": "clahe"},
            {"op": "resize", "params": {"width": 120, "height": 120}}, {"op": "normalise"}]
    finding = read_mias_info(mias_dir / "Info.txt")["mdb001"].located_findings[0]
    from mammodesk.preprocessing import PipelineSpec, crop_frame

    top, left = round(finding.shape.cy - 60), round(finding.shape.cx - 60)  # 120 px at 0.2 mm, as the model asks
    processed = PipelineSpec(spec).run(crop_frame(mdb001, top, left, 120, 120)).array
    means = np.array([processed[y:y + 72, x:x + 72].mean() for y, x in patch_positions((120, 120), 72, 25, 11)])
    threshold = float(np.median(means))  # so the votes split
    runner = ModelRunner(build_model(tmp_path / "fusion.onnx", mode="patches", size=72, roi=roi, spec=spec,
                                     threshold=threshold))
    prediction = runner.predict(mdb001, finding.shape)
    expected = np.bincount((means > threshold).astype(int), minlength=2)
    assert expected.min() >= 5
    np.testing.assert_array_equal(prediction.votes, expected)
    assert prediction.roi_box == (left, top, left + 120, top + 120)
    votes = prediction.vote_maps.source(1, "votes")
    assert votes.values.shape == (120, 120) and 0.0 < np.nanmean(votes.values) < 1.0


def test_batch_equals_single(tmp_path, mias_images):
    runner = ModelRunner(build_model(tmp_path / "whole.onnx"))
    images = [read_image(path) for path in mias_images[:5]]
    batched = runner.predict_many(images, batch_size=2)
    for image, result in zip(images, batched):
        np.testing.assert_allclose(result.probabilities, runner.predict(image).probabilities, rtol=1e-6)


def test_threads_share_a_runner(tmp_path, mias_images):
    runner = ModelRunner(build_model(tmp_path / "whole.onnx"))
    images = [read_image(path) for path in mias_images[:4]]
    expected = [runner.predict(image).probabilities for image in images]
    results: dict[int, np.ndarray] = {}

    def work(index):
        results[index] = runner.predict(images[index]).probabilities

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in range(4):
        np.testing.assert_allclose(results[index], expected[index])


def test_providers_are_reported_honestly(tmp_path):
    runner = ModelRunner(build_model(tmp_path / "whole.onnx"))
    assert runner.providers[-1] == "CPUExecutionProvider"
    if runner.device == "CPU" and "CUDAExecutionProvider" in ort.get_available_providers():
        assert "CUDA requested but unavailable" in runner.fallback_reason  # onnxruntime-gpu without a GPU
    cpu_only = ModelRunner(tmp_path / "whole.onnx", prefer_gpu=False)
    assert cpu_only.providers == ["CPUExecutionProvider"] and cpu_only.fallback_reason is None


class _OomSession:
    def get_providers(self):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def run(self, names, feeds):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : CUDA failure 2: out of memory")


def test_gpu_out_of_memory_retries_on_cpu(tmp_path, mdb001, caplog):
    runner = ModelRunner(build_model(tmp_path / "whole.onnx"), prefer_gpu=False)
    expected = runner.predict(mdb001).probabilities
    runner._session = _OomSession()
    prediction = runner.predict(mdb001)
    np.testing.assert_allclose(prediction.probabilities, expected)
    assert runner.device == "CPU" and "out of memory" in runner.fallback_reason
    assert prediction.provider == "CPUExecutionProvider"


def test_registry_lists_good_and_broken_models(tmp_path, monkeypatch):
    build_model(tmp_path / "good.onnx")
    (tmp_path / "broken.onnx").write_bytes(b"not a model at all")
    library = ModelLibrary([tmp_path], include_bundled=False)
    by_name = {entry.path.name: entry for entry in library.entries}
    assert by_name["good.onnx"].card.labels == ("normal", "abnormal")
    assert by_name["broken.onnx"].card is None and "not an ONNX model" in by_name["broken.onnx"].error
    assert library.runner("good") is library.runner("good")
    with pytest.raises(KeyError, match="available: good"):
        library.find("nope")


def test_runner_never_creates_a_session_for_a_bad_contract(tmp_path, monkeypatch):
    path = build_model(tmp_path / "v2.onnx", metadata={"contract_version": "2"})

    def forbidden(*args, **kwargs):
        raise AssertionError("a session was created for a model that fails its contract")

    monkeypatch.setattr(runner_module.ort, "InferenceSession", forbidden)
    with pytest.raises(Exception, match="contract version '2'"):
        ModelRunner(path)
