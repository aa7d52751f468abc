"""Screening a change to the whole-mammogram reader before it enters the nested CV: fixed head settings in
patient-level 5-fold CV on screening fold seeds (2 and 3 by default, never the reported 0 and 1), with the
image AUC, the exam AUC (the higher breast's image logit) and the share of located findings inside the
location box (the peak cell). A change is worth a nested run only if it wins on every screening seed.

- `--settings k:weight_decay:cell_weight:hidden,...` the heads (each its own column);
- `--bag N`: each head also as the mean image logit of N heads fitted from N seeds;
- `--spacing MM`: each head also as the mean of the shipped spacing's and this spacing's image logits
  (the trunk read a second time at MM; its features are cached like any reader run's).

Usage: python scripts/reader_screen.py [--data mias:../shared/data/mias-dev.tar.gz] [--seeds 2,3]
           [--settings 2:0.3:1:32,2:0.3:0:32] [--bag 5] [--spacing 0.8]"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from mammodesk_train.data.sources import load_source
from mammodesk_train.reader.fit import Setting, auc, fit_heads, pointing_hits, reader_logits
from mammodesk_train.reader.levels import exam_table
from mammodesk_train.reader.presets import PRESETS
from mammodesk_train.reader.model import STRIDE
from mammodesk_train.reader.run import labelled
from mammodesk_train.splits import patient_kfold


def at_spacing(preset, spacing_mm: float):
    """The preset reading the same field of view at another spacing."""
    size = lambda n: max(STRIDE, round(n * preset.spacing_mm / spacing_mm / STRIDE) * STRIDE)  # noqa: E731
    return dataclasses.replace(preset, spacing_mm=spacing_mm, height=size(preset.height), width=size(preset.width))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="mias:../shared/data/mias-dev.tar.gz")
    parser.add_argument("--preset", default="reader-lite0-hidden")
    parser.add_argument("--seeds", default="2,3")
    parser.add_argument("--settings", default="2:0.3:1:32")
    parser.add_argument("--bag", type=int, default=0)
    parser.add_argument("--spacing", type=float, default=0.0)
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    settings = [Setting(int(k), float(wd), float(cw), int(h))
                for k, wd, cw, h in (s.split(":") for s in args.settings.split(","))]
    records = labelled(load_source(args.data), 5)
    data = preset.read(records)
    other = at_spacing(preset, args.spacing).read(records) if args.spacing else None
    for seed in (int(s) for s in args.seeds.split(",")):
        columns: dict[str, np.ndarray] = {}
        hits: dict[str, list[bool]] = {}
        for fold in patient_kfold(data.y, data.groups, 5, seed):
            fits = (fit_heads(data, fold.train, settings, preset.schedule, seed + fold.index + 1000 * b)
                    for b in range(max(1, args.bag)))
            for j, heads in enumerate(fits):
                for setting, head in zip(settings, heads):
                    name = setting.text()
                    logits = reader_logits(head, data, fold.test)
                    if j == 0:
                        columns.setdefault(name, np.full(len(data), np.nan))[fold.test] = logits
                        hits.setdefault(name, []).extend(pointing_hits(head, data, fold.test)[1])
                    if args.bag:
                        bagged = columns.setdefault(f"{name}, bag of {args.bag}", np.zeros(len(data)))
                        bagged[fold.test] += logits / args.bag
            if other is not None:
                for setting, head in zip(settings, fit_heads(other, fold.train, settings, preset.schedule,
                                                             seed + fold.index)):
                    both = columns.setdefault(f"{setting.text()}, with {args.spacing:g} mm", np.zeros(len(data)))
                    both[fold.test] = (columns[setting.text()][fold.test] + reader_logits(head, other, fold.test)) / 2
        for name, z in columns.items():
            _, exams, exam_y = exam_table(z, data.y, data.groups, data.sides)
            box = f", location box {np.mean(hits[name]):.3f}" if name in hits else ""
            print(f"seed {seed} | {name}: image AUC {auc(data.y, z):.3f}, exam AUC {auc(exam_y, exams[:, 0]):.3f}{box}",
                  flush=True)


if __name__ == "__main__":
    main()
