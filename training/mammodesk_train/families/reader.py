"""The whole-mammogram reader (`reader/`, after Shen et al. 2019) as a family of the registry: its presets,
catalogue text and unit registered as every family's are, so `fit --preset reader-...`, `list`, `export` and
the app's catalogue reach it through the registry. Its training protocol is its own (`reader.run.run`: nested
CV on two fold seeds, answers per view, breast and exam, the pointing game) where a sample family's is
`cv.run_cv`; both run their folds through the same outer loop, kept folds and baseline (`outer.py`), and
both ship through `shipping.py`."""

from __future__ import annotations

import json
from pathlib import Path

from mammodesk_train.families.protocol import FamilyBase, RunOptions
from mammodesk_train.families.registry import register_family
from mammodesk_train.reader.presets import CATALOGUE, PRESETS


@register_family("reader", presets=PRESETS, unit="images", catalogue=CATALOGUE, default=True)
class ReaderFamily(FamilyBase):
    accepts_init = False  # its trunk is ImageNet's (fine-tuned per fold by a fine-tuning preset)
    tasks = ("normal_abnormal",)  # normal vs any abnormality, benign included (`reader.data.READS`)
    kept_on_stop = ("Kept: every image read so far (the data folder's cache/reader-features) and every finished "
                    "outer fold (--out's folds/); run the same command again with --resume and none of them is "
                    "done again.")

    def __init__(self, preset, device: str = "auto", progress: bool = True) -> None:
        self.preset, self.device = preset, device  # device: where the trunk reads the images (auto, cpu, cuda)

    def check(self, options: RunOptions) -> None:
        if options.alternatives or not options.final:
            raise ValueError("the reader chooses its settings in the inner folds of each outer fold itself and "
                             "always fits the shipped model: --select-from and --no-final are for the other families")

    def evaluate(self, records: list, task, options: RunOptions) -> dict:
        from mammodesk_train.reader.run import run

        self.check(options)
        second = options.seed + 1 if options.second_seed is None else options.second_seed
        return run(options.data, options.out, self.preset, folds=options.folds, seed=options.seed,
                   second_seed=second, resume=options.resume, device=self.device, records=records)

    def run_comparison(self, run: Path) -> dict:
        return json.loads((run / "run.json").read_text())["comparison"]

    def export_run(self, run: Path, path: Path, name: str, notes: list[str] = ()) -> str:
        from mammodesk_train.reader.shipping import export_run

        return export_run(run, path, name, self.preset, notes)

    @staticmethod
    def summary(document: dict, out: Path) -> list[str]:
        from mammodesk_train.baseline import verdict

        lines = [f"fold seed {document[part]['seed']}: {verdict(document[part]['comparison'])}"
                 for part in ("reported", "second_seed")]
        return lines + [f"wall time {document['seconds']:.0f} s; report: {out / 'report.json'}"]
