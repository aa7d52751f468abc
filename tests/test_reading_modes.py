"""A reading mode is one object (`mammodesk/inference/modes/`): the contract, the runner, the scan, the batch
report and the panel ask it, never the mode's name. A new mode is one class; here one is added in a test and
goes through all of them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from onnx_models import build_model

from mammodesk.inference import ModelContractError, ModelEntry, ModelInputError, ModelRunner, read_card
from mammodesk.inference.modes import MODES, ReadingMode, reading_mode
from mammodesk.inference.scan import scan_windows
from mammodesk.io import Image, ImageMeta
from mammodesk.preprocessing import Geometry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def centre_mode():
    """A mode that reads the whole image but reports its central quarter as the region, for two-class
    models only: a mode with its own contract rule, its own region and its own words."""

    @reading_mode
    class Centre(ReadingMode):
        name = "centre"
        words = "Image centre"
        reads_whole_image = True

        def check(self, card):
            return "a centre model has two labels" if len(card.labels) != 2 else super().check(card)

        def region(self, geometry: Geometry):
            x0, y0, x1, y1 = super().region(geometry)
            w, h = x1 - x0, y1 - y0
            return x0 + w // 4, y0 + h // 4, x1 - w // 4, y1 - h // 4

    yield MODES["centre"]
    del MODES["centre"]


def _image() -> Image:
    pixels = np.zeros((200, 160), np.uint8)
    pixels[20:180, :120] = 200  # a bright breast on the left
    return Image(pixels, ImageMeta(laterality="L"))


def test_a_new_mode_is_one_class_and_every_layer_follows_it(tmp_path, centre_mode):
    spec = [{"op": "resize", "params": {"width": 64, "height": 64, "keep_aspect": False}}, {"op": "normalise"}]
    path = build_model(tmp_path / "centre.onnx", mode="centre", spec=spec)
    card = read_card(path)
    assert card.mode is centre_mode and card.reads_whole_image and card.level_rules is None
    runner = ModelRunner(path)
    prediction = runner.predict(_image())  # no ROI asked for: the mode reads the whole image
    assert prediction.roi_box == (40, 50, 120, 150)  # the mode's region, in source pixels
    assert prediction.probabilities.sum() == pytest.approx(1.0)
    with pytest.raises(ModelInputError, match="nothing to scan"):
        scan_windows(_image(), runner)
    with pytest.raises(ModelContractError, match="a centre model has two labels"):
        read_card(build_model(tmp_path / "three.onnx", mode="centre", spec=spec, labels=("a", "b", "c")))

    from mammodesk.qt.opinion.answer import model_purpose
    assert model_purpose(ModelEntry(path, card, None), {}) == "Image centre: normal vs abnormal"


def test_an_unknown_mode_is_refused_with_the_known_ones(tmp_path):
    path = build_model(tmp_path / "odd.onnx", metadata={"roi": '{"mode": "tiles"}'})
    with pytest.raises(ModelContractError, match=re.escape(str(list(MODES)))):
        read_card(path)


def test_a_mode_registered_twice_is_refused(centre_mode):
    with pytest.raises(ValueError, match="registered twice"):
        reading_mode(type(centre_mode))


def test_every_bundled_mode_registers_itself():
    assert set(MODES) >= {"whole", "roi", "patches", "image"}
    assert {m.name for m in MODES.values() if m.whole_mammogram} == {"image"}
    assert {m.name for m in MODES.values() if m.votes} == {"patches"}


def test_nothing_outside_the_mode_classes_branches_on_a_mode_name():
    """The issue's count (45 branches in 10 files before): none remain outside `inference/modes/`."""
    branch = re.compile(r"(roi|roi_mode)\.mode\s*(==|!=|in\b|not in\b)|\.get\([\w.]*roi\.mode|\bmode [=!]= \"(patches|image)\"")
    found = [f"{path.relative_to(ROOT)}:{number}"
             for folder in ("mammodesk", "training", "scripts")
             for path in sorted((ROOT / folder).rglob("*.py")) if "modes" not in path.parts
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if branch.search(line)]
    assert found == []
