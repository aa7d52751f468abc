"""Breast scans and whole-study latency (run on demand, offscreen):

  .venv/bin/python tests/benchmarks/bench_scan.py [--repeat 3] [--models DIR]

1. Per bundled ROI or patch model, on one MIAS image and one CBIS-DDSM view of
   the demo (at its assumed 0.05 mm): the per-window path (`predict`, heat maps
   and all, once per window; what the app did before) against the batched scan
   (`scan`), interleaved, with their ratio and the largest probability difference.
2. The demo study in the main window: from "Run all models" to the last answer,
   cold (a fresh window: sessions created while the images decode) and warm (the
   same request again, with the answer cache cleared), with the UI stall meter.
Machines are noisy: compare the ratios, which are measured in one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np  # noqa: E402
from conftest import MIAS_ARCHIVE  # noqa: E402
from timing import interleaved  # noqa: E402

from mammodesk.inference import ModelLibrary  # noqa: E402
from mammodesk.inference.scan import scan  # noqa: E402
from scan_reference import scan_per_window  # noqa: E402
from mammodesk.io import read_image  # noqa: E402

DEMO_SPACING_MM = 0.05


def mias_image(name: str = "mdb028.pgm"):
    import tarfile
    import tempfile

    folder = Path(tempfile.mkdtemp())
    with tarfile.open(MIAS_ARCHIVE) as archive:
        member = archive.getmember(f"mias/{name}")
        archive.extractall(folder, members=[member], filter="data")
    return read_image(folder / "mias" / name)


def scans(library: ModelLibrary, repeat: int) -> None:
    from mammodesk.cli import demo_files

    images = {"MIAS mdb028": mias_image(),
              "CBIS-DDSM R CC (0.05 mm assumed)": read_image(demo_files()[0]).with_meta(
                  pixel_spacing_mm=(DEMO_SPACING_MM, DEMO_SPACING_MM))}
    print(f"{'model':<32}{'image':<34}{'windows':>8}{'per-window ms':>15}{'batched ms':>12}{'speed-up':>10}"
          f"{'max |dp|':>10}")
    for entry in library.entries:
        if entry.card is None or entry.card.reads_whole_image:
            continue
        runner = library.runner(entry.path, prefer_gpu=False)
        for label, image in images.items():
            fast, slow = scan(image, runner), scan_per_window(image, runner)
            worst = max(float(np.abs(a.probabilities - b.probabilities).max())
                        for a, b in zip(fast.predictions, slow.predictions))
            times = interleaved({"per-window": lambda: scan_per_window(image, runner),
                                 "batched": lambda: scan(image, runner)}, repeat)
            per, batched = times["per-window"][0], times["batched"][0]
            print(f"{entry.name:<32}{label:<34}{len(fast.boxes):>8}{per:>15.0f}{batched:>12.0f}"
                  f"{per / batched:>9.1f}x{worst:>10.1e}")


def study(repeat: int) -> None:
    from PySide6 import QtCore, QtWidgets

    from mammodesk.cli import demo_files
    from mammodesk.qt.app import MainWindow
    from ui_stall import StallMeter

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench"])
    files = demo_files()

    def run_all(window) -> float:
        done = []
        window.second_opinion.idle.connect(lambda: done.append(time.perf_counter()))
        start = time.perf_counter()
        window.second_opinion.run(None, "auto", all_images=True)
        while not done:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        return done[0] - start

    settings = QtCore.QSettings(str(Path("/tmp/bench-scan.ini")), QtCore.QSettings.Format.IniFormat)
    window = MainWindow(settings)
    window.resize(1366, 768)
    window.show()
    panel = window.second_opinion.panel
    panel.spacing.setValue(DEMO_SPACING_MM)
    panel.assume_spacing.setChecked(True)
    opened = time.perf_counter()
    window.open_paths(files)
    while len(window.state.documents) < len(files):
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
    decoded = time.perf_counter() - opened
    with StallMeter() as shown:  # the first paint of four 16-bit views, before any model runs
        window.state.set_layout("2x2")
        settle = time.perf_counter() + 2.0
        while time.perf_counter() < settle:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
    with StallMeter() as meter:
        cold = run_all(window)
    answers = len(window.opinions.opinions)
    warm = []
    for _ in range(repeat):
        window.opinions._cache.clear()
        window.opinions.opinions.clear()
        warm.append(run_all(window))
    print(f"demo study ({len(files)} views, {answers} answers): images decoded in {decoded:.1f} s; "
          f"cold {cold:.1f} s (sessions created while decoding), warm median {np.median(warm):.1f} s; "
          f"UI stalls while the models run: {meter.summary()}; while the views first paint: {shown.summary()}")
    window.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", type=Path, help="a folder of models instead of the bundled ones")
    parser.add_argument("--study-only", action="store_true", help="only the demo study in the window")
    args = parser.parse_args()
    library = ModelLibrary([args.models], include_bundled=False) if args.models else ModelLibrary()
    if not args.study_only:
        scans(library, args.repeat)
    study(args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
