"""The archive in the window, against a real Orthanc: the worklist searches,
retrieves and opens a study off the UI thread; labels go back as a report;
another reader sees them read-only; waiting reports are offered at start."""

from __future__ import annotations

import pytest
from PySide6 import QtCore
from test_archive import PATIENT, anonymised_studies, study_files
from ui_stall import StallMeter

from mammodesk.annotations.model import FindingKind, Rect
from mammodesk.archive import ServerConfig, ServerStore
from mammodesk.archive.cache import StudyCache
from mammodesk.archive.outbox import Outbox
from mammodesk.services.archive_session import ArchiveSession


def make_window(qtbot, tmp_path, author: str, store: ServerStore):
    from mammodesk.qt.app import MainWindow

    settings = QtCore.QSettings(str(tmp_path / f"{author}.ini"), QtCore.QSettings.Format.IniFormat)
    settings.setValue("author", author)
    win = MainWindow(settings)
    session = ArchiveSession(store, StudyCache(tmp_path / f"cache-{author}"), Outbox(tmp_path / f"out-{author}"),
                             author=author)
    win.archive.session = win.archive.panel.session = session
    win.archive.panel.refresh_servers()
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    return win


def search_and_open(qtbot, window) -> None:
    panel = window.archive.panel
    window.toggle_panel("worklist")
    panel.query["patient_id"].setText(PATIENT)
    panel.search_button.click()
    qtbot.waitUntil(lambda: panel.results.topLevelItemCount() == 1, timeout=20_000)
    panel.results.setCurrentItem(panel.results.topLevelItem(0))
    with StallMeter() as meter:
        panel.open_button.click()
        qtbot.waitUntil(lambda: len(window.state.documents) == 4, timeout=60_000)
    assert meter.worst_ms < 500  # retrieving and decoding never froze the window


def test_worklist_retrieve_save_and_another_reader_sees_it(orthanc, qtbot, tmp_path):
    orthanc.clear()
    _, paths = study_files(tmp_path / "src")
    for path in paths:
        orthanc.upload(path)
    store = ServerStore(tmp_path / "servers.json")
    store.save([ServerConfig("team", url=orthanc.dicomweb)])
    ann = make_window(qtbot, tmp_path, "Ann Reader", store)
    search_and_open(qtbot, ann)
    assert ann.state.layout == "2x2" and len(ann.state.hanging()) == 4
    document = ann.state.documents[0]
    qtbot.waitUntil(lambda: document.id in ann.labelling.state.sheets, timeout=10_000)
    ann.labelling.state.add_finding(document.id, Rect(10, 10, 40, 40))
    ann.state.set_active(document)
    ann.actions_["save_to_server"].trigger()
    qtbot.waitUntil(lambda: "saved to team" in ann.statusBar().currentMessage(), timeout=20_000)

    bob = make_window(qtbot, tmp_path, "Bob Reader", store)
    search_and_open(qtbot, bob)
    same = next(d for d in bob.state.documents if d.image.meta.source_path.name == document.image.meta.source_path.name)
    qtbot.waitUntil(lambda: bool(bob.labelling.state.others.get(same.id)), timeout=20_000)
    reader, findings = bob.labelling.state.others[same.id][0]
    assert reader == "Reader^Ann" and findings[0].kind == FindingKind.MASS  # read-only, with her name
    assert not bob.labelling.state.sheets[same.id].labels.findings  # never mixed into Bob's own labels


def test_waiting_reports_are_offered_at_start(orthanc, qtbot, tmp_path):
    store = ServerStore(tmp_path / "servers.json")
    store.save([ServerConfig("team", url=orthanc.dicomweb)])
    Outbox(tmp_path / "out-Ann Reader").add(b"not sent before the crash", "team", "RCC.dcm")
    window = make_window(qtbot, tmp_path, "Ann Reader", store)
    window.archive.panel.show_pending()
    assert window.archive.panel.send_button.isVisibleTo(window.archive.panel)
    assert "1 report(s) not yet acknowledged" in window.archive.panel.status.text()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/dicom-web"])
def test_a_dead_server_is_one_clear_message(qtbot, tmp_path, url):
    store = ServerStore(tmp_path / "servers.json")
    store.save([ServerConfig("gone", url=url, timeout_s=3)])
    window = make_window(qtbot, tmp_path, "Ann Reader", store)
    panel = window.archive.panel
    panel.search_button.click()
    qtbot.waitUntil(lambda: "cannot reach" in panel.status.text(), timeout=20_000)
    assert "try again" in panel.status.text()


def test_the_worklist_finds_anonymised_studies_and_says_what_it_hid(orthanc, qtbot, tmp_path):
    orthanc.clear()
    anonymised_studies(orthanc, tmp_path)
    store = ServerStore(tmp_path / "servers.json")
    store.save([ServerConfig("team", url=orthanc.dicomweb)])
    window = make_window(qtbot, tmp_path, "Ann Reader", store)
    panel = window.archive.panel
    panel.query["patient_id"].setText("ANON-0001")
    assert panel.query["modality"].text() == "MG"
    panel.search_button.click()
    qtbot.waitUntil(lambda: panel.results.topLevelItemCount() == 2, timeout=20_000)
    assert all(panel.results.topLevelItem(i).text(4).startswith("?") for i in range(2))
    assert "2 without a modality" in panel.status.text() and "1 of other modalities hidden" in panel.status.text()
    panel.query["modality"].setText("")
    panel.search_button.click()
    qtbot.waitUntil(lambda: panel.results.topLevelItemCount() == 3, timeout=20_000)
