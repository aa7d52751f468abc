"""The pipeline spec: JSON round trip, versioning, helpful errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dicom_factory import phantom

from mammodesk.errors import SpecError
from mammodesk.io import Image, ImageMeta
from mammodesk.preprocessing import OPS, PipelineSpec

FULL = [
    {"op": "window"}, {"op": "crop_to_breast", "params": {"margin": 4}}, {"op": "flip_laterality"},
    {"op": "nlmeans", "params": {"h": 8}}, {"op": "threshold_roi", "params": {"level": 20}},
    {"op": "median", "params": {"ksize": 3}}, {"op": "wiener"}, {"op": "gaussian", "params": {"sigma": 0.8}},
    {"op": "clahe"}, {"op": "resample", "params": {"spacing_mm": 2.0}},
    {"op": "resize", "params": {"width": 48, "height": 64}},
    {"op": "normalise", "params": {"mode": "zscore"}}, {"op": "to_rgb"},
]


def test_every_registered_op_appears_in_the_full_spec():
    assert {step["op"] for step in FULL} == set(OPS)


def test_json_round_trip_bit_identical(tmp_path):
    image = Image(phantom(120, 100, bits=12), ImageMeta(bits_stored=12))
    spec = PipelineSpec(FULL)
    path = tmp_path / "spec.json"
    spec.save(path)
    loaded = PipelineSpec.load(path)
    assert loaded == spec
    first, second = spec.apply(image), loaded.apply(image)
    assert first.array.dtype == np.float32 and first.array.shape == (64, 48, 3)
    assert first.array.tobytes() == second.array.tobytes()


def test_saved_spec_is_versioned_and_complete():
    data = json.loads(PipelineSpec([{"op": "median"}]).to_json())
    assert data == {"format": "mammodesk.preprocessing", "version": 1,
                    "ops": [{"op": "median", "params": {"ksize": 5}}]}


def test_disabled_steps_are_kept_but_skipped():
    image = Image(np.arange(16, dtype=np.uint8).reshape(4, 4))
    spec = PipelineSpec([{"op": "to_rgb", "enabled": False}])
    assert spec.apply(image).array.ndim == 2
    assert PipelineSpec.from_json(spec.to_json()).steps[0].enabled is False


@pytest.mark.parametrize("spec,message", [
    ([{"op": "clahee"}], "did you mean 'clahe'"),
    ([{"op": "clahe", "params": {"clip": 2}}], "did you mean 'clip_limit'"),
    ([{"op": "clahe", "params": {"tiles": 0}}], r"tiles must be in \[1, 64\]"),
    ([{"op": "resize", "params": {"width": 2.5}}], "integer"),
    ([{"op": "resize", "params": {"align": "centre"}}], "did you mean 'center'"),
    ([{"op": "normalise", "params": {"mode": "fixed", "std": [0]}}], "positive"),
    ([{"op": "median", "params": {"ksize": True}}], "integer"),
    ([{"op": "gaussian", "params": {"sigma": float("nan")}}], "finite"),
    ([{"params": {}}], "'op' name"),
    ([{"op": "median", "colour": 1}], "unknown keys"),
])
def test_bad_specs_raise_spec_error_with_hints(spec, message):
    with pytest.raises(SpecError, match=message):
        PipelineSpec(spec)


@pytest.mark.parametrize("text,message", [
    ("{not json", "not valid JSON"),
    ('{"format": "mammodesk.preprocessing", "version": 99, "ops": []}', "version 99"),
    ('{"format": "other", "version": 1, "ops": []}', "not a MammoDesk"),
    ('{"format": "mammodesk.preprocessing", "version": 1, "ops": {}}', "must be a list"),
    ("[1, 2]", "JSON object"),
])
def test_bad_json_documents(text, message):
    with pytest.raises(SpecError, match=message):
        PipelineSpec.from_json(text)


def test_bad_preview_scale():
    with pytest.raises(SpecError, match="scale"):
        PipelineSpec([]).apply(Image(np.zeros((4, 4), np.uint8)), scale=0)
