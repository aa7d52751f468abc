"""What a `predict` run has finished, kept as it goes: each image's row is appended to the CSV the moment it is
answered, and to a journal beside it (`<name>.views.jsonl`: the row and the view's answer, which the breast and
exam rows are combined from). At the end the CSV is rewritten whole, each exam's breast and exam rows after its
images. `--resume` reads the journal: the files in it are not read again, and their answers join the exams."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, fields
from pathlib import Path

from mammodesk.inference.exam import ViewAnswer
from mammodesk.inference.levels import Levels

_STORED = [f.name for f in fields(ViewAnswer) if f.name != "scale"]  # the view level's scale is the model's


class ResumeError(ValueError):
    """The journal belongs to another model or is not a journal."""


class Journal:
    def __init__(self, out: Path, columns: list[str], model: dict, *, resume: bool) -> None:
        self.out, self.columns, self.model = out, columns, model
        self.path = out.with_name(out.stem + ".views.jsonl")
        self.csv = out.suffix.lower() == ".csv"
        self.entries: list[dict] = self._read() if resume else []
        out.parent.mkdir(parents=True, exist_ok=True)
        if not resume or not self.path.is_file():
            self.path.write_text(json.dumps({"journal": "mammodesk predict", "model": model}) + "\n", "utf-8")
        if self.csv and not (resume and out.is_file()):
            out.write_text(self._lines([dict(zip(columns, columns))] + [e["row"] for e in self.entries]),
                           encoding="utf-8-sig")

    def _read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        lines = self.path.read_text("utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        if header.get("journal") != "mammodesk predict":
            raise ResumeError(f"{self.path.name} is not a predict journal; choose another --out")
        if header.get("model", {}).get("weights_sha256") != self.model.get("weights_sha256"):
            raise ResumeError(f"{self.out.name} was written by the model {header.get('model', {}).get('name')!r}; "
                              "resume with that model, or write to another --out")
        entries = []
        for line in lines[1:]:
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:  # the last line of a killed run, cut short: that file is read again
                break
        with open(self.path, "r+", encoding="utf-8") as handle:  # and the cut line goes, so appends start clean
            handle.truncate(len("\n".join(lines[:1 + len(entries)]).encode("utf-8")) + 1)
        return entries

    @property
    def files(self) -> set[str]:
        """The finished files, resolved: `./scans` and `/data/scans` name the same files."""
        return {str(Path(e["row"]["file"]).resolve()) for e in self.entries}

    def restored(self, levels: Levels | None) -> list[tuple[dict, str, ViewAnswer | None]]:
        """(row, patient, view answer) of each finished image, in the order they finished."""
        return [(e["row"], e.get("patient", ""), None if e.get("view") is None or levels is None else
                 ViewAnswer(**{**e["view"], "box": tuple(e["view"]["box"]) if e["view"]["box"] else None},
                            scale=levels.view)) for e in self.entries]

    def add(self, row: dict, patient: str = "", view: ViewAnswer | None = None) -> None:
        entry = {"row": row, "patient": patient, "view": None if view is None else
                 {k: v for k, v in asdict(view).items() if k in _STORED}}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")
        if self.csv:
            with open(self.out, "a", encoding="utf-8", newline="") as handle:
                handle.write(self._lines([row]))

    def _lines(self, rows: list[dict]) -> str:
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=self.columns, restval="", extrasaction="ignore").writerows(rows)
        return buffer.getvalue()
