"""Model families register themselves (`@register_family`): their presets, the unit a card counts and the
catalogue the app lists all come from that one place. A family is added here in a test and reaches each."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

pytest.importorskip("torch")
from mammodesk_train.catalogue import catalogue, catalogue_text  # noqa: E402
from mammodesk_train.families.protocol import CatalogueEntry, FamilyBase  # noqa: E402
from mammodesk_train.families.registry import FAMILIES, PRESETS, family_for, register_family, unit_of  # noqa: E402

from mammodesk.inference.library import family_catalogue  # noqa: E402
from mammodesk.resources import resources_dir  # noqa: E402


@dataclass(frozen=True)
class _Preset:
    name: str
    family: str = "toy"
    description: str = "a toy family"


@pytest.fixture
def toy_family():
    presets = {"toy-one": _Preset("toy-one")}
    entry = CatalogueEntry(task="density", purpose="Toy: density", detail="a toy", not_bundled="not bundled: a toy",
                           why="it is a test")

    @register_family("toy", presets=presets, unit="ROIs", catalogue=(entry,))
    class ToyFamily(FamilyBase):
        def __init__(self, preset, device="auto", progress=True):
            self.preset, self.device = preset, device

    yield ToyFamily
    del FAMILIES["toy"], PRESETS["toy-one"]


def test_a_family_is_its_module_and_every_list_follows(toy_family):
    assert isinstance(family_for(PRESETS["toy-one"], device="cpu"), toy_family)
    assert unit_of("toy") == "ROIs" and unit_of("reader") == "images"
    assert FAMILIES["reader"].default and not toy_family.default  # the app's default second opinion
    rows = catalogue()["families"]
    assert [r for r in rows if r["family"] == "toy"] == [{"family": "toy", "task": "density", "purpose": "Toy: density", "detail": "a toy",
                        "not_bundled": "not bundled: a toy", "why": "it is a test"}]
    assert [r["family"] for r in rows[:2]] == ["reader", "fusion-vgg"]  # bundled first


def test_a_family_or_preset_registered_twice_is_refused(toy_family):
    with pytest.raises(ValueError, match="registered twice"):
        register_family("toy", presets={})(toy_family)
    with pytest.raises(ValueError, match="taken names"):
        register_family("toy2", presets={"toy-one": _Preset("toy-one", family="toy2")})(type("T", (), {}))
    with pytest.raises(ValueError, match="another family"):
        register_family("toy3", presets={"toy-x": _Preset("toy-x", family="toy")})(type("T", (), {}))


def test_the_bundled_catalogue_is_derived_from_the_families():
    """`mammodesk-train catalogue` writes it; editing it by hand, or a family's text without rewriting it, fails."""
    path = resources_dir() / "models" / "families.json"
    assert path.read_text(encoding="utf-8") == catalogue_text()
    assert [(f.family, f.task) for f in family_catalogue(path)] == \
        [(r["family"], r["task"]) for r in json.loads(catalogue_text())["families"]]


def test_region_families_count_rois_on_their_cards():
    assert {name for name in FAMILIES if unit_of(name) == "ROIs"} == {"fusion-vgg", "hybrid", "transfer"}
