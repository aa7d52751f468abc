"""Answers a reader can trust: damaged model files never answer, probabilities
are calibrated (and calibration really lowers the error on held-out folds),
and every answer says whether the image is like the training images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dicom_factory import make_dataset, mammogram_like, write
from onnx_models import build_model

from mammodesk.cli import main as mammodesk_main
from mammodesk.inference import ModelContractError, ModelLibrary, ModelRunner
from mammodesk.inference.calibration import apply_calibration
from mammodesk.inference.contract import DAMAGED, UNVERIFIED
from mammodesk.inference.domain import EmbeddingModel, acquisition_kind, check, input_ranges, input_statistics
from mammodesk.io import ImageMeta, read_image


@pytest.fixture(scope="module")
def mdb001(mias_dir):
    return read_image(mias_dir / "mdb001.pgm")


# --- integrity ------------------------------------------------------------------------------------
def _flip_inside_initializer(path, name_bytes: bytes = b"C") -> None:
    """Flip one bit in the raw data of an initializer (the CAM constant's hot cell: 1.0)."""
    data = bytearray(path.read_bytes())
    one = np.float32(1.0).tobytes()
    index = data.find(one)
    assert index > 0
    data[index + 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_bit_in_the_weights_is_refused_everywhere(tmp_path, mdb001, capsys):
    path = build_model(tmp_path / "damaged.onnx")
    assert ModelRunner(path).integrity_note is None  # verified before the damage
    _flip_inside_initializer(path)
    with pytest.raises(ModelContractError, match="model file damaged: weights do not match their recorded digest; "
                                                 "re-download or rebuild it"):
        ModelRunner(path)
    entry = {e.path.name: e for e in ModelLibrary([tmp_path], include_bundled=False).entries}["damaged.onnx"]
    assert entry.card is None and entry.error == DAMAGED  # listed as unusable, with the reason
    image = tmp_path / "mdb001.pgm"
    image.write_bytes(b"P5\n64 64\n255\n" + bytes(64 * 64))
    code = mammodesk_main(["predict", str(image), "--model", str(path), "--out", str(tmp_path / "r.csv"), "--cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "model file damaged" in err[0]


def test_older_models_without_a_digest_load_with_a_note(tmp_path, mdb001):
    runner = ModelRunner(build_model(tmp_path / "old.onnx", digest=False))
    assert runner.integrity_note == UNVERIFIED
    assert UNVERIFIED in runner.predict(mdb001).notes


# --- calibration ----------------------------------------------------------------------------------
def _overconfident(n: int, seed: int):
    """Truth follows sigmoid(s); the 'model' says sigmoid(4 s): right ranking, far too sure."""
    rng = np.random.default_rng(seed)
    s = rng.normal(0, 1.2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-s))).astype(int)
    p = 1 / (1 + np.exp(-4 * s))
    return np.column_stack([1 - p, p]), y


def test_calibration_lowers_ece_on_held_out_folds():
    pytest.importorskip("torch")
    from mammodesk_train.splits import patient_kfold
    from mammodesk_train.trust import calibrate, ece

    probs, y = _overconfident(600, 0)
    folds = patient_kfold(y, np.arange(len(y)).astype(str), 5, 0)
    report = calibrate(probs, y, folds)
    assert report["calibration"]["method"] in ("platt", "isotonic")
    assert report["ece_before"] > 0.1 and report["ece_after"] < report["ece_before"] / 2  # out-of-sample ECE
    fresh, y_new = _overconfident(2000, 1)  # and on data it never saw
    assert ece(apply_calibration(report["calibration"], fresh), y_new) < ece(fresh, y_new) / 2
    assert sum(b["count"] for b in report["reliability_after"]) == len(y)


def test_temperature_scaling_for_softmax():
    pytest.importorskip("torch")
    from mammodesk_train.splits import patient_kfold
    from mammodesk_train.trust import calibrate

    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1.5, (900, 3))
    y = np.array([rng.choice(3, p=np.exp(row) / np.exp(row).sum()) for row in logits])
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)
    report = calibrate(sharp, y, patient_kfold(y, np.arange(900).astype(str), 5, 0))
    assert report["calibration"]["method"] == "temperature"
    assert report["calibration"]["temperature"] == pytest.approx(3.0, rel=0.25)
    assert report["ece_after"] < report["ece_before"]


def test_well_calibrated_probabilities_are_kept_raw():
    pytest.importorskip("torch")
    from mammodesk_train.splits import patient_kfold
    from mammodesk_train.trust import calibrate

    rng = np.random.default_rng(5)
    p = rng.uniform(0.02, 0.98, 300)
    y = (rng.random(300) < p).astype(int)  # labels drawn from the probabilities: already calibrated
    probs = np.stack([1 - p, p], axis=1)
    report = calibrate(probs, y, patient_kfold(y, np.arange(300).astype(str), 5, 0))
    # Fitted maps only add noise out of fold here, so none is stored and the raw numbers are shown.
    assert report["calibration"] is None and "no map beat" in report["chosen_by"]
    assert report["ece_after"] == report["ece_before"]
    assert all(loss >= report["log_loss"]["uncalibrated"] for loss in report["log_loss"].values())


def test_the_engine_applies_the_stored_calibration(tmp_path, mdb001):
    calibration = {"method": "platt", "a": 0.25, "b": -0.5}
    runner = ModelRunner(build_model(tmp_path / "cal.onnx", metadata={"calibration": json.dumps(calibration)}))
    prediction = runner.predict(mdb001)
    assert prediction.calibrated
    np.testing.assert_allclose(prediction.probabilities, apply_calibration(calibration, prediction.raw_probabilities))
    from mammodesk.inference.batch import prediction_row

    assert prediction_row(prediction)["domain"] == "in domain"


# --- domain check -------------------------------------------------------------------------------------
def _record(embeddings: np.ndarray) -> dict:
    return {"acquisition": {"kinds": ["film"], "bits_stored": [8], "spacing_mm": [0.2, 0.2]},
            "input": {"mean": [0.2, 0.6], "sd": [0.05, 0.45]},
            "embedding": EmbeddingModel.fit(embeddings).to_dict()}


def test_domain_flag_is_false_on_the_training_distribution_and_true_off_it():
    rng = np.random.default_rng(0)
    train = rng.normal(0, 1, (500, 6))
    record = _record(train)
    model = EmbeddingModel.from_dict(record["embedding"])
    film = ImageMeta(bits_stored=8, format="PGM")
    inside = [check(record, film, rng.uniform(0.2, 0.8, (8, 8)) * 0.8, rng.normal(0, 1, (1, 6)), model)
              for _ in range(300)]
    assert np.mean([not c.in_domain for c in inside]) < 0.05
    digital = ImageMeta(bits_stored=16, format="DICOM", pixel_spacing_mm=(0.07, 0.07))
    result = check(record, digital, np.full((8, 8), 0.4), train[:1], model)
    assert not result.in_domain and acquisition_kind(digital) == "digital"
    assert "16-bit digital image; this model saw 8-bit film" in result.reasons[0]
    assert any("pixel spacing 0.07 mm" in r for r in result.reasons)
    bright = check(record, film, np.full((8, 8), 0.95), train[:1], model)
    assert not bright.in_domain and "input intensity mean" in bright.reasons[0]
    far = check(record, film, np.full((8, 8), 0.4) + rng.normal(0, 0.1, (8, 8)), np.full((1, 6), 6.0), model)
    assert not far.in_domain and "features far from the training set" in far.reasons[0] and far.distance > 1


def test_an_image_readers_input_is_judged_on_the_breast_not_on_its_padding():
    """The reader's canvas pads the breast with black: a narrow breast leaves more padding and a darker canvas,
    not a darker breast. A record taken over the breast passes the same breast on any canvas; one taken over
    the whole input flags the wider padding; a breast that is itself too dark is still flagged."""
    rng = np.random.default_rng(0)
    breasts = [rng.uniform(0.2, 0.8, (64, 32)) for _ in range(40)]

    def canvas(breast, width):
        out = np.zeros((64, width, 3))
        out[:, :breast.shape[1]] = breast[..., None]
        return out

    trained = [canvas(b, 48) for b in breasts]
    film = ImageMeta(bits_stored=8, format="PGM")
    over_breast = {"input": input_ranges(np.array([input_statistics(x, "breast") for x in trained]), "breast")}
    over_input = {"input": input_ranges(np.array([input_statistics(x) for x in trained]))}
    assert over_breast["input"]["over"] == "breast" and "over" not in over_input["input"]
    narrow = canvas(rng.uniform(0.2, 0.8, (64, 32)), 96)  # the same kind of breast, twice the padding
    assert check(over_breast, film, narrow).in_domain
    padded = check(over_input, film, narrow)
    assert not padded.in_domain and "input intensity mean" in padded.reasons[0]
    dark = canvas(rng.uniform(0.02, 0.1, (64, 32)), 48)
    flagged = check(over_breast, film, dark)
    assert not flagged.in_domain and "breast intensity mean" in flagged.reasons[0]
    assert input_statistics(np.zeros((8, 8)), "breast") == (0.0, 0.0)  # no breast: the whole input


def test_every_answer_carries_the_domain_check(tmp_path, mdb001):
    """A MIAS-like training record: MIAS is in domain, a 16-bit digital DICOM is not, and says why."""
    means = np.linspace(0.3, 0.5, 50)[:, None]
    record = {"acquisition": {"kinds": ["film"], "bits_stored": [8], "spacing_mm": [0.2, 0.2]},
              "input": {"mean": [0.05, 0.95], "sd": [0.0, 0.6]}, "embedding": EmbeddingModel.fit(
                  np.column_stack([means, means])[:, :1] + np.random.default_rng(0).normal(0, 0.05, (50, 1)),
                  components=1).to_dict()}
    path = build_model(tmp_path / "dom.onnx", embedding=True, metadata={"domain": json.dumps(record)})
    runner = ModelRunner(path)
    assert runner.card.embedding_output == "flat"
    mias = runner.predict(mdb001)
    assert mias.embedding.shape == (1, 1)
    digital_file = write(make_dataset(mammogram_like(512, 416), bits_stored=16, phi=False,
                                      PixelSpacing=[0.07, 0.07]), tmp_path / "ffdm.dcm")
    ffdm = runner.predict(read_image(digital_file))
    assert not ffdm.domain.in_domain and ffdm.verdict() == "no clear answer (outside training data)"
    from mammodesk.inference.batch import prediction_row

    assert "16-bit digital image" in prediction_row(ffdm)["domain"]
    assert not ffdm.clear


def test_near_threshold_answers_are_not_highlighted():
    from mammodesk.inference.results import Prediction

    unsure = Prediction("m", ("normal", "abnormal"), np.array([0.45, 0.55]), "CPUExecutionProvider")
    sure = Prediction("m", ("normal", "abnormal"), np.array([0.1, 0.9]), "CPUExecutionProvider")
    assert unsure.verdict() == "no clear answer (near the decision threshold)" and not unsure.clear
    assert sure.verdict() == "abnormal" and sure.clear
    # A patch model whose votes (16 normal of 25) and calibrated mean probability (0.70 abnormal) disagree.
    split = Prediction("m", ("normal", "abnormal"), np.array([0.3, 0.7]), "CPUExecutionProvider",
                       votes=np.array([16, 9]))
    assert split.predicted_label == "normal" and not split.clear
    assert split.verdict() == "no clear answer (patch votes and mean probability disagree)"
    agreed = Prediction("m", ("normal", "abnormal"), np.array([0.1, 0.9]), "CPUExecutionProvider",
                        votes=np.array([2, 23]))
    assert agreed.verdict() == "abnormal" and agreed.clear


def test_the_nested_calibration_of_a_fold_never_reads_its_labels():
    pytest.importorskip("torch")
    from mammodesk_train.splits import patient_kfold
    from mammodesk_train.trust import nested_calibrated

    probs, y = _overconfident(500, 2)
    folds = patient_kfold(y, np.arange(len(y)).astype(str), 5, 0)
    calibrated, chosen = nested_calibrated(probs, y, folds)
    flipped = y.copy()
    flipped[folds[0].test] = 1 - flipped[folds[0].test]  # fold 1's own labels, reversed
    again, chosen_again = nested_calibrated(probs, flipped, folds)
    np.testing.assert_array_equal(again[folds[0].test], calibrated[folds[0].test])
    assert chosen_again[0] == chosen[0] and all(m in ("platt", "isotonic") for m in chosen)
    assert not np.array_equal(again[folds[1].test], calibrated[folds[1].test])  # the other folds' maps read them
