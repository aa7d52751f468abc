"""The model contract: what a MammoDesk ONNX file must carry in its
`metadata_props` so that any model runs the same way. Training writes it
(`build_metadata`), the app reads and checks it (`read_card`) before a
session is ever created.

Keys (all values are strings; structured ones are JSON):

| key | content |
|---|---|
| mammodesk.contract_version | "1" |
| mammodesk.family / .name / .task | model family, unique model name, task |
| mammodesk.labels | ordered class labels, JSON list |
| mammodesk.preprocessing | the full preprocessing spec (JSON, `PipelineSpec.to_dict`) |
| mammodesk.input | {"name", "channels", "height", "width", "dtype": "float32"} (NCHW) |
| mammodesk.output | {"logits": "logits", "activation": "softmax" or "sigmoid", "map": output or absent} |
| mammodesk.cams | null, or {"output": "cams", "layer": ..., "branches": {name: {"output", "layer"}}} |
| mammodesk.roi | {"mode": "whole" / "roi" / "patches" / "image", "size", "spacing_mm", "patch_size", "patches", "seed", "location_window" (image readers)} |
| mammodesk.training | {"dataset", "split", ...}: what it was trained on and how data was split |
| mammodesk.metrics | {"how": "...", name: {"mean", "sd"} or number}: measured, with how |
| mammodesk.weights_sha256 / .tool_version | provenance |
| mammodesk.graph_sha256 | sha256 of the stored graph (nodes and initializers); checked before any answer |
| mammodesk.calibration | null, or how to calibrate the probabilities (`calibration.py`), fitted on CV predictions |
| mammodesk.domain | null, or what the training inputs looked like, for the domain check (`domain.py`) |
| mammodesk.operating_point | null, or {"threshold", "sensitivity_target", "sensitivity", "specificity", "how"}: the calibrated p(positive) above which an image is called positive, chosen in CV |
| mammodesk.bilateral | null, or (image readers) {"own", "contralateral", "bias", "threshold", "calibration", ...}: a view read against the same view of the other breast (`bilateral.py`) |
| mammodesk.levels | null, or (image readers) {"view", "breast", "exam": {"flag", "clear", "knots", "figures"; exam: "rule"}, "population"}: one score and answer per level, fitted out of fold at that level (`levels.py`) |

Roi modes (`modes/`, one file each): `whole` classifies the whole processed image; `roi` one region the
user gives; `patches` votes over patches of a region; `image` is the whole-mammogram reader: one pass
over the breast resampled to `spacing_mm`, its image logit pooled from a map of patch logits
(`output.map`, batch x 1 x h x w over the model input), which is the heat map and gives the location of
the answer.

A **companion** file is a second graph that serves one model (`COMPANION_KINDS`), named
`<model stem>.<kind>.onnx` by convention; it carries only `mammodesk.companion` (its kind),
`mammodesk.companion_of` (the model's file name) and `mammodesk.graph_sha256`, which is checked
like a model's before a session is made from it (`load_verified_companion`).

The positive class (`ModelCard.positive_index`) is the last label: labels are ordered negative first.

`logits` is batch x classes (a single logit with two labels means binary
sigmoid). `cams` is batch x classes x h x w holding raw Grad-CAM (the
gradient-weighted sum of activations, before ReLU), computed in the graph.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mammodesk.errors import MammoDeskError, SpecError
from mammodesk.inference.levels import Levels
from mammodesk.inference.modes import MODES, ReadingMode
from mammodesk.inference.onnx_meta import NotOnnxError, graph_sha256, read_metadata_props, read_model_bytes
from mammodesk.preprocessing import PipelineSpec

CONTRACT_VERSION = 1
PREFIX = "mammodesk."
REQUIRED_KEYS = ("contract_version", "family", "name", "task", "labels", "preprocessing", "input",
                 "output", "roi", "training", "metrics", "weights_sha256", "tool_version")
OPTIONAL_KEYS = ("cams", "description", "graph_sha256", "calibration", "domain", "embedding", "operating_point",
                 "bilateral", "levels")
DAMAGED = "model file damaged: weights do not match their recorded digest; re-download or rebuild it"
UNVERIFIED = "this model file carries no weights digest (exported before digests were recorded): its integrity " \
             "is not verified"
# What each companion kind is: image -> the VAE's reconstruction of the model input (same H x W), shown beside it.
COMPANION_KINDS = {"vae-reconstruction": "the VAE's reconstruction of the model input"}


class ModelContractError(MammoDeskError, ValueError):
    """A model file breaks the contract; names the file and what is wrong."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{self.path.name if self.path else '<model>'}: {problem}")


@dataclass(frozen=True)
class InputLayout:
    name: str
    channels: int
    height: int
    width: int
    dtype: str = "float32"


@dataclass(frozen=True)
class CamOutput:
    output: str
    layer: str


@dataclass(frozen=True)
class RoiMode:
    mode: str = "whole"
    size: int | None = None          # ROI side in model pixels, before the spec
    spacing_mm: float | None = None  # pixel spacing the ROI size refers to (training data)
    patch_size: int | None = None
    patches: int | None = None
    seed: int = 0
    location_window: int = 1  # image readers: the location is the best block of this many map cells a side


@dataclass(frozen=True)
class ModelCard:
    path: Path
    family: str
    name: str
    task: str
    labels: tuple[str, ...]
    spec: PipelineSpec
    input: InputLayout
    logits_output: str
    activation: str
    cams: Mapping[str, CamOutput]  # "combined" and optional branch names; empty = no explanations
    roi: RoiMode
    training: Mapping[str, Any]
    metrics: Mapping[str, Any]
    weights_sha256: str
    tool_version: str
    description: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    graph_sha256: str | None = None  # None: an older export without a digest
    calibration: Mapping[str, Any] | None = None
    domain: Mapping[str, Any] | None = None
    embedding_output: str | None = None  # the penultimate-layer output the domain check reads
    map_output: str | None = None  # image readers: the patch-logit map (batch x 1 x h x w)
    operating_point: Mapping[str, Any] | None = None  # image readers: the CV-chosen threshold and its figures
    bilateral: Mapping[str, Any] | None = None  # image readers: the view read against the other breast
    levels: Mapping[str, Any] | None = None  # image readers: thresholds and scores per view, breast and exam

    @property
    def mode(self) -> ReadingMode:
        """How this model reads an image (`modes/`)."""
        return MODES[self.roi.mode]

    @property
    def reads_whole_image(self) -> bool:
        """Whole-image classifiers and image readers take the image itself, not an ROI."""
        return self.mode.reads_whole_image

    @property
    def threshold(self) -> float | None:
        """The calibrated p(positive) from which an image is called positive; None: the most probable class."""
        return None if not self.operating_point else float(self.operating_point["threshold"])

    @property
    def level_rules(self) -> Levels | None:
        """Image readers: the score and answer per view, breast and exam (`levels.py`); None for models
        that answer per image only."""
        return self.mode.levels(self)

    @property
    def has_cams(self) -> bool:
        return bool(self.cams)

    @property
    def positive_index(self) -> int:
        """The class a scan maps and a finding is about. Contract: labels are listed from normal (or
        benign) to the finding, so the positive class is the last one (normal, abnormal; benign,
        malignant; F, G, D)."""
        return len(self.labels) - 1

    @property
    def binary_sigmoid(self) -> bool:
        return self.activation == "sigmoid" and len(self.labels) == 2


def build_metadata(*, family: str, name: str, task: str, labels: list[str], spec: PipelineSpec,
                   input: InputLayout, activation: str, roi: RoiMode, training: Mapping[str, Any],
                   metrics: Mapping[str, Any], weights_sha256: str, tool_version: str,
                   cams: Mapping[str, CamOutput] | None = None, logits: str = "logits",
                   description: str = "", calibration: Mapping[str, Any] | None = None,
                   domain: Mapping[str, Any] | None = None, embedding: str | None = None,
                   map_output: str | None = None, operating_point: Mapping[str, Any] | None = None,
                   bilateral: Mapping[str, Any] | None = None,
                   levels: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The metadata_props an exporter writes (strings only)."""
    cam_json = None
    if cams:
        combined = cams.get("combined")
        cam_json = {"output": combined.output, "layer": combined.layer} if combined else {}
        branches = {k: {"output": v.output, "layer": v.layer} for k, v in cams.items() if k != "combined"}
        if branches:
            cam_json["branches"] = branches
    values = {
        "contract_version": str(CONTRACT_VERSION), "family": family, "name": name, "task": task,
        "labels": json.dumps(list(labels)), "preprocessing": spec.to_json(indent=None),
        "input": json.dumps(input.__dict__),
        "output": json.dumps({"logits": logits, "activation": activation, **({"map": map_output} if map_output else {})}),
        "cams": json.dumps(cam_json), "roi": json.dumps(roi.__dict__), "training": json.dumps(training),
        "metrics": json.dumps(metrics), "weights_sha256": weights_sha256, "tool_version": tool_version,
        "description": description, "calibration": json.dumps(calibration), "domain": json.dumps(domain),
        "embedding": json.dumps(embedding), "operating_point": json.dumps(operating_point),
        "bilateral": json.dumps(bilateral), "levels": json.dumps(levels),
    }
    return {PREFIX + k: v for k, v in values.items()}


def read_card(path: str | Path) -> ModelCard:
    """Read and validate a model's metadata. Nothing is executed."""
    path = Path(path)
    if not path.is_file():
        raise ModelContractError(path, "model file not found")
    try:
        props = read_metadata_props(path)
    except NotOnnxError as exc:
        raise ModelContractError(path, f"not an ONNX model ({exc})") from exc
    except OSError as exc:
        raise ModelContractError(path, f"cannot be read ({exc.strerror or exc})") from exc
    return parse_card(path, props)


def verify_file(path: str | Path) -> ModelCard:
    """read_card, then the graph digest checked against the file (streamed, without onnxruntime)."""
    card = read_card(path)
    if card.graph_sha256 is not None:
        try:
            actual = graph_sha256(card.path)
        except (NotOnnxError, OSError) as exc:
            raise ModelContractError(card.path, f"cannot be read ({exc})") from exc
        if actual != card.graph_sha256:
            raise ModelContractError(card.path, DAMAGED)
    return card


@dataclass(frozen=True)
class Companion:
    path: Path
    kind: str  # one of COMPANION_KINDS
    of: str  # the model's file name
    graph_sha256: str


def read_companion(path: str | Path) -> Companion | None:
    """The companion record of a file, None for a file that is not a companion (a model, say)."""
    path = Path(path)
    try:
        props = read_metadata_props(path)
    except (NotOnnxError, OSError):
        return None
    kind = props.get(PREFIX + "companion")
    if kind is None:
        return None
    if kind not in COMPANION_KINDS:
        raise ModelContractError(path, f"unknown companion kind {kind!r} (known: {', '.join(COMPANION_KINDS)})")
    digest = props.get(PREFIX + "graph_sha256")
    if not digest:
        raise ModelContractError(path, "companion file carries no graph digest")
    return Companion(path, kind, props.get(PREFIX + "companion_of", ""), digest)


def load_verified_companion(path: str | Path) -> bytes:
    """A companion's bytes, read once, with its digest checked on exactly those bytes."""
    path, data, props, digest = _read_model(path)
    if props.get(PREFIX + "companion") not in COMPANION_KINDS:
        raise ModelContractError(path, "not a MammoDesk companion file")
    if digest != props.get(PREFIX + "graph_sha256"):
        raise ModelContractError(path, DAMAGED)
    return data


def _read_model(path: str | Path) -> tuple[Path, bytes, dict[str, str], str]:
    """(path, the file's bytes, its metadata props, the sha256 of its graph), read once."""
    path = Path(path)
    if not path.is_file():
        raise ModelContractError(path, "model file not found")
    try:
        data = path.read_bytes()
        props, digest = read_model_bytes(data)
    except NotOnnxError as exc:
        raise ModelContractError(path, f"not an ONNX model ({exc})") from exc
    except OSError as exc:
        raise ModelContractError(path, f"cannot be read ({exc.strerror or exc})") from exc
    return path, data, props, digest


def load_verified(path: str | Path) -> tuple[ModelCard, bytes]:
    """The card and the file's bytes, read once, with the digest checked on exactly those bytes
    (the session is then created from them: nothing can change the file in between)."""
    path, data, props, digest = _read_model(path)
    card = parse_card(path, props)
    if card.graph_sha256 is not None and digest != card.graph_sha256:
        raise ModelContractError(path, DAMAGED)
    return card, data


def parse_card(path: Path, props: Mapping[str, str]) -> ModelCard:
    ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
    if not ours:
        raise ModelContractError(path, "no MammoDesk metadata: this ONNX file was not exported by mammodesk-train")
    version = ours.get("contract_version")
    if version != str(CONTRACT_VERSION):
        raise ModelContractError(path, f"contract version {version!r} is not supported "
                                       f"(this MammoDesk reads version {CONTRACT_VERSION})")
    missing = [k for k in REQUIRED_KEYS if k not in ours]
    if missing:
        raise ModelContractError(path, f"metadata is missing {', '.join(PREFIX + k for k in missing)}")
    unknown = sorted(set(ours) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    data = {k: _json(path, k, ours[k]) for k in ("labels", "input", "output", "roi", "training", "metrics")}
    labels = data["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise ModelContractError(path, "mammodesk.labels must be a non-empty list of class names")
    if len(set(labels)) != len(labels):
        raise ModelContractError(path, f"duplicate class labels {labels}")
    try:
        spec = PipelineSpec.from_json(ours["preprocessing"])
    except SpecError as exc:
        raise ModelContractError(path, f"embedded preprocessing spec is invalid: {exc}") from exc
    layout = _input(path, data["input"])
    output = data["output"]
    activation = output.get("activation") if isinstance(output, dict) else None
    if activation not in ("softmax", "sigmoid"):
        raise ModelContractError(path, f"mammodesk.output.activation must be softmax or sigmoid, got {activation!r}")
    card = ModelCard(
        path=path, family=ours["family"], name=ours["name"], task=ours["task"], labels=tuple(labels),
        spec=spec, input=layout, logits_output=str(output.get("logits", "logits")), activation=activation,
        cams=_cams(path, _json(path, "cams", ours.get("cams", "null"))), roi=_roi(path, data["roi"]),
        training=data["training"], metrics=data["metrics"], weights_sha256=ours["weights_sha256"],
        tool_version=ours["tool_version"], description=ours.get("description", ""),
        extra={k: ours[k] for k in unknown}, graph_sha256=ours.get("graph_sha256") or None,
        calibration=_json(path, "calibration", ours.get("calibration", "null")),
        domain=_json(path, "domain", ours.get("domain", "null")),
        embedding_output=_json(path, "embedding", ours.get("embedding", "null")),
        map_output=output.get("map") or None,
        operating_point=_json(path, "operating_point", ours.get("operating_point", "null")),
        bilateral=_json(path, "bilateral", ours.get("bilateral", "null")),
        levels=_json(path, "levels", ours.get("levels", "null")),
    )
    problem = card.mode.check(card)
    if problem:
        raise ModelContractError(path, problem)
    if card.operating_point is not None and not 0.0 < float(card.operating_point.get("threshold", -1)) < 1.0:
        raise ModelContractError(path, "mammodesk.operating_point.threshold must lie between 0 and 1")
    if card.bilateral is not None:
        _check_bilateral(path, card)
    _check_spec_matches_input(card)
    return card


def _check_bilateral(path: Path, card: ModelCard) -> None:
    try:
        weights = [float(card.bilateral[k]) for k in ("own", "contralateral", "bias", "threshold")]
    except (KeyError, TypeError, ValueError):
        raise ModelContractError(path, "mammodesk.bilateral needs numbers own, contralateral, bias and threshold")
    if not all(math.isfinite(w) for w in weights) or not 0.0 < weights[3] < 1.0:
        raise ModelContractError(path, "mammodesk.bilateral: finite weights and a threshold between 0 and 1")


def _json(path: Path, key: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelContractError(path, f"{PREFIX}{key} is not valid JSON ({exc.msg})") from exc


def _input(path: Path, data: Any) -> InputLayout:
    try:
        layout = InputLayout(str(data["name"]), int(data["channels"]), int(data["height"]), int(data["width"]),
                             str(data.get("dtype", "float32")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelContractError(path, f"mammodesk.input needs name, channels, height, width ({exc})") from exc
    if layout.channels not in (1, 3) or layout.height < 1 or layout.width < 1:
        raise ModelContractError(path, f"mammodesk.input {layout} is not a 1- or 3-channel image")
    if layout.dtype != "float32":
        raise ModelContractError(path, f"input dtype {layout.dtype} is not supported (float32 only)")
    return layout


def _cams(path: Path, data: Any) -> dict[str, CamOutput]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ModelContractError(path, "mammodesk.cams must be null or an object")
    cams = {}
    try:
        if "output" in data:
            cams["combined"] = CamOutput(str(data["output"]), str(data.get("layer", "")))
        for name, branch in (data.get("branches") or {}).items():
            cams[str(name)] = CamOutput(str(branch["output"]), str(branch.get("layer", "")))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelContractError(path, f"mammodesk.cams is malformed ({exc})") from exc
    return cams


def _roi(path: Path, data: Any) -> RoiMode:
    if not isinstance(data, dict) or data.get("mode") not in MODES:
        raise ModelContractError(path, f"mammodesk.roi.mode must be one of {list(MODES)}")
    try:
        roi = RoiMode(**{k: data[k] for k in RoiMode.__dataclass_fields__ if k in data})
    except TypeError as exc:
        raise ModelContractError(path, f"mammodesk.roi is malformed ({exc})") from exc
    if not isinstance(roi.location_window, int) or not 1 <= roi.location_window <= 8:
        raise ModelContractError(path, "mammodesk.roi.location_window must be a whole number of map cells, 1-8")
    return roi


def _check_spec_matches_input(card: ModelCard) -> None:
    """The spec's last resize and channel op must produce what the input expects."""
    resizes = [op for op in card.spec.ops if op.name == "resize"]
    channels = 3 if any(op.name == "to_rgb" for op in card.spec.ops) else 1
    if channels != card.input.channels:
        raise ModelContractError(card.path, f"the spec makes {channels}-channel images, "
                                            f"the model input has {card.input.channels}")
    if not resizes:
        raise ModelContractError(card.path, "the spec has no resize op, so its output size is unknown")
    last = resizes[-1]
    problem = card.mode.check_spec_output(card, last.height, last.width)
    if problem:
        raise ModelContractError(card.path, problem)


def check_session(card: ModelCard, session) -> None:
    """Compare the graph's real inputs and outputs with the card (onnxruntime session)."""
    path = card.path
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != card.input.name:
        raise ModelContractError(path, f"the graph's inputs {[i.name for i in inputs]} are not the declared "
                                       f"single input {card.input.name!r}")
    expected = [None, card.input.channels, card.input.height, card.input.width]
    shape = list(inputs[0].shape)
    if len(shape) != 4 or any(isinstance(s, int) and e is not None and s != e for s, e in zip(shape, expected)):
        raise ModelContractError(path, f"input shape {shape} contradicts the metadata "
                                       f"(N x {card.input.channels} x {card.input.height} x {card.input.width})")
    if inputs[0].type != "tensor(float)":
        raise ModelContractError(path, f"input type {inputs[0].type} is not float32")
    outputs = {o.name: o for o in session.get_outputs()}
    logits = outputs.get(card.logits_output)
    if logits is None:
        raise ModelContractError(path, f"no output named {card.logits_output!r} (outputs: {sorted(outputs)})")
    classes = 1 if card.binary_sigmoid else len(card.labels)
    if len(logits.shape) != 2 or (isinstance(logits.shape[1], int) and logits.shape[1] != classes):
        raise ModelContractError(path, f"logits shape {logits.shape} does not give {classes} value(s) per image "
                                       f"for labels {list(card.labels)}")
    if card.map_output:
        patch_map = outputs.get(card.map_output)
        if patch_map is None or len(patch_map.shape) != 4 or patch_map.shape[1] != 1:
            raise ModelContractError(path, f"declared map output {card.map_output!r} is not a batch x 1 x h x w "
                                           "output of the graph")
    if card.embedding_output and card.embedding_output not in outputs:
        raise ModelContractError(path, f"declared embedding output {card.embedding_output!r} is not in the graph")
    for name, cam in card.cams.items():
        out = outputs.get(cam.output)
        if out is None:
            raise ModelContractError(path, f"declared CAM output {cam.output!r} ({name}) is not in the graph")
        if len(out.shape) != 4 or (isinstance(out.shape[1], int) and out.shape[1] != classes):
            raise ModelContractError(path, f"CAM output {cam.output!r} has shape {out.shape}; expected "
                                           f"batch x {classes} x h x w")
