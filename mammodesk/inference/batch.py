"""Headless batch inference over files and folders (`mammodesk predict`).
A file that can't be read is reported and skipped; the batch goes on."""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from mammodesk.errors import ImageReadError, MammoDeskError, UnsupportedFormatError
from mammodesk.inference.bilateral import Bilateral
from mammodesk.inference.exam import (ViewAnswer, combine, compare_sides, exam_key, patient_of, study_of,
                                      view_answer)
from mammodesk.inference.results import parse_box  # noqa: F401 - parse_box: predict's --roi
from mammodesk.inference.runner import ModelRunner, Prediction
from mammodesk.inference.scan import ScanResult, scan
from mammodesk.inference.spacing import spacing_source, with_assumed_spacing
from mammodesk.io import find_reader, read_image
from mammodesk.storage import write_atomic


BASE_COLUMNS = ("file", "level", "study", "laterality", "view", "status", "error", "model", "weights_sha256",
                "provider", "region", "windows", "roi", "location", "compared_with", "spacing_mm", "spacing_source",
                "predicted", "answer")
TAIL_COLUMNS = ("calibrated", "domain", "notes")
# level: "image" (one row per file); image readers add a "breast" row per breast (its views combined) and a
# "study" row per study (its most suspicious breast), each after its study's image rows.


def result_columns(labels: Sequence[str]) -> list[str]:
    """`predict`'s columns, the same for every row and every run of a model (README, "mammodesk predict"):
    the base columns, then p_<label> and votes_<label> for each of the model's labels, then the tail."""
    return [*BASE_COLUMNS, *(f"p_{label}" for label in labels), *(f"votes_{label}" for label in labels),
            *TAIL_COLUMNS]


@dataclass
class BatchReport:
    labels: tuple[str, ...] = ()  # the model's: they name the p_ and votes_ columns
    rows: list[dict[str, object]] = field(default_factory=list)
    failed: int = 0
    ignored: int = 0  # non-image files found while walking folders

    @property
    def succeeded(self) -> int:
        return len(self.rows) - self.failed


def expand_paths(paths: Sequence[str | Path], report: BatchReport) -> Iterator[Path]:
    """Files as given; folders walked recursively, keeping what a reader recognises."""
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path
            continue
        for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            try:
                find_reader(child)
            except UnsupportedFormatError:
                report.ignored += 1
                continue
            except ImageReadError:
                pass  # empty or unreadable: let the read report it
            yield child


def run_batch(runner: ModelRunner, paths: Sequence[str | Path], *, roi: Sequence[float] | None = None,
              cams_dir: Path | None = None, cam_format: str = "png", batch_size: int = 4,
              progress: Callable[[int, str], None] | None = None,
              assume_spacing_mm: float | None = None) -> BatchReport:
    """Whole-image models run `batch_size` images per onnxruntime call; ROI and
    patch models run on `roi`, or, without one, scan each breast (`scan`): the row
    then holds the most positive window's answer and how many windows were read.
    Images without a pixel spacing get `assume_spacing_mm` (the app's rule, `spacing.py`)."""
    report = BatchReport(labels=tuple(runner.card.labels))
    views: list[tuple[int, str, ViewAnswer]] = []  # (row, patient, answer) of each image a reader answered
    batched = runner.card.reads_whole_image and roi is None
    pending: list[tuple[Path, object]] = []  # (path, image or the read error)
    sources: dict[Path, str] = {}  # where each image's spacing came from

    def flush() -> None:
        images = [image for _, image in pending if not isinstance(image, Exception)]
        try:
            predictions = iter(runner.predict_many(images, batch_size=max(1, len(images))) if images else [])
        except (MammoDeskError, OSError):  # one image spoilt the batch: each alone, so only it fails
            predictions = iter([_predict_alone(runner, image) for image in images])
        for path, image in pending:  # rows stay in file order
            if isinstance(image, Exception):
                _record(report, path, None, image, cams_dir, cam_format)
            else:
                answer = _record(report, path, image, next(predictions), cams_dir, cam_format, sources[path])
                if answer is not None:
                    views.append((len(report.rows) - 1, patient_of(image.meta), answer))
        pending.clear()

    for index, path in enumerate(expand_paths(paths, report), start=1):
        if progress:
            progress(index, path.name)
        try:
            original = read_image(path)
            image = with_assumed_spacing(original, assume_spacing_mm)
            sources[path] = spacing_source(original, assume_spacing_mm)
        except (MammoDeskError, OSError) as exc:
            image = exc
        if batched:
            pending.append((path, image))
            if sum(not isinstance(i, Exception) for _, i in pending) == batch_size:
                flush()
            continue
        if isinstance(image, Exception):
            _record(report, path, None, image, cams_dir, cam_format)
            continue
        try:
            outcome = runner.predict(image, roi) if roi is not None or runner.card.reads_whole_image \
                else scan(image, runner)
        except (MammoDeskError, OSError) as exc:
            outcome = exc
        _record(report, path, image, outcome, cams_dir, cam_format, sources[path])
    flush()
    if runner.card.roi.mode == "image" and runner.card.threshold is not None:
        _add_exam_rows(report, views, runner.card.threshold, runner.card.name, Bilateral.from_card(runner.card.bilateral))
    return report


def _add_exam_rows(report: BatchReport, views: list[tuple[int, str, ViewAnswer]], threshold: float,
                   model: str, bilateral: Bilateral | None = None) -> None:
    """Breast and study rows after their exam's image rows (exams in order of first appearance); with
    `bilateral`, each image row of a view that has the other breast's becomes the comparison's answer."""
    rows = report.rows
    exams: dict[str, list[tuple[int, ViewAnswer]]] = {}
    studies = {index: str(rows[index]["study"]) for index, _, _ in views}
    for index, patient, answer in views:
        key = exam_key(studies[index], patient,
                       [(studies[i], (a.laterality, a.family)) for i, p, a in views if p == patient])
        rows[index]["study"] = key
        exams.setdefault(key, []).append((index, answer))
    for key, members in sorted(exams.items(), key=lambda item: -max(i for i, _ in item[1])):  # bottom up
        if bilateral is not None:
            compared = compare_sides([answer for _, answer in members], bilateral)
            for (index, alone), answer in zip(members, compared):
                if answer.compared_with:
                    _compared_row(rows[index], report.labels, alone, answer)
            members = [(index, answer) for (index, _), answer in zip(members, compared)]
        exam = combine([answer for _, answer in members], threshold)
        extra = [_exam_row(report.labels, key, "breast", b.laterality, b.probability, b.suspicious, b.borderline,
                           b.where, breast_notes(b), model) for b in exam.breasts]
        worst = max(exam.breasts, key=lambda b: b.probability)
        where = f"{worst.name} {worst.where}".strip() if exam.suspicious else ""
        extra.append(_exam_row(report.labels, key, "study", "", exam.probability, exam.suspicious,
                               exam.borderline, where, exam.line(), model))
        last = max(i for i, _ in members)
        rows[last + 1:last + 1] = extra


def breast_notes(breast) -> str:
    views = f"{len(breast.views)} view(s): " + ", ".join(v.name for v in breast.views)
    return "; ".join([views, *breast.caveats])


def _compared_row(row: dict[str, object], labels, alone: ViewAnswer, answer: ViewAnswer) -> None:
    """An image row's answer read against the other breast (the view-alone p kept in its notes)."""
    p, threshold = answer.probability, float(answer.threshold)  # type: ignore[arg-type]
    row[f"p_{labels[-1]}"], row[f"p_{labels[0]}"] = round(p, 6), round(1.0 - p, 6)
    row["predicted"] = labels[-1] if p >= threshold else labels[0]
    if not str(row["answer"]).startswith("no clear answer (outside"):
        row["answer"] = "no clear answer (near the decision threshold)" if answer.near_threshold(threshold) \
            else row["predicted"]
    row["compared_with"] = answer.compared_with
    row["notes"] = "; ".join(filter(None, [str(row["notes"]), f"this view alone: p {alone.probability:.3f}"]))


def _exam_row(labels, study: str, level: str, laterality, probability: float, suspicious: bool, borderline: bool,
              where: str, notes: str, model: str) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(result_columns(labels), "")
    answer = ("suspicious" if suspicious else "no finding") + (" (near the threshold)" if borderline else "")
    row.update(level=level, study=study, laterality=laterality or "", status="ok", model=model,
               region="views combined" if level == "breast" else "breasts combined", location=where,
               predicted=labels[-1] if suspicious else labels[0], answer=answer, notes=notes, calibrated="yes")
    row[f"p_{labels[-1]}"] = round(probability, 6)
    row[f"p_{labels[0]}"] = round(1.0 - probability, 6)
    return row


def _record(report: BatchReport, path: Path, image, outcome, cams_dir: Path | None, cam_format: str,
            spacing_from: str = "") -> ViewAnswer | None:
    """Append the image's row; returns the view's answer when an image reader answered."""
    row: dict[str, object] = dict.fromkeys(result_columns(report.labels), "")
    row.update(file=str(path), level="image")
    if isinstance(outcome, Exception):
        report.failed += 1
        row.update(status="failed", error=_one_line(outcome, path))
        report.rows.append(row)
        return None
    result = outcome if isinstance(outcome, ScanResult) else None
    prediction = outcome.predictions[outcome.ranked()[0]] if result else outcome
    row.update(status="ok", **prediction.as_row())
    if result is not None:  # a breast scan: the most positive window speaks for the image
        row.update(region="scan: most positive window", windows=len(result.boxes))
    elif prediction.from_image_reader:  # roi = where
        row.update(region="whole mammogram", windows="")
    else:
        row.update(region="roi" if prediction.roi_box is not None else "whole image",
                   windows=1 if prediction.roi_box is not None else "")
    spacing = image.meta.pixel_spacing_mm
    row.update(spacing_mm=f"{spacing[0]:g}" if spacing else "", spacing_source=spacing_from,
               notes="; ".join(prediction.notes))
    answer = None
    if prediction.threshold is not None:
        try:
            answer = view_answer(image, prediction, path.name)
        except (MammoDeskError, ValueError, cv2.error) as exc:  # the image's answer stands without exam rows
            row["notes"] = "; ".join(filter(None, [str(row["notes"]), f"no breast/study answer: {exc}"]))
    row["study"] = study_of(image.meta)
    if answer is not None:
        row.update(laterality=answer.laterality or "", view=answer.view or "", location=answer.where)
    if cams_dir is not None:
        try:
            if prediction.heatmaps is not None:
                save_heatmaps(prediction, image.shape, path, cams_dir, cam_format)
            if result is not None:
                _save_map(result.map.full(image.shape), cams_dir, f"{path.stem}.{prediction.model}.scan."
                          f"{prediction.labels[result.positive]}", cam_format)
        except OSError as exc:
            report.failed += 1
            row.update(status="failed", error=f"heat maps not written: {exc}")
    report.rows.append(row)
    return answer if answer is not None and row["status"] == "ok" else None


def save_heatmaps(prediction: Prediction, shape: tuple[int, int], source: Path, folder: Path, fmt: str) -> None:
    """The predicted class's maps over the whole source image: 16-bit PNG
    (0..65535 for 0..1, 0 where the model saw nothing) or float32 NPY (NaN there)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in prediction.heatmaps.names:
        index = prediction.map_class(name)  # the app's choice
        values = prediction.heatmaps.source(index, name).full(shape)
        _save_map(values, folder, f"{source.stem}.{prediction.model}.{name}.{prediction.labels[index]}", fmt)


def _predict_alone(runner, image):
    try:
        return runner.predict(image)
    except (MammoDeskError, OSError) as exc:
        return exc


def _one_line(error: Exception, path: Path) -> str:
    """The error without the file's name or path (the row's `file` column already says it)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    for prefix in (f"{path}: ", f"{path.name}: ", f"{path}", f"{path.name}"):
        if text.startswith(prefix):
            return text[len(prefix):].lstrip(" :") or text
    return text


def _save_map(values: np.ndarray, folder: Path, stem: str, fmt: str) -> None:
    """0..1 map over the source image: 16-bit PNG (0 where nothing was seen) or float32 NPY (NaN there)."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "npy":
        np.save(folder / f"{stem}.npy", values)
        return
    scaled = np.nan_to_num(np.clip(values, 0, 1), nan=0.0) * 65535.0
    if not cv2.imwrite(str(folder / f"{stem}.png"), np.rint(scaled).astype(np.uint16)):
        raise OSError(f"could not write {folder / stem}.png")


def write_report(report: BatchReport, out: Path, runner: ModelRunner) -> None:
    """CSV (one row per image) or JSON (rows plus the run's model and providers),
    written atomically so an interrupted run never leaves half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        card = runner.card
        document = {"model": {"name": card.name, "family": card.family, "task": card.task,
                              "labels": list(card.labels), "weights_sha256": card.weights_sha256},
                    "providers": runner.providers, "fallback": runner.fallback_reason,
                    "failed": report.failed, "ignored_non_images": report.ignored, "results": report.rows}
        text = json.dumps(document, indent=2)
    else:
        columns = result_columns(report.labels)
        with tempfile.SpooledTemporaryFile(mode="w+", newline="") as buffer:
            writer = csv.DictWriter(buffer, fieldnames=columns, restval="", extrasaction="raise")
            writer.writeheader()
            writer.writerows(report.rows)
            buffer.seek(0)
            text = buffer.read()
    write_atomic(out, text.encode("utf-8"))


def terminal_progress(total_hint: str = "") -> Callable[[int, str], None]:
    def show(index: int, name: str) -> None:
        end = "\r" if sys.stderr.isatty() else "\n"
        print(f"[{index}{total_hint}] {name}", end=end, file=sys.stderr, flush=True)

    return show
