"""Every worker of the window comes from one `WorkerPools` (qt/workers.py), and closing the window leaves no
thread or process of it alive."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from PySide6 import QtCore

from mammodesk.qt.app import MainWindow

QT = Path(__file__).resolve().parents[1] / "mammodesk" / "qt"


def _children() -> set[int]:
    """Live (not zombie) child processes of this process, but multiprocessing's resource tracker: one per
    interpreter, started with the first spawned worker, it ends with the interpreter, not with a window."""
    pids = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            continue
    alive = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z" and \
                    b"multiprocessing.resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                alive.add(pid)
        except OSError:
            continue
    return alive


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return str(pid)


def test_closing_the_window_leaves_no_thread_or_process(qtbot, tmp_path, mias_images):
    threads_before, children_before = set(threading.enumerate()), _children()
    window = MainWindow(QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat))
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)
    window.open_paths([str(p) for p in mias_images[:2]])  # decoding processes, the watch, the processing pools
    qtbot.waitUntil(lambda: len(window.state.documents) == 2, timeout=60_000)
    opinion = window.second_opinion
    with qtbot.waitSignal(opinion.idle, timeout=180_000):  # the model pools, the warm-up and the device probe
        assert opinion.run(None, "auto", True) > 0
    started = {t for t in threading.enumerate() if t not in threads_before}
    assert any(t.name.startswith("mammodesk-models") for t in started)
    assert _children() - children_before, "the decoding workers were expected to be running"

    window.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        qtbot.wait(100)
        threads = {t for t in threading.enumerate() if t not in threads_before and t.is_alive()}
        processes = _children() - children_before
        if not threads and not processes:
            break
    assert not threads, f"threads alive after close: {sorted(t.name for t in threads)}"
    assert not processes, f"processes alive after close: {[_command(p) for p in processes]}"


def test_no_part_of_the_window_makes_its_own_threads():
    """The issue counted 10 executors in 8 files; every one now comes from WorkerPools."""
    made = re.compile(r"ThreadPoolExecutor\(|ProcessPoolExecutor\(|threading\.Thread\(|QThread\(")
    found = [f"{path.relative_to(QT)}:{number}" for path in sorted(QT.rglob("*.py")) if path.name != "workers.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if made.search(line)]
    assert found == []
