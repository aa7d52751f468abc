"""No process outlives the app: SIGTERM closes the window as a user would (labels flushed, workers shut
down), and decoding workers exit when the app dies without a word (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CHILD = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from mammodesk.services.loading import ImageLoader
loader = ImageLoader(workers=2)
for _ in range(4):
    loader.submit(os.path.exists, "").result(timeout=60)  # the pool's processes are up
print("ready", flush=True)
import time
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead: its parent has simply not reaped it
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(p) for p in listing.read().split()]


def test_decoding_workers_exit_when_the_app_is_killed():
    app = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert app.stdout.readline().strip() == "ready"
    workers = _children(app.pid)
    assert len(workers) >= 2 and all(_alive(p) for p in workers)
    app.send_signal(signal.SIGKILL)  # no chance to clean up
    app.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers), "decoding workers outlived the app"


def test_sigterm_closes_the_window_cleanly(tmp_path, mias_images):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    app = subprocess.Popen([sys.executable, "-m", "mammodesk", str(mias_images[0])], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)  # the window is up and the image decoded in a worker
    children = _children(app.pid)
    assert children
    app.send_signal(signal.SIGTERM)
    _, err = app.communicate(timeout=30)
    assert app.returncode == 0, err[-2000:]
    assert (tmp_path / "config" / "MammoDesk" / "MammoDesk.ini").is_file()  # closed as a user would: settings saved
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in children)


def test_closing_the_window_leaves_no_live_worker_thread(qtbot, tmp_path, mias_images):
    """Every executor the window's controllers own ends with it (loading, processing, models, digests,
    labels, the archive), after real work went through each."""
    import threading

    from PySide6 import QtCore

    from mammodesk.qt.app import MainWindow

    before = set(threading.enumerate())
    window = MainWindow(QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    window.open_paths([str(mias_images[0])])
    qtbot.waitUntil(lambda: len(window.state.documents) == 1, timeout=60_000)
    window.state.pipeline.add("median")
    window.state.set_show("processed")
    document = window.state.documents[0]
    qtbot.waitUntil(lambda: document.processed is not None, timeout=30_000)
    window.archive.panel.search_button.click()  # no server configured: the archive thread still runs it
    window.labelling.state.add_finding(document.id, None)
    qtbot.wait(500)
    started = [t for t in threading.enumerate() if t not in before]
    assert started  # the work above ran on threads of the window's own
    window.close()
    qtbot.waitUntil(lambda: not [t for t in started if t.is_alive()], timeout=15_000)
