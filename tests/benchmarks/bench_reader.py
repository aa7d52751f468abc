"""The whole-mammogram reader against the window scan, and headless predict (run on demand):

  .venv/bin/python tests/benchmarks/bench_reader.py [--repeat 3] [--images 10]

1. On MIAS development images and the demo's four CBIS-DDSM views (at their assumed 0.05 mm): one
   reader pass per view (`ModelRunner.predict`, map and location included) against the bundled ROI
   model's breast scan (`scan`) of the same view, interleaved in one run; their ratio is the figure
   (target: the reader >= 10x faster).
2. `mammodesk predict` with the reader over the same MIAS images, headless: seconds per image
   (target <= 0.3 s on 2 cores), beside the time to only read the same files (the floor).
The demo study in the window (every bundled model, warm) is `bench_scan.py`'s second part.
Machines are noisy: compare the ratios, which are measured in one run.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import MIAS_ARCHIVE  # noqa: E402
from timing import interleaved  # noqa: E402

from mammodesk.inference import ModelLibrary  # noqa: E402
from mammodesk.inference.batch import run_batch  # noqa: E402
from mammodesk.inference.scan import scan  # noqa: E402
from mammodesk.inference.spacing import with_assumed_spacing  # noqa: E402
from mammodesk.io import read_image  # noqa: E402

DEMO_SPACING_MM = 0.05


def mias_files(count: int) -> list[Path]:
    folder = Path(tempfile.mkdtemp())
    with tarfile.open(MIAS_ARCHIVE) as archive:
        members = sorted((m for m in archive.getmembers() if m.name.endswith(".pgm")), key=lambda m: m.name)
        archive.extractall(folder, members=members[:count], filter="data")
    return sorted((folder / "mias").glob("*.pgm"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args()
    from mammodesk.cli import demo_files

    library = ModelLibrary()
    readers = [e for e in library.entries if e.card is not None and e.card.roi.mode == "image"]
    scanners = [e for e in library.entries if e.card is not None and not e.card.reads_whole_image]
    if not readers or not scanners:
        print("needs a bundled image reader and a bundled ROI model")
        return 1
    reader = library.runner(readers[0].path, prefer_gpu=False)
    roi_model = library.runner(scanners[0].path, prefer_gpu=False)
    files = mias_files(args.images)
    views = {"MIAS": [with_assumed_spacing(read_image(f), 0.2) for f in files],
             "demo CBIS-DDSM": [read_image(f).with_meta(pixel_spacing_mm=(DEMO_SPACING_MM, DEMO_SPACING_MM))
                                for f in demo_files()]}
    print(f"reader {reader.card.name} vs scan with {roi_model.card.name}, {args.repeat} interleaved repeats")
    for label, images in views.items():
        times = interleaved({"reader": lambda: [reader.predict(i) for i in images],
                             "scan": lambda: [scan(i, roi_model) for i in images]}, args.repeat)
        one, many = times["reader"][0] / len(images), times["scan"][0] / len(images)
        print(f"  {label:<16} {len(images):>3} views: reader {one:7.0f} ms/view, scan {many:7.0f} ms/view: "
              f"{many / one:5.1f}x faster")
    started = time.perf_counter()
    for f in files:
        read_image(f)
    floor = (time.perf_counter() - started) / len(files)
    started = time.perf_counter()
    report = run_batch(reader, files, assume_spacing_mm=0.2)
    per_image = (time.perf_counter() - started) / len(files)
    print(f"  headless predict: {per_image:.3f} s per MIAS image over {len(files)} images "
          f"({report.failed} failed; reading the files alone {floor:.3f} s per image)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
