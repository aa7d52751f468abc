"""Every contract violation gives a ModelContractError that names the file and the problem."""

from __future__ import annotations

import onnx
import pytest
from onnx import helper
from onnx_models import build_model

from mammodesk.inference import ModelContractError, ModelRunner, read_card
from mammodesk.inference.onnx_meta import read_metadata_props


def test_metadata_reader_matches_onnx(tmp_path):
    path = build_model(tmp_path / "m.onnx")
    expected = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert read_metadata_props(path) == expected


def test_card_fields(tmp_path):
    card = read_card(build_model(tmp_path / "m.onnx", branches=True))
    assert card.name == "m" and card.labels == ("normal", "abnormal") and card.activation == "softmax"
    assert (card.input.channels, card.input.height, card.input.width) == (1, 64, 64)
    assert set(card.cams) == {"combined", "branch_b"} and card.cams["combined"].layer == "block5"
    assert card.roi.mode == "whole" and card.spec.steps[0].op == "crop_to_breast"


@pytest.mark.parametrize("kwargs,message", [
    ({"metadata": {"contract_version": "2"}}, "contract version '2' is not supported"),
    ({"drop_keys": ("labels",)}, "missing mammodesk.labels"),
    ({"metadata": {"labels": "[]"}}, "non-empty list"),
    ({"metadata": {"labels": '["a", "a"]'}}, "duplicate class labels"),
    ({"metadata": {"preprocessing": '{"format": "mammodesk.preprocessing", "version": 1, "ops": [{"op": "blur"}]}'}},
     "embedded preprocessing spec is invalid.*unknown op 'blur'"),
    ({"metadata": {"input": '{"name": "image", "channels": 1}'}}, "needs name, channels, height, width"),
    ({"metadata": {"output": '{"activation": "relu"}'}}, "softmax or sigmoid"),
    ({"metadata": {"roi": '{"mode": "tiles"}'}}, "roi.mode must be one of"),
    ({"metadata": {"roi": '{"mode": "patches", "size": 64}'}}, "patch models need"),
    ({"metadata": {"roi": '{"mode": "whole", "location_window": 0}'}}, "location_window must be a whole number"),
    ({"metadata": {"roi": '{"mode": "whole", "location_window": 2.5}'}}, "location_window must be a whole number"),
    ({"metadata": {"training": "{oops"}}, "mammodesk.training is not valid JSON"),
    ({"spec": [{"op": "resize", "params": {"width": 32, "height": 32}}]}, "resizes to 32x32 but the model input is 64x64"),
    ({"spec": [{"op": "median"}]}, "no resize op"),
    ({"metadata": {"bilateral": '{"own": 1, "contralateral": -1, "bias": 0, "threshold": 0.5}'}},
     "mammodesk.bilateral is for image readers"),
    ({"spec": [{"op": "resize", "params": {"width": 64, "height": 64}}, {"op": "to_rgb"}]}, "3-channel images"),
])
def test_metadata_violations(tmp_path, kwargs, message):
    path = build_model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ModelContractError, match=message) as info:
        read_card(path)
    assert "bad.onnx" in str(info.value)


@pytest.mark.parametrize("kwargs,message", [
    ({"graph_size": 48}, r"input shape \['N', 1, 48, 48\] contradicts the metadata"),
    ({"graph_classes": 3}, "logits shape.*does not give 2"),
])
def test_graph_violations_found_when_the_session_is_checked(tmp_path, kwargs, message):
    path = build_model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ModelContractError, match=message):
        ModelRunner(path, warm_up=False)


def test_declared_cam_output_missing(tmp_path):
    path = build_model(tmp_path / "nocam.onnx", cams=False,
                       metadata={"cams": '{"output": "cams", "layer": "block5"}'})
    with pytest.raises(ModelContractError, match="declared CAM output 'cams'"):
        ModelRunner(path, warm_up=False)


def test_not_onnx_files(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(ModelContractError, match="not an ONNX model"):
        read_card(garbage)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelContractError, match="empty"):
        read_card(empty)
    good = build_model(tmp_path / "good.onnx").read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelContractError, match="truncated"):
        read_card(truncated)
    with pytest.raises(ModelContractError, match="not found"):
        read_card(tmp_path / "missing.onnx")


def test_plain_onnx_without_our_metadata(tmp_path):
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ModelContractError, match="not exported by mammodesk-train"):
        read_card(path)


def test_an_image_reader_states_the_spacing_it_reads_at(tmp_path):
    """The location box is LOCATION_MM wide on the breast: the app needs the reader's mm per pixel."""
    output = '{"activation": "sigmoid", "map": "cam"}'
    card = read_card(build_model(tmp_path / "a.onnx", metadata={"roi": '{"mode": "image", "spacing_mm": 0.8}',
                                                                "output": output}))
    assert card.roi.mode == "image" and card.roi.spacing_mm == 0.8
    with pytest.raises(ModelContractError, match="roi.spacing_mm"):
        read_card(build_model(tmp_path / "b.onnx", metadata={"roi": '{"mode": "image"}', "output": output}))
