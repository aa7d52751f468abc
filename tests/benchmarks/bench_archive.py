"""Retrieve throughput from a real Orthanc over loopback (run on demand, offscreen):

  .venv/bin/python tests/benchmarks/bench_archive.py [--repeat 3]

The demo's four CBIS-DDSM views (about 24 MB each) are stored as one study. Then,
interleaved in one run: MammoDesk's DICOMweb retrieve of the study (WADO-RS as stored,
one instance at a time, written atomically) against `curl` fetching the same
instances with the same Accept header, and the DIMSE C-GET path. Reported: MB/s,
images/s and the ratio to curl. Last, the worklist in the main window retrieves and
opens the study while a 5 ms UI timer records the longest stall.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import pydicom  # noqa: E402
from orthanc_server import Orthanc  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402
from timing import interleaved  # noqa: E402

from mammodesk.archive import ServerConfig, open_archive  # noqa: E402
from mammodesk.archive.client import retrieve_study  # noqa: E402
from mammodesk.archive.dicomweb import AS_STORED  # noqa: E402

PATIENT = "BENCH-0001"


def one_study(folder: Path) -> tuple[str, list[Path]]:
    from mammodesk.cli import demo_files

    study, paths = generate_uid(), []
    for index, source in enumerate(demo_files()):
        ds = pydicom.dcmread(source)
        ds.PatientID, ds.StudyInstanceUID, ds.SOPInstanceUID = PATIENT, study, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        paths.append(folder / f"view{index}.dcm")
        ds.save_as(paths[-1])
    return study, paths


def curl_fetch(server: Orthanc, refs, folder: Path) -> None:
    media_type, syntax = AS_STORED[0]
    accept = f'Accept: multipart/related; type="{media_type}"; transfer-syntax={syntax}'
    for ref in refs:
        url = f"{server.dicomweb}/studies/{ref.study_uid}/series/{ref.series_uid}/instances/{ref.sop_uid}"
        subprocess.run(["curl", "-sf", "-H", accept, "-o", str(folder / f"{ref.sop_uid}.part"), url], check=True)


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def throughput(server: Orthanc, study: str, megabytes: float, repeat: int, work: Path) -> None:
    web = open_archive(ServerConfig("bench", url=server.dicomweb))
    dimse = open_archive(ServerConfig("bench-dimse", kind="dimse", host="127.0.0.1", port=server.dicom_port,
                                      called_ae=server.aet))
    refs = web.instances(study)
    times = interleaved({
        "mammodesk DICOMweb": lambda: retrieve_study(web, study, fresh(work / "web")),
        "mammodesk DIMSE C-GET": lambda: retrieve_study(dimse, study, fresh(work / "dimse")),
        "curl": lambda: curl_fetch(server, refs, fresh(work / "curl")),
    }, repeat)
    curl = times["curl"][0]
    print(f"{'path':<24}{'median s':>10}{'MB/s':>8}{'images/s':>10}{'time / curl':>13}")
    for name, (median_ms, _) in times.items():
        seconds = median_ms / 1000
        print(f"{name:<24}{seconds:>10.2f}{megabytes / seconds:>8.0f}{len(refs) / seconds:>10.1f}"
              f"{median_ms / curl:>12.2f}x")


def worklist_stall(server: Orthanc, work: Path) -> None:
    from PySide6 import QtCore, QtWidgets
    from ui_stall import StallMeter

    from mammodesk.archive import ServerStore
    from mammodesk.archive.cache import StudyCache
    from mammodesk.archive.outbox import Outbox
    from mammodesk.qt.app import MainWindow
    from mammodesk.services.archive_session import ArchiveSession

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench"])
    store = ServerStore(work / "servers.json")
    store.save([ServerConfig("team", url=server.dicomweb)])
    window = MainWindow(QtCore.QSettings(str(work / "s.ini"), QtCore.QSettings.Format.IniFormat))
    window.archive.session = window.archive.panel.session = ArchiveSession(
        store, StudyCache(work / "cache"), Outbox(work / "outbox"), author="Bench")
    window.archive.panel.refresh_servers()
    window.resize(1366, 768)
    window.show()
    panel = window.archive.panel

    def wait(condition, timeout_s: float) -> None:
        deadline = time.perf_counter() + timeout_s
        while not condition():
            if time.perf_counter() > deadline:
                raise TimeoutError("the worklist did not finish")
            app.processEvents()
            time.sleep(0.002)

    window.toggle_panel("worklist")
    panel.query["patient_id"].setText(PATIENT)
    panel.search_button.click()
    wait(lambda: panel.results.topLevelItemCount() == 1, 30)
    panel.results.setCurrentItem(panel.results.topLevelItem(0))
    start = time.perf_counter()
    with StallMeter() as meter:
        panel.open_button.click()
        wait(lambda: len(window.state.documents) == 4, 300)
    print(f"worklist: retrieve, decode and show the 4-view study in {time.perf_counter() - start:.1f} s; "
          f"UI timer: {meter.summary()}")
    window.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    server = Orthanc(work / "orthanc").start()
    try:
        study, paths = one_study(fresh(work / "source"))
        for path in paths:
            server.upload(path)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(f"study: {len(paths)} images, {megabytes:.0f} MB, Orthanc {server.url}")
        throughput(server, study, megabytes, args.repeat, work)
        worklist_stall(server, work)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
