"""The placeholder window opens a mammogram off the UI thread, and survives a bad file."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from dicom_factory import make_dataset, phantom, write

from mammodesk.qt.app import MainWindow


@pytest.fixture
def window(qtbot):
    pg.setConfigOptions(imageAxisOrder="row-major")
    win = MainWindow()
    qtbot.addWidget(win)
    return win


def test_opens_dicom_in_background(window, qtbot, tmp_path):
    path = write(make_dataset(phantom(bits=12), bits_stored=12), tmp_path / "a.dcm")
    window.open_path(str(path))
    qtbot.waitUntil(lambda: window.view.image is not None, timeout=5000)
    assert window.view.image.shape == (96, 80)
    assert "80x96" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window._tasks, timeout=5000)  # finished reads are released


def test_bad_file_is_reported_not_fatal(window, qtbot, tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    window.open_path(str(bad))
    qtbot.waitUntil(lambda: "Could not open" in window.statusBar().currentMessage(), timeout=5000)
    assert not window._tasks
