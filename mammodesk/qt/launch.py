"""Starting the app: the window on a real display (the demo maximised and
answering), SIGTERM handled as a user's close, and the self-test's offscreen
window."""

from __future__ import annotations

import gc
import os
import signal
import sys

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.qt.app import MainWindow
from mammodesk.resources import icon_path

DEMO_SPACING_MM = 0.05  # CBIS-DDSM files carry no spacing; DDSM's digitisers sampled at 42-50 microns


def run_app(files: list[str], demo: bool = False) -> int:
    pg.setConfigOptions(imageAxisOrder="row-major")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("MammoDesk")
    app.setWindowIcon(QtGui.QIcon(str(icon_path())))
    window = MainWindow()
    if demo:  # maximised; the explicit size also holds where no window manager maximises (Xvfb)
        window.resize(app.primaryScreen().availableGeometry().size())
        window.showMaximized()
    else:
        window.show()
    window.open_paths(files)
    if len(files) > 1:
        window.state.set_layout("2x2")
    if demo:
        window.run_models_when_loaded(assumed_spacing_mm=DEMO_SPACING_MM)
    close_on_terminate(app, window)
    QtCore.QTimer.singleShot(0, settle_heap)
    if os.environ.get("MAMMODESK_QUIT_WHEN_SHOWN"):  # start-up timing: leave once the window is on screen
        QtCore.QTimer.singleShot(0, app.quit)
    return app.exec()


def settle_heap() -> None:
    """Once the window is up, its tens of thousands of long-lived Qt and Python objects leave the cyclic
    collector's reach (`gc.freeze`): a full collection while a study opens then walks only what is new.
    Unfrozen, one took 30-60 ms of the UI thread in `bench_first_paint.py`. Only the app's one window is
    frozen; tests that build many windows do not call this."""
    gc.collect()
    gc.freeze()


def close_on_terminate(app: QtWidgets.QApplication, window: MainWindow) -> None:
    """SIGTERM (a logout, `kill`, a session manager) closes the window as the user would: labels are
    flushed and the workers shut down. Qt's loop runs in C++; a short timer lets Python see the signal."""
    if not hasattr(signal, "SIGTERM"):
        return
    signal.signal(signal.SIGTERM, lambda *_: QtCore.QTimer.singleShot(0, window.close))
    heartbeat = QtCore.QTimer(app)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(200)


def self_check() -> str:
    """For `mammodesk --self-test`: build the main window offscreen (proves the Qt plugins and pyqtgraph load)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["mammodesk-self-test"])
    window = MainWindow(QtCore.QSettings(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                                         "MammoDesk", "self-test"))
    window.close()
    return f"platform {app.platformName()}, Qt {QtCore.qVersion()}"
