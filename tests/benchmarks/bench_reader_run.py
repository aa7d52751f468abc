"""A whole reader run at digital size (run on demand):

  .venv/bin/python tests/benchmarks/bench_reader_run.py [--views 100 300] [--rows 3328 --cols 2560]

On synthetic digital-size DICOMs (12-bit, `bench_reader_scale.write_views`), for each count of views, in a fresh
process with an empty cache: `mammodesk-train reader --preset reader-lite0-hidden` (the feature pass, nested CV
on both fold seeds, calibration, operating point, levels) and its export (`--export ... --force`: the synthetic
labels carry no signal, so the model cannot beat its baseline). Prints the wall time of the feature pass (from
the run's own progress line) and of the whole run, the peak memory, and the whole run extrapolated to 2,000
views at the cost of a further view between the smallest and largest count (the parts grow linearly:
`bench_reader_scale.py`, `bench_reader_heads.py`).
Target (#51): 2,000 views within 30 minutes on 2 cores. Machines are noisy: compare counts measured in one run.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_reader_scale import write_views  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--views", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--rows", type=int, default=3328)
    parser.add_argument("--cols", type=int, default=2560)
    args = parser.parse_args()
    measured = []
    for count in args.views:
        with tempfile.TemporaryDirectory() as root:
            folder = Path(root) / "views"
            folder.mkdir()
            manifest = write_views(folder, count, args.rows, args.cols)
            env = {**os.environ, "MAMMODESK_DATA_DIR": str(Path(root) / "data")}  # an empty feature cache
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "mammodesk_train.entry", "reader", "--data",
                                   f"manifest:{manifest}", "--out", str(Path(root) / "run"), "--device", "cpu",
                                   "--export", str(Path(root) / "model" / "bench-reader.onnx"), "--force"],
                                  capture_output=True, text=True, env=env)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
                return 1
            read = re.search(r"reading images through the trunk: \d+/\d+ images.*, (\S+ ?\S*)$", done.stdout, re.M)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"{count} views of {args.cols}x{args.rows}: whole run {seconds / 60:.1f} min ({seconds / count:.2f} "
                  f"s/view; the feature pass {read.group(1) if read else '?'}), peak memory so far {peak:.0f} MB",
                  flush=True)
            measured.append((count, seconds))
    (small, early), (count, seconds) = measured[0], measured[-1]
    per_view = (seconds - early) / (count - small) if count > small else seconds / count  # the fixed cost apart
    print(f"extrapolated to 2,000 views: about {(seconds + per_view * (2000 - count)) / 60:.0f} min "
          f"({per_view:.2f} s per further view; target: 30 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
