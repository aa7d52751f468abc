"""Application start-up. The full reading room comes with the viewer issue;
this window already opens images through the core, off the UI thread."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk import __version__
from mammodesk.errors import ImageReadError
from mammodesk.io import Image, apply_window, read_image
from mammodesk.resources import icon_path


class _ReadSignals(QtCore.QObject):
    loaded = QtCore.Signal(object, object)  # Image, display array (float32, windowed)
    failed = QtCore.Signal(str)


class _ReadTask(QtCore.QRunnable):
    """Decodes and windows in a pool thread: the UI thread only hands the result to the view."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.signals = _ReadSignals()

    def run(self) -> None:
        try:
            image = read_image(self.path)
        except ImageReadError as exc:
            self.signals.failed.emit(str(exc))
            return
        preset = image.meta.default_window
        shown = apply_window(image.pixels, preset) if preset else image.pixels.astype(np.float32)
        self.signals.loaded.emit(image, shown)


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(f"MammoDesk {__version__}")
        self.view = pg.ImageView()
        self.view.ui.roiBtn.hide()
        self.view.ui.menuBtn.hide()
        self.setCentralWidget(self.view)
        self.statusBar().showMessage("Open a mammogram: File > Open (Ctrl+O)")
        open_action = QtGui.QAction("&Open...", self, shortcut=QtGui.QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self._on_open)
        self.menuBar().addMenu("&File").addAction(open_action)
        self._tasks: list[_ReadTask] = []
        self.resize(1100, 800)

    def open_path(self, path: str) -> None:
        self.statusBar().showMessage(f"Reading {Path(path).name}...")
        task = _ReadTask(path)
        task.signals.loaded.connect(self._on_loaded)
        task.signals.failed.connect(self._on_failed)
        # Keep the signals object alive until its result is delivered, then let it go.
        self._tasks.append(task)
        task.signals.loaded.connect(lambda *_: self._tasks.remove(task))
        task.signals.failed.connect(lambda *_: self._tasks.remove(task))
        QtCore.QThreadPool.globalInstance().start(task)

    def _on_open(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open mammogram")
        if path:
            self.open_path(path)

    def _on_loaded(self, image: Image, shown: np.ndarray) -> None:
        self.view.setImage(shown, levels=(0.0, 1.0), autoRange=True)
        name = image.meta.source_path.name if image.meta.source_path else "image"
        self.statusBar().showMessage(f"{name}: {image.shape[1]}x{image.shape[0]} {image.meta.format}")

    def _on_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Could not open: {message}")


def run_app(files: list[str]) -> int:
    pg.setConfigOptions(imageAxisOrder="row-major")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("MammoDesk")
    app.setWindowIcon(QtGui.QIcon(str(icon_path())))
    window = MainWindow()
    window.show()
    for path in files[:1]:
        window.open_path(path)
    if os.environ.get("MAMMODESK_QUIT_WHEN_SHOWN"):  # start-up timing: leave once the window is on screen
        QtCore.QTimer.singleShot(0, app.quit)
    return app.exec()


def self_check() -> str:
    """For `mammodesk --self-test`: build the main window offscreen (proves the Qt plugins and pyqtgraph load)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["mammodesk-self-test"])
    window = MainWindow()
    window.close()
    return f"platform {app.platformName()}, Qt {QtCore.qVersion()}"
