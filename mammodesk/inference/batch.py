"""Headless batch inference over files and folders (`mammodesk predict`).
A file that can't be read is reported and skipped; the batch goes on."""

from __future__ import annotations

import csv
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from mammodesk.anatomy import Anatomy, read_anatomy
from mammodesk.errors import ImageReadError, MammoDeskError, UnsupportedFormatError
from mammodesk.inference.bilateral import Bilateral
from mammodesk.inference.exam import (ViewAnswer, answer_text, combine, exam_key, patient_of, study_of, view_answer,
                                      view_caveat)
from mammodesk.inference.journal import Journal
from mammodesk.inference.levels import UNCLEAR, Levels
from mammodesk.inference.results import format_box, parse_box  # noqa: F401 - parse_box: predict's --roi
from mammodesk.inference.runner import ModelRunner, Prediction
from mammodesk.inference.scan import ScanResult, scan
from mammodesk.inference.spacing import spacing_source, with_assumed_spacing
from mammodesk.io import find_format, read_image
from mammodesk.io.decoding import DecodeFailed, decode_all
from mammodesk.preprocessing.spatial import BreastOutline, outline_breast
from mammodesk.storage import write_atomic


COLUMNS = ("file", "level", "exam", "laterality", "view", "status", "error", "answer", "score", "flagged")
PLACE_COLUMNS = ("location", "box", "compared_with", "region", "windows", "spacing_mm", "spacing_source", "domain",
                 "notes")
DECIMALS = 3  # probabilities as a spreadsheet reader reads them
DECODE_TIMEOUT_S = 120.0  # a file whose decoding takes longer fails alone (a damaged stream can hang a decoder)
# level: "image" (one row per file); image readers add a "breast" row per breast (its views combined) and an
# "exam" row per exam (both breasts), each after its exam's image rows. The model, its weights digest and the
# execution provider are the run's, written once beside the CSV (`<name>.model.json`), not on every row.


def result_columns(labels: Sequence[str], votes: bool = False) -> list[str]:
    """`predict`'s columns, the same for every row and every run of a model (docs/PREDICT.md):
    the answer, p_<label> for each of the model's labels (votes_<label> for patch models), then where."""
    return [*COLUMNS, *(f"p_{label}" for label in labels), *(f"votes_{label}" for label in labels if votes),
            *PLACE_COLUMNS]


@dataclass
class BatchReport:
    labels: tuple[str, ...] = ()  # the model's: they name the p_ and votes_ columns
    votes: bool = False  # patch models: a votes_ column per label
    rows: list[dict[str, object]] = field(default_factory=list)
    failed: int = 0
    ignored: int = 0  # non-image files found while walking folders

    @property
    def images_done(self) -> int:
        return sum(row["level"] == "image" and row["status"] == "ok" for row in self.rows)

    def new_row(self, **values) -> dict[str, object]:
        row: dict[str, object] = dict.fromkeys(result_columns(self.labels, self.votes), "")
        row.update(values)
        return row


def expand_paths(paths: Sequence[str | Path], report: BatchReport) -> Iterator[Path]:
    """Files as given; folders walked recursively, keeping what a reader recognises."""
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path
            continue
        for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            try:
                find_format(child)
            except UnsupportedFormatError:
                report.ignored += 1
                continue
            except ImageReadError:
                pass  # empty or unreadable: let the read report it
            yield child


def run_batch(runner: ModelRunner, paths: Sequence[str | Path], *, roi: Sequence[float] | None = None,
              cams_dir: Path | None = None, cam_format: str = "png", batch_size: int = 4,
              progress: Callable[[int, int, str], None] | None = None,
              assume_spacing_mm: float | None = None, decode_workers: int = 2,
              decode_timeout_s: float = DECODE_TIMEOUT_S, journal: Journal | None = None) -> BatchReport:
    """Whole-image models run `batch_size` images per onnxruntime call; ROI and
    patch models run on `roi`, or, without one, scan each breast (`scan`): the row
    then holds the most positive window's answer and how many windows were read.
    Images without a pixel spacing get `assume_spacing_mm` (the app's rule, `spacing.py`).
    Files are decoded in `decode_workers` processes while the model runs, each within `decode_timeout_s`:
    a file that hangs its decoder fails alone (`decoding.decode_all`). With a `journal`, each image's row is
    kept as it is answered, and the files the journal already holds are not read again (`--resume`)."""
    report = BatchReport(labels=tuple(runner.card.labels), votes=runner.card.mode.votes)
    levels = runner.card.level_rules
    views: list[tuple[int, str, ViewAnswer]] = []  # (row, patient, answer) of each image a reader answered
    batched = runner.card.reads_whole_image and roi is None
    pending: list[tuple[Path, object]] = []  # (path, image or the read error)
    sources: dict[Path, str] = {}  # where each image's spacing came from
    anatomies: dict[Path, tuple[Anatomy, BreastOutline] | None] = {}  # image readers: each view as the app reads it

    def flush() -> None:
        ready = [(path, image) for path, image in pending if not isinstance(image, Exception)]
        images = [image for _, image in ready]
        read_as = [a[0].view if (a := anatomies.get(path)) is not None else None for path, _ in ready]
        try:
            predictions = iter(runner.predict_many(images, batch_size=max(1, len(images)), views=read_as)
                               if images else [])
        except (MammoDeskError, OSError):  # one image spoilt the batch: each alone, so only it fails
            predictions = iter([_predict_alone(runner, image, view) for image, view in zip(images, read_as)])
        for path, image in pending:  # rows stay in file order
            if isinstance(image, Exception):
                _record(report, path, None, image, cams_dir, cam_format)
                kept()
            else:
                answer = _record(report, path, image, next(predictions), cams_dir, cam_format, sources[path], levels,
                                 anatomies.get(path))
                if answer is not None:
                    views.append((len(report.rows) - 1, patient_of(image.meta), answer))
                kept(patient_of(image.meta), answer)
        pending.clear()

    def kept(patient: str = "", answer: ViewAnswer | None = None) -> None:
        if journal is not None:
            journal.add(report.rows[-1], patient, answer)

    for row, patient, answer in journal.restored(levels) if journal is not None else ():  # --resume
        report.rows.append(row)
        report.failed += row["status"] != "ok"
        if answer is not None:
            views.append((len(report.rows) - 1, patient, answer))
    done = journal.files if journal is not None else set()

    tasks = [(path, assume_spacing_mm, levels is not None) for path in expand_paths(paths, report)
             if str(path.resolve()) not in done]
    for index, (task, decoded) in enumerate(decode_all(decode_view, tasks, workers=decode_workers,
                                                       timeout_s=decode_timeout_s), start=1):
        path = task[0]
        if progress:
            progress(index, len(tasks), path.name)
        if isinstance(decoded, DecodeFailed):
            image = decoded
        else:
            image, sources[path], anatomies[path] = decoded
        if batched:
            pending.append((path, image))
            if sum(not isinstance(i, Exception) for _, i in pending) == batch_size:
                flush()
            continue
        if isinstance(image, Exception):
            _record(report, path, None, image, cams_dir, cam_format)
            kept()
            continue
        try:
            outcome = runner.predict(image, roi) if roi is not None or runner.card.reads_whole_image \
                else scan(image, runner)
        except (MammoDeskError, OSError) as exc:
            outcome = exc
        _record(report, path, image, outcome, cams_dir, cam_format, sources[path], levels)
        kept()
    flush()
    if levels is not None:
        _add_exam_rows(report, views, levels, Bilateral.from_card(runner.card.bilateral))
    return report


def _add_exam_rows(report: BatchReport, views: list[tuple[int, str, ViewAnswer]], levels: Levels,
                   bilateral: Bilateral | None = None) -> None:
    """Breast and exam rows after their exam's image rows (exams in order of first appearance); with
    `bilateral`, each image row of a view that has the other breast's becomes the comparison's answer
    (one number for the view and its breast; the view alone kept in its notes)."""
    rows = report.rows
    exams: dict[str, list[tuple[int, ViewAnswer]]] = {}
    studies = {index: str(rows[index]["exam"]) for index, _, _ in views}
    for index, patient, answer in views:
        key = exam_key(studies[index], patient,
                       [(studies[i], (a.laterality, a.family)) for i, p, a in views if p == patient])
        rows[index]["exam"] = key
        exams.setdefault(key, []).append((index, answer))
    for key, members in sorted(exams.items(), key=lambda item: -max(i for i, _ in item[1])):  # bottom up
        exam = combine([answer for _, answer in members], levels, bilateral)
        by_name = {v.name: (v, b.caveat) for b in exam.breasts for v in b.views}
        for index, alone in members:
            _view_row(rows[index], report.labels, *by_name[alone.name])
        extra = [_level_row(report, key, "breast", b.laterality or "", b.answer, b.score, b.flagged, b.probability,
                            b.where if b.flagged else "", b.caveat, breast_notes(b)) for b in exam.breasts]
        extra.append(_level_row(report, key, "exam", "", exam.answer, exam.score, exam.flagged, exam.probability,
                                exam.where, exam.caveat, exam_notes(exam)))
        last = max(i for i, _ in members)
        rows[last + 1:last + 1] = extra


def breast_notes(breast) -> str:
    return f"{len(breast.views)} view(s): " + ", ".join(v.name for v in breast.views)


def exam_notes(exam) -> str:
    how = "exam rule on both breasts" if exam.ruled else "its one breast's answer"
    return f"{how}; " + "; ".join(b.line() for b in exam.breasts)


def _view_row(row: dict[str, object], labels, view: ViewAnswer, breast_caveat: str) -> None:
    """An image row's answer as its exam reads it (as the app shows it): the comparison's p when read against
    the other breast; no box unless flagged; no answer, p, score or flag where the view or its breast has none."""
    if view.compared_with:
        row[f"p_{labels[-1]}"], row[f"p_{labels[0]}"] = round(view.probability, DECIMALS), \
            round(1.0 - view.probability, DECIMALS)
        row["compared_with"] = view.compared_with
        row["notes"] = "; ".join(filter(None, [str(row["notes"]), f"this view alone: p {view.alone:.3f}"]))
    caveat = view_caveat(view, breast_caveat)
    if caveat:
        row.update({f"p_{label}": "" for label in labels})
        row.update(answer=answer_text(UNCLEAR, None, caveat), score="", flagged="", box="", location="")
        return
    row.update(answer=view.answer, score=view.score or "", flagged=_yes(view.flagged))
    if not view.flagged:
        row.update(box="", location="")


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _level_row(report: BatchReport, exam: str, level: str, laterality: str, answer: str, score, flagged: bool,
               probability: float, where: str, caveat: str, notes: str) -> dict[str, object]:
    labels = report.labels
    row = report.new_row(level=level, exam=exam, laterality=laterality, status="ok",
                         region="views combined" if level == "breast" else "breasts combined", location=where,
                         notes=notes, domain=caveat or "in domain")
    if caveat:  # never more sure than its views: no p, score, flag or place
        row.update(answer=answer_text(answer, None, caveat), location="")
        return row
    row.update(answer=answer, score=score or "", flagged=_yes(flagged))
    row[f"p_{labels[-1]}"] = round(probability, DECIMALS)
    row[f"p_{labels[0]}"] = round(1.0 - probability, DECIMALS)
    return row


def decode_view(task: tuple[Path, float | None, bool]) -> tuple:
    """In a decoding worker: the image with its assumed spacing, where its spacing came from, and (for image
    readers) its anatomy and breast outline. Raises the reader's error for a file that cannot be read."""
    path, assume_spacing_mm, with_anatomy = task
    original = read_image(path)
    image = with_assumed_spacing(original, assume_spacing_mm)
    return image, spacing_source(original, assume_spacing_mm), _anatomy(image) if with_anatomy else None


def _anatomy(image) -> tuple[Anatomy, BreastOutline] | None:
    """The view's side and kind as the app reads them, and the breast outline they come from, found once (None
    where no breast is found: the read fails later)."""
    try:
        outline = outline_breast(image)
        return read_anatomy(image, outline), outline
    except (MammoDeskError, ValueError, cv2.error):
        return None


def _record(report: BatchReport, path: Path, image, outcome, cams_dir: Path | None, cam_format: str,
            spacing_from: str = "", levels: Levels | None = None,
            anatomy: tuple[Anatomy, BreastOutline] | None = None) -> ViewAnswer | None:
    """Append the image's row; returns the view's answer when an image reader answered."""
    row = report.new_row(file=str(path), level="image")
    if isinstance(outcome, Exception):
        report.failed += 1
        row.update(status="failed", error=_one_line(outcome, path))
        report.rows.append(row)
        return None
    result = outcome if isinstance(outcome, ScanResult) else None
    prediction = outcome.predictions[outcome.ranked()[0]] if result else outcome
    row.update(status="ok", **prediction_row(prediction))
    if result is not None:  # a breast scan: the most positive window speaks for the image
        row.update(region="scan: most positive window", windows=len(result.boxes))
    elif prediction.from_image_reader:  # box = where
        row.update(region="whole mammogram", windows="")
    else:
        row.update(region="roi" if prediction.roi_box is not None else "whole image",
                   windows=1 if prediction.roi_box is not None else "")
    spacing = image.meta.pixel_spacing_mm
    row.update(spacing_mm=f"{spacing[0]:g}" if spacing else "", spacing_source=spacing_from,
               notes="; ".join(prediction.notes))
    answer = None
    if levels is not None:
        try:
            answer = view_answer(image, prediction, path.name, levels, *(anatomy or (None, None)))
        except (MammoDeskError, ValueError, cv2.error) as exc:  # the image's answer stands without exam rows
            row["notes"] = "; ".join(filter(None, [str(row["notes"]), f"no breast/exam answer: {exc}"]))
    row["exam"] = study_of(image.meta)
    if prediction.from_image_reader and row.get("flagged") != "yes":
        row.update(box="")  # a reader's location is a mark: only where the answer is flagged
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


def prediction_row(prediction: Prediction) -> dict[str, object]:
    """One image's answer in `predict`'s columns (probabilities to DECIMALS places)."""
    row: dict[str, object] = {f"p_{label}": round(float(p), DECIMALS)
                              for label, p in zip(prediction.labels, prediction.probabilities)}
    if prediction.votes is not None:
        row.update({f"votes_{label}": int(v) for label, v in zip(prediction.labels, prediction.votes)})
    if prediction.roi_box is not None:
        row["box"] = format_box(prediction.roi_box)
    row["domain"] = prediction.domain.text() if prediction.domain is not None else "not checked"
    row["answer"] = prediction.verdict()
    if prediction.threshold is not None:
        row["flagged"] = _yes(float(prediction.probabilities[-1]) >= prediction.threshold)
    if prediction.score is not None:
        row["score"] = prediction.score
    return row


def save_heatmaps(prediction: Prediction, shape: tuple[int, int], source: Path, folder: Path, fmt: str) -> None:
    """The predicted class's maps over the whole source image: 16-bit PNG
    (0..65535 for 0..1, 0 where the model saw nothing) or float32 NPY (NaN there)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in prediction.heatmaps.names:
        index = prediction.map_class(name)  # the app's choice
        values = prediction.heatmaps.source(index, name).full(shape)
        _save_map(values, folder, f"{source.stem}.{prediction.model}.{name}.{prediction.labels[index]}", fmt)


def _predict_alone(runner, image, view: str | None = None):
    try:
        return runner.predict(image, view=view)
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


def run_description(report: BatchReport, runner: ModelRunner) -> dict:
    """What ran, once per run: the model, its weights digest, the providers, the counts."""
    card = runner.card
    return {"model": {"name": card.name, "family": card.family, "task": card.task, "labels": list(card.labels),
                      "weights_sha256": card.weights_sha256, "calibrated": bool(card.calibration),
                      "population": (card.level_rules.population if card.level_rules else "")},
            "providers": runner.providers, "fallback": runner.fallback_reason,
            "images": report.images_done, "failed": report.failed, "ignored_non_images": report.ignored}


def write_report(report: BatchReport, out: Path, runner: ModelRunner) -> Path | None:
    """CSV (one row per image, breast and exam; UTF-8 with a byte-order mark, which Excel needs to read it as
    UTF-8), with the run's description beside it (`<stem>.model.json`, returned); or JSON holding both.
    Written atomically so an interrupted run never leaves half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    about = run_description(report, runner)
    if out.suffix.lower() == ".json":
        write_atomic(out, json.dumps({**about, "results": report.rows}, indent=2).encode("utf-8"))
        return None
    with tempfile.SpooledTemporaryFile(mode="w+", newline="", encoding="utf-8") as buffer:
        writer = csv.DictWriter(buffer, fieldnames=result_columns(report.labels, report.votes), restval="",
                                extrasaction="raise")
        writer.writeheader()
        writer.writerows(report.rows)
        buffer.seek(0)
        text = buffer.read()
    sidecar = out.with_name(out.stem + ".model.json")
    write_atomic(sidecar, json.dumps(about, indent=2).encode("utf-8"))
    write_atomic(out, text.encode("utf-8-sig"))
    return sidecar


def terminal_progress() -> Callable[[int, int, str], None]:
    """[12/2000] name · 3.1 files/s · about 11 min left: on one line in a terminal, a line each in a log."""
    started = time.monotonic()

    def show(index: int, total: int, name: str) -> None:
        elapsed = time.monotonic() - started
        rate = (index - 1) / elapsed if index > 1 and elapsed > 0 else None
        left = f" · {rate:.1f} files/s · about {duration((total - index + 1) / rate)} left" if rate else ""
        end = "\r" if sys.stderr.isatty() else "\n"
        print(f"[{index}/{total}] {name}{left}", end=end, file=sys.stderr, flush=True)

    return show


def duration(seconds: float) -> str:
    """A time left or taken, in the unit a reader wants: 45 s, 12 min, 2.5 h."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else \
        f"{seconds / 3600:.1f} h"
