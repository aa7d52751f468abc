"""The reader's part of the one shipping path (`mammodesk_train.shipping`): what a run keeps for it in `final/`
(the shipped reader's weights and its domain record, beside `report.json` and `run.json`), and, from that run
folder, the contract ONNX file (`export.export_reader`, verified against torch) and the model card."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from mammodesk_train.app import InputLayout, RoiMode, build_metadata, summarise_acquisition

from mammodesk_train import __version__
from mammodesk_train.data.sources import public_spec
from mammodesk_train.export import weights_sha256
from mammodesk_train.reader.data import ReaderData
from mammodesk_train.reader.export import export_reader
from mammodesk_train.reader.fit import Setting, folded_head
from mammodesk_train.reader.model import WholeImageReader
from mammodesk_train.reader.presets import ReaderPreset


def breast_embeddings(data: ReaderData) -> np.ndarray:
    """Each image's trunk features averaged over its breast cells (the domain check's embedding), a chunk of
    images at a time: the feature maps stay on disk."""
    from mammodesk_train.reader.fit import in_chunks

    out = []
    for index in in_chunks(np.arange(len(data))):
        weights = data.breast[index].float()[..., None]
        out.append(((data.features[index] * weights).sum(1) / weights.sum(1).clamp(min=1.0)).numpy())
    return np.concatenate(out)


def domain_record(data: ReaderData, assumed_mm: float | None) -> dict:
    """What the app's domain check compares a view with: the shipped trunk's images, inputs and embeddings."""
    from mammodesk_train.app import EmbeddingModel, input_ranges

    acquisition = {**summarise_acquisition(data.metas, assumed_mm), "normalised": True}
    return {"acquisition": acquisition, "input": input_ranges(data.inputs_mean_sd, over="breast"),
            "embedding": EmbeddingModel.fit(breast_embeddings(data)).to_dict()}


def keep_shipped(final: Path, reader: WholeImageReader, domain: dict) -> str:
    """The shipped reader's weights and domain record in `final/`; returns the weights' digest (the report
    keeps it, and `load_shipped` checks the file against it)."""
    final.mkdir(parents=True, exist_ok=True)
    torch.save(reader.state_dict(), final / "model.pt")
    (final / "domain.json").write_text(json.dumps(domain))
    return weights_sha256(reader)


def load_shipped(final: Path, preset: ReaderPreset, setting: Setting, digest: str) -> WholeImageReader:
    """The shipped reader as `keep_shipped` kept it: the preset's trunk and the setting's head, its weights
    loaded (tensors only) and checked against the digest the run recorded."""
    reader = preset.build()
    reader.k = setting.k
    reader.head = folded_head(reader.head.in_channels, setting)
    reader.load_state_dict(torch.load(final / "model.pt", map_location="cpu", weights_only=True))
    if weights_sha256(reader) != digest:
        raise ValueError(f"{final / 'model.pt'} is not the reader its run trained (its weights' digest differs from "
                         "the report's): damaged or replaced; fit the run again")
    return reader.eval()


def export_run(run: Path, path: Path, name: str, preset: ReaderPreset, notes: list[str] = ()) -> str:
    """The run's shipped reader as `path` (verified) and its card beside it; the parity figures and the time
    per view go into the run's report."""
    from mammodesk_train.reader.card import write_reader_card

    report = json.loads((run / "report.json").read_text())
    shipped = report["shipped"]
    reader = load_shipped(run / "final", preset, Setting(**shipped["setting"]), shipped["weights_sha256"])
    domain = json.loads((run / "final" / "domain.json").read_text())
    report["export"] = export_model(reader, preset, report, domain, path, name)
    report["seconds_per_view"] = seconds_per_view(path, report["data"])
    card = write_reader_card(path.with_suffix(".md"), name, report, report["seconds_per_view"], notes)
    (run / "report.json").write_text(json.dumps(report, indent=2))
    figures = report["export"]
    timed = "not timed (the run's data is not where it was)" if report["seconds_per_view"] is None else \
        f"{report['seconds_per_view'] * 1000:.0f} ms per view"
    return (f"exported {path} (model card {card.name}); parity with torch verified: max logit difference "
            f"{figures['max_logit_error']:.1e}, map {figures['max_map_error']:.1e}; {timed}")


def seconds_per_view(model: Path, data: str, views: int = 8) -> float | None:
    """The exported reader through the app's engine, warm, one view at a time, on the run's first views (None
    when the run's data has moved since)."""
    from mammodesk_train.app import ModelRunner, with_assumed_spacing
    from mammodesk_train.data.sources import DataError, load_source

    try:
        records = load_source(data)[:views]
    except (DataError, OSError):
        return None
    runner = ModelRunner(model, prefer_gpu=False)
    images = [with_assumed_spacing(r.load(), r.assumed_spacing_mm) for r in records]
    runner.predict(images[0])
    started = time.perf_counter()
    for image in images:
        runner.predict(image)
    return (time.perf_counter() - started) / len(images)


def reader_metrics(report: dict) -> dict:
    """The card's `mammodesk.metrics`: what the app shows (auc, baseline comparison) and the rest of the table."""
    reported = report["reported"]
    return {"how": report["evaluation"], "auc": reported["comparison"]["model"], "baseline": reported["comparison"],
            "operating_point": reported["operating_point"], "pointing_game": reported["pointing"],
            "second_seed": report["second_seed"]["comparison"],
            "ece": {k: reported["calibration"][k] for k in ("ece_before", "ece_after")}}


def bilateral_metadata(report: dict) -> dict | None:
    shipped = report["shipped"].get("bilateral")
    evaluated = report["reported"].get("bilateral")
    if not shipped or not evaluated:
        return None
    return {**shipped, "auc": evaluated["comparison"]["model"], "baseline": evaluated["comparison"],
            "operating_point": evaluated["operating_point"], "how": evaluated["how"]}


def levels_metadata(report: dict) -> dict:
    """The shipped thresholds and scores per level, each with the reported seed's out-of-fold figures at it."""
    shipped, figures = report["shipped"]["levels"], report["reported"]["levels"]
    out = {name: {**level, "figures": _short_figures(figures.get(name))} if level else None
           for name, level in shipped.items()}
    exam = figures.get("exam")
    kind = report["data"].split(":", 1)[0]
    share = f"{report['abnormal'] / report['images']:.0%} of images" + (
        f" and {exam['abnormal'] / exam['units']:.0%} of women" if exam else "")
    out["population"] = (f"{kind.upper() if kind == 'mias' else public_spec(report['data'])} development data: "
                         f"{report['images']} images of {report['patients']} women, {share} abnormal"
                         + ("; enriched, not a screening population" if kind == "mias" else ""))
    return out


def _short_figures(figures: dict | None) -> dict | None:
    if not figures:
        return None
    c = figures["comparison"]
    return {"auc": c["model"]["mean"], "auc_sd": c["model"]["sd"], "baseline_auc": c["baseline"]["mean"],
            "beats_baseline": c["beats_baseline"],
            **{k: figures[k] for k in ("units", "abnormal", "sensitivity", "specificity", "band_share",
                                       "clear_error_rate", "coverage_abnormal", "coverage_normal")}}


def export_model(reader: WholeImageReader, preset: ReaderPreset, report: dict, domain: dict, path: Path,
                 name: str) -> dict:
    shipped = report["shipped"]
    point = report["reported"]["operating_point"]
    metadata = build_metadata(
        family="reader", name=name, task="normal_abnormal", labels=["normal", "abnormal"], spec=preset.spec(),
        input=InputLayout("image", 3, preset.height, preset.width), activation="sigmoid",
        roi=RoiMode("image", spacing_mm=preset.spacing_mm, location_window=shipped["location_window"]),
        training={"dataset": public_spec(report["data"]), "split": report["evaluation"], "samples": report["images"],
                  "abnormal": report["abnormal"], "patients": report["patients"],
                  "patients_from": report["grouping"]["counts"],
                  "patient_key_hashes": shipped["patient_key_hashes"]},
        metrics=reader_metrics(report), weights_sha256=weights_sha256(reader),
        tool_version=f"mammodesk-train {__version__}", description=f"{name}: {preset.description}",
        calibration=shipped["calibration"], domain=domain, embedding="embedding", map_output="patch_logits",
        operating_point={"threshold": shipped["threshold"], "sensitivity_target": preset.sensitivity, **point},
        bilateral=bilateral_metadata(report), levels=levels_metadata(report))
    example = torch.zeros(2, 3, preset.height, preset.width)
    half = (2, 3, preset.height // 2, preset.width // 2)
    example[:, :, : half[2], : half[3]] = torch.rand(half, generator=torch.Generator().manual_seed(0))
    return export_reader(reader, example, path, metadata)
