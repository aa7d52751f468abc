"""The reader's feature pass at scale (run on demand):

  .venv/bin/python tests/benchmarks/bench_reader_scale.py [--views 50 200] [--rows 3328 --cols 2560] [--workers 2 1]

On synthetic digital-size DICOMs (12-bit, breast-shaped, written here with pydicom), for each count of views and
each count of reading processes (`--workers`; 1: read in the run's own process, the baseline): the first feature
pass (`reader.data.prepare`, cache empty), then a second one over the same files (every image from the cache),
each in a fresh process so its peak memory (max RSS, its own and its largest worker's) is its own. Targets:
- time grows about linearly with the views (seconds per view about equal across counts);
- peak memory at the largest count within 1.5x of the smallest's (features stay on disk);
- the second pass >= 10x faster than the first (a rerun with other head settings reads no image).
Machines are noisy: compare the ratios, measured in one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_views(folder: Path, count: int, rows: int, cols: int) -> Path:
    import numpy as np

    sys.path.insert(0, str(HERE.parent))
    from dicom_factory import make_dataset, write

    lines = ["path,patient,label,laterality,view"]
    yy, xx = np.mgrid[0:rows, 0:cols]
    for i in range(count):
        rng = np.random.default_rng(i)
        side = "LR"[i % 2]
        x = xx if side == "L" else cols - 1 - xx
        disc = (x / (0.8 * cols)) ** 2 + ((yy - rows / 2) / (0.45 * rows)) ** 2 < 1
        pixels = np.where(disc, 2200, 80) + rng.normal(0, 60, (rows, cols))
        path = folder / f"v{i:05d}.dcm"
        write(make_dataset(np.clip(pixels, 0, 4095).astype(np.uint16), bits_stored=12, phi=False,
                           PixelSpacing=[0.07, 0.07], ImageLaterality=side, ViewPosition="MLO",
                           PatientID=f"P{i // 2}"), path)
        lines.append(f"{path.name},P{i // 2},{'abnormal' if i % 4 == 0 else 'normal'},{side},MLO")
    manifest = folder / "list.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def one_pass(manifest: str, cache: str, workers: int) -> dict:
    """In this (fresh) process: one feature pass; its seconds and this process's peak memory."""
    import resource

    from mammodesk_train.data.sources import load_source
    from mammodesk_train.reader.run import PRESETS

    preset = PRESETS["reader-lite0-hidden"]
    records = load_source(f"manifest:{manifest}", announce=False)
    started = time.perf_counter()
    data = preset.read(records, progress=False, cache_root=Path(cache), workers=workers)
    seconds = time.perf_counter() - started
    assert len(data) == len(records)
    return {"views": len(records), "seconds": seconds,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--views", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rows", type=int, default=3328)
    parser.add_argument("--cols", type=int, default=2560)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1],
                        help="processes reading the images (1: in this process, the baseline)")
    parser.add_argument("--one-pass", nargs=3, metavar=("MANIFEST", "CACHE", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_pass:
        print(json.dumps(one_pass(*args.one_pass[:2], int(args.one_pass[2]))))
        return 0
    results = {workers: [] for workers in args.workers}
    with tempfile.TemporaryDirectory() as root:
        for count in args.views:
            folder = Path(root) / f"views{count}"
            folder.mkdir()
            manifest = write_views(folder, count, args.rows, args.cols)
            for workers in args.workers:
                passes = []
                for _ in ("first", "cached"):
                    done = subprocess.run([sys.executable, __file__, "--one-pass", str(manifest),
                                           str(folder / f"cache{workers}"), str(workers)],
                                          capture_output=True, text=True, check=True)
                    passes.append(json.loads(done.stdout.strip().splitlines()[-1]))
                results[workers].append((count, *passes))
                print(f"{count} views of {args.cols}x{args.rows}, {workers} reading process(es): first pass "
                      f"{passes[0]['seconds']:.1f} s ({passes[0]['seconds'] / count:.2f} s/view, peak "
                      f"{passes[0]['peak_mb']:.0f} MB here, {passes[0]['worker_peak_mb']:.0f} MB a worker); cached "
                      f"{passes[1]['seconds']:.1f} s ({passes[0]['seconds'] / passes[1]['seconds']:.0f}x faster, "
                      f"peak {passes[1]['peak_mb']:.0f} MB)", flush=True)
    for workers, rows in results.items():
        (small, a, _), (large, b, _) = rows[0], rows[-1]
        print(f"{workers} process(es): time per view, {large} vs {small} views: "
              f"{b['seconds'] / large / (a['seconds'] / small):.2f}x (target about 1); peak memory: "
              f"{max(b['peak_mb'], b['worker_peak_mb']) / max(a['peak_mb'], a['worker_peak_mb']):.2f}x "
              "(target <= 1.5)")
    if len(results) > 1:
        first, *others = args.workers
        for other in others:
            print(f"{first} vs {other} reading process(es), first pass at {args.views[-1]} views: "
                  f"{results[other][-1][1]['seconds'] / results[first][-1][1]['seconds']:.2f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
