"""The reader's head fitting at scale (run on demand):

  .venv/bin/python tests/benchmarks/bench_reader_heads.py [--views 500 2000] [--preset reader-lite0-hidden]

On synthetic trunk features of the preset's map size (every view upright and flipped, as the preset reads;
42 % breast cells, as MIAS at this preset), for each count of views, one inner fold of `choose` (every
setting of the preset on two thirds of the views):
- fitted together (`fit_heads`: rows streamed, only the cells a loss sees, settings in one pass);
- the baseline, in the same run: the heads fitted one by one on every cell, as the reader fitted them before
  (`tests/reader_reference.py`), timed for one linear and one hidden setting and scaled to the preset's;
then the whole run's head fitting extrapolated from each (two fold seeds of nested CV, the shipped choice, its
out-of-fold heads). Targets: together >= 4x faster than the baseline, time about linear in the views.
Machines are noisy: compare the ratios, measured in one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: the reference fit

def main() -> None:
    from mammodesk_train.reader.fit import fit_heads

    from reader_reference import fit_one_head, synthetic_reader_data
    from mammodesk_train.reader.model import STRIDE
    from mammodesk_train.reader.run import PRESETS

    parser = argparse.ArgumentParser()
    parser.add_argument("--views", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--preset", default="reader-lite0-hidden")
    parser.add_argument("--channels", type=int, default=112)  # Lite0's fifth stage
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    settings, schedule = list(preset.settings), preset.schedule
    cells = (preset.height // STRIDE) * (preset.width // STRIDE)
    print(f"{args.preset}: {len(settings)} settings, {cells} cells x {args.channels} channels, "
          f"{schedule.epochs} epochs, {torch.get_num_threads()} threads")
    linear = next(s for s in settings if not s.hidden)
    hidden = next((s for s in settings if s.hidden), linear)
    share = {s: sum(1 for t in settings if bool(t.hidden) == bool(s.hidden)) for s in (linear, hidden)}
    for views in args.views:
        data = synthetic_reader_data(views, cells, args.channels, breast_share=0.42, lift=0.2, finding_share=0.02,
                                     seed=0)  # 42 % breast cells: MIAS maps at this preset
        train = np.arange(views * 2 // 3)
        started = time.perf_counter()
        fit_heads(data, train, settings, schedule, seed=0)
        t_together = time.perf_counter() - started
        t_before, one = 0.0, 0.0
        for setting in {linear, hidden}:
            started = time.perf_counter()
            fit_one_head(data, train, setting, schedule, 0, all_cells=True)
            seconds = time.perf_counter() - started
            t_before += seconds * share[setting]
            one = max(one, seconds)
        # per seed: 5 outer folds x (3 inner choices + the fold's head); then the shipped choice (3 inner), its
        # 5 out-of-fold heads and the shipped head. Inner folds train on 2/3 of 4/5 of the views: scaled. One
        # setting alone (the outer folds' heads) is timed as the baseline's, an overestimate for `fit_head`.
        inner, outer = 4 / 5, 5 / 4
        run_together = 2 * 5 * (3 * t_together * inner + one) + 3 * t_together * outer + 6 * one * outer
        run_before = 2 * 5 * (3 * t_before * inner + one) + 3 * t_before * outer + 6 * one * outer
        print(f"{views} views: one inner fold, {len(settings)} settings: together {t_together:.1f} s, before "
              f"{t_before:.1f} s ({t_before / t_together:.2f}x); a whole run's head fitting about "
              f"{run_together / 60:.0f} min (before: {run_before / 60:.0f} min)", flush=True)


if __name__ == "__main__":
    main()
