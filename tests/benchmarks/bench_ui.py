"""Reading-room benchmark (run on demand, offscreen):

  .venv/bin/python tests/benchmarks/bench_ui.py [--steps 10]

1. UI event-loop stalls (p99 and max gap of a 5 ms timer) while a 4096x3328
   JPEG 2000 DICOM loads and while non-local means runs at full resolution;
   baseline: the same meter on an idle window, same run.
2. Slider-to-preview latency for median, Gaussian and CLAHE on a 4096x3328
   16-bit image: from a slider step to the processed preview painted;
   baseline: the op alone on the same downscaled frame (`spec.run(frame)`),
   so the ratio is what the UI path (worker hand-off, display conversion,
   LUT, paint) adds.
3. Peak resident memory with a 5355x4915 16-bit DICOM open and a processed
   preview shown (separate process; its decoding workers reported apart).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dicom_factory import compress, make_dataset, mammogram_like, write  # noqa: E402
from pydicom.uid import JPEG2000Lossless  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402
from timing import timed  # noqa: E402
from ui_stall import StallMeter  # noqa: E402

from mammodesk.preprocessing import initial_frame  # noqa: E402
from mammodesk.qt.app import MainWindow  # noqa: E402

# Start values that stay effective at the preview scale (a 5-pixel median is a 1-pixel no-op at 0.25).
SLIDER_OPS = [("median", "ksize", {"ksize": 11}), ("gaussian", "sigma", {"sigma": 4.0}),
              ("clahe", "clip_limit", {"clip_limit": 2.0})]


def wait_until(app, condition, timeout=300.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not met")
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 5)


def new_window(folder: Path) -> MainWindow:
    window = MainWindow(QtCore.QSettings(str(folder / "s.ini"), QtCore.QSettings.Format.IniFormat))
    window.resize(1400, 900)
    window.show()
    return window


def bench_stalls(app, folder: Path) -> None:
    pixels = mammogram_like()
    path = write(compress(make_dataset(pixels, bits_stored=12), pixels, JPEG2000Lossless), folder / "j2k.dcm")
    window = new_window(folder)
    window.loader.loader.submit(len, "warm-up").result()
    with StallMeter() as idle:
        end = time.perf_counter() + 2.0
        wait_until(app, lambda: time.perf_counter() > end)
    with StallMeter() as loading:
        window.open_path(str(path))
        wait_until(app, lambda: bool(window.state.documents))
    document = window.state.documents[0]
    window.state.set_show("processed")
    with StallMeter() as denoising:
        window.state.pipeline.add("nlmeans")
        wait_until(app, lambda: document.processed is not None and not document.processed.preview)
    full_ms = document.processed.elapsed_ms
    print("UI event-loop stalls (5 ms timer; target: none over 50 ms)")
    print(f"  idle window (baseline)            {idle.summary()}")
    print(f"  loading 4096x3328 JPEG 2000 DICOM {loading.summary()}")
    print(f"  non-local means, full resolution  {denoising.summary()}  (op took {full_ms:.0f} ms)")
    window.close()


def bench_sliders(app, folder: Path, steps: int) -> None:
    path = write(make_dataset(mammogram_like(), bits_stored=12), folder / "raw.dcm")
    window = new_window(folder)
    window.open_path(str(path))
    wait_until(app, lambda: bool(window.state.documents))
    document = window.state.documents[0]
    window.state.set_show("processed")
    panel = window.pipeline_panel
    canvas = window.area.active_canvas()
    print(f"Slider-to-preview latency, 4096x3328 16-bit, canvas {canvas.width()}x{canvas.height()} "
          f"(target: under 30 ms per step)")
    for op, param, start in SLIDER_OPS:
        window.state.pipeline.replace_spec(window.state.pipeline.spec.__class__([{"op": op, "params": start}]), "bench")
        panel.steps.setCurrentRow(0)
        wait_until(app, lambda: document.processed is not None and not document.processed.preview
                   and window.processing.busy == 0)
        slider = panel.param_widgets[param].slider
        latencies, scale = [], 1.0
        for step in range(steps):
            before = document.processed
            start = time.perf_counter()
            slider.setValue(slider.value() + (1 if step % 2 == 0 else -1) * (2 if op == "median" else 10))
            wait_until(app, lambda: document.processed is not before)
            canvas.repaint()  # include drawing the new preview
            latencies.append((time.perf_counter() - start) * 1000)
            scale = document.processed.result.geometry.output_shape[1] / document.image.shape[1]
            wait_until(app, lambda: window.processing.busy == 0)  # let the full-resolution pass finish
        spec = window.state.pipeline.spec
        start_frame = initial_frame(document.image, scale)
        baseline = timed(lambda: spec.run(start_frame), steps)[0]
        median = statistics.median(latencies)
        print(f"  {op:9s} median {median:6.1f} ms  max {max(latencies):6.1f} ms  (the op alone on the "
              f"{scale:.2f}-scale frame: {baseline:5.1f} ms; ratio {median / baseline:4.1f})")
    window.close()


MEMORY_CHILD = """
import os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6 import QtCore, QtWidgets
from mammodesk.qt.app import MainWindow
def main():
    app = QtWidgets.QApplication([])
    window = MainWindow(QtCore.QSettings(sys.argv[2], QtCore.QSettings.Format.IniFormat))
    window.resize(1400, 900); window.show()
    window.open_path(sys.argv[1])
    end = time.time() + 300
    while not window.state.documents and time.time() < end:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 10)
    document = window.state.documents[0]
    window.state.set_show("side_by_side")
    window.state.pipeline.add("median"); window.state.pipeline.add("clahe")
    while (document.processed is None or document.processed.preview or window.processing.busy) and time.time() < end:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 10)
    window.area.active_canvas().repaint(); app.processEvents()
    def peak_kb(pid="self"):  # VmHWM: ru_maxrss survives exec, so it would report the parent's peak
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    workers = window.loader.loader._pool._processes if window.loader.loader._pool else {}
    print(peak_kb(), max([peak_kb(pid) for pid in workers] or [0]), document.image.shape)
    window.close()
if __name__ == "__main__":
    main()
"""


def bench_memory(folder: Path) -> None:
    path = write(make_dataset(mammogram_like(5355, 4915), bits_stored=14), folder / "big.dcm")
    script = folder / "memory_child.py"
    script.write_text(MEMORY_CHILD)
    baseline = subprocess.run([sys.executable, "-c", "import numpy, PySide6.QtWidgets, pyqtgraph;"
                               "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"],
                              capture_output=True, text=True, check=True)
    out = subprocess.run([sys.executable, str(script), str(path), str(folder / "m.ini")],
                         capture_output=True, text=True, check=True)
    self_kb, children_kb, *_ = out.stdout.split()
    print("Peak resident memory, 5355x4915 16-bit DICOM open, median+CLAHE side by side (target: under 1 GB)")
    print(f"  app process {int(self_kb) / 1024:.0f} MB; largest decoding worker {int(children_kb) / 1024:.0f} MB; "
          f"baseline (python + numpy + Qt + pyqtgraph imported) {int(baseline.stdout) / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bench_stalls(app, folder)
        bench_sliders(app, folder, args.steps)
        bench_memory(folder)


if __name__ == "__main__":
    main()
