"""The reader's head fitting at scale (run on demand):

  .venv/bin/python tests/benchmarks/bench_reader_heads.py [--views 500 2000] [--preset reader-lite0-hidden]

On synthetic trunk features of the preset's map size (every view upright and flipped, as the preset reads),
for each count of views: one inner fold of `choose` (every setting of the preset on two thirds of the
views), its settings fitted together (`fit_heads`) against the same settings fitted one by one, in the same
run; then the whole run's head fitting extrapolated from them (two fold seeds of nested CV, the shipped
choice, its out-of-fold heads). Targets: fitted together >= 2x faster than one by one, the same heads
(largest logit difference printed), and time about linear in the views. Machines are noisy: compare the
ratios, measured in one run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def synthetic(views: int, cells: int, channels: int):
    from mammodesk_train.reader.data import ReaderData

    generator = torch.Generator().manual_seed(0)
    features = torch.randn(views, cells, channels, generator=generator)
    breast = torch.rand(views, cells, generator=generator) < 0.6
    y = np.arange(views) % 3 == 0
    features[y] += 0.2 * breast[y, :, None]
    finding = breast & (torch.rand(views, cells, generator=generator) < 0.02) & torch.as_tensor(y)[:, None]
    return ReaderData([str(i) for i in range(views)], y.astype(int), np.arange(views) // 2, features, breast,
                      finding, finding.any(1).numpy(), [[] for _ in range(views)], np.zeros((views, 1)), (1, cells),
                      [None] * views, np.zeros((views, 2)), [None] * views, [None] * views, 8.0,
                      features.flip(1).clone())


def main() -> None:
    from mammodesk_train.reader.fit import fit_head, fit_heads, reader_logits
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
    for views in args.views:
        data = synthetic(views, cells, args.channels)
        train, test = np.arange(views * 2 // 3), np.arange(views * 2 // 3, views)
        started = time.perf_counter()
        together = fit_heads(data, train, settings, schedule, seed=0)
        t_together = time.perf_counter() - started
        started = time.perf_counter()
        alone = [fit_head(data, train, s, schedule, seed=0) for s in settings]
        t_alone = time.perf_counter() - started
        worst = max(float(np.abs(reader_logits(a, data, test) - reader_logits(b, data, test)).max())
                    for a, b in zip(together, alone))
        one = t_alone / len(settings)  # one setting's fit (the outer folds' own heads, the shipped one)
        # per seed: 5 outer folds x (3 inner choices + the fold's head); then the shipped choice (3 inner), its
        # 5 out-of-fold heads and the shipped head. Inner folds train on 2/3 of 4/5 of the views: scaled.
        inner, outer = 4 / 5, 5 / 4
        run_together = 2 * 5 * (3 * t_together * inner + one) + 3 * t_together * outer + 6 * one * outer
        run_alone = 2 * 5 * (3 * t_alone * inner + one) + 3 * t_alone * outer + 6 * one * outer
        print(f"{views} views: one inner fold, {len(settings)} settings: together {t_together:.1f} s, one by one "
              f"{t_alone:.1f} s ({t_alone / t_together:.2f}x); largest logit difference {worst:.1e}; a whole "
              f"run's head fitting about {run_together / 60:.0f} min (one by one: {run_alone / 60:.0f} min)",
              flush=True)


if __name__ == "__main__":
    main()
