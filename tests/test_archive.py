"""The archive against a real Orthanc (DICOMweb and DIMSE): search, retrieve as
stored (compressed syntaxes included), reports one series per reader with
nothing overwritten, an outbox that loses nothing when the server is down or
the app is killed, clear errors, and the headless `mammodesk pacs`."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal

import numpy as np
import pydicom
import pytest
from dicom_factory import compress, make_dataset, phantom, write
from pydicom.uid import JPEG2000Lossless, generate_uid

from mammodesk.annotations.model import Finding, FindingKind, ImageLabels, Pathology, Rect
from mammodesk.archive import ArchiveError, ServerConfig, ServerStore, open_archive
from mammodesk.archive.cache import StudyCache
from mammodesk.archive.client import retrieve_study
from mammodesk.archive.outbox import Outbox, send_pending
from mammodesk.archive.reports import latest_reports, report_bytes
from mammodesk.archive.servers import ServerConfigError, secret_variable
from mammodesk.cli import main as mammodesk_main
from mammodesk.io import read_image

PATIENT = "MRN-7731"


def study_files(folder, patient=PATIENT, date="20240115", compressed=True):
    """Four views of one screening study, the first JPEG 2000 compressed (as archives often store them)."""
    folder.mkdir(parents=True, exist_ok=True)
    study, paths = generate_uid(), []
    for index, (side, view) in enumerate((("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))):
        pixels = phantom(128, 96, bits=12, seed=index)
        ds = make_dataset(pixels, bits_stored=12, PatientID=patient, StudyInstanceUID=study, StudyDate=date,
                          ImageLaterality=side, ViewPosition=view, SeriesInstanceUID=generate_uid(),
                          AccessionNumber=f"ACC{index}")
        if compressed and index == 0:
            ds = compress(ds, pixels, JPEG2000Lossless)
        paths.append(write(ds, folder / f"{side}{view}.dcm"))
    return study, paths


@pytest.fixture
def server(orthanc):
    orthanc.clear()
    return orthanc


@pytest.mark.parametrize("kind", ["dicomweb", "dimse"])
def test_search_and_retrieve_as_stored(server, tmp_path, kind):
    study, paths = study_files(tmp_path / "src")
    for path in paths:
        server.upload(path)
    study_files(tmp_path / "other", patient="SOMEONE-ELSE")  # not uploaded: must not appear
    config = ServerConfig("test", url=server.dicomweb) if kind == "dicomweb" else \
        ServerConfig("test", kind="dimse", host="127.0.0.1", port=server.dicom_port, called_ae=server.aet)
    archive = open_archive(config)
    assert "test" in archive.echo()
    found = archive.search_studies(patient_id=PATIENT)
    assert [s.study_uid for s in found] == [study] and found[0].images == 4 and found[0].date == "20240115"
    assert archive.search_studies(patient_id="NOBODY") == []
    cache = StudyCache(tmp_path / "cache")
    folder = cache.folder("test", study)
    seen = []
    files = retrieve_study(archive, study, folder, progress=lambda done, total: seen.append((done, total)))
    assert len(files) == 4 and seen[-1] == (4, 4)
    by_sop = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in paths}
    for file in files:
        received, original = pydicom.dcmread(file), pydicom.dcmread(by_sop[str(pydicom.dcmread(file).SOPInstanceUID)])
        assert received.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID  # compressed stays so
        np.testing.assert_array_equal(read_image(file).pixels, read_image(by_sop[str(received.SOPInstanceUID)]).pixels)


def test_reports_one_series_per_reader_and_nothing_overwritten(server, tmp_path):
    study, paths = study_files(tmp_path / "src", compressed=False)
    for path in paths:
        server.upload(path)
    archive = open_archive(ServerConfig("test", url=server.dicomweb))
    image = paths[0]
    sop = str(pydicom.dcmread(image).SOPInstanceUID)
    outbox = Outbox(tmp_path / "outbox")

    def save(author: str, labels: ImageLabels) -> str:
        data, uid = report_bytes(labels, image, author)
        outbox.add(data, "test", image.name)
        return uid

    mass = Finding(FindingKind.MASS, Pathology.MALIGNANT, Rect(10, 10, 40, 40), uid="a1")
    save("Ann Reader", ImageLabels("RCC", (mass,)))
    save("Ann Reader", ImageLabels("RCC", (mass, Finding(FindingKind.CALCIFICATION, shape=Rect(50, 50, 60, 60), uid="a2"))))
    save("Bob Reader", ImageLabels("RCC", (Finding(FindingKind.MASS, Pathology.BENIGN, Rect(12, 12, 38, 38)),)))
    assert len(outbox.pending("test")) == 3
    assert send_pending(outbox, archive, "test") == (3, []) and outbox.pending() == []
    reports = archive.instances(study, modality="SR")
    assert len(reports) == 3 and len({r.series_uid for r in reports}) == 2  # one series per reader, 3 instances
    files = archive.retrieve(reports, tmp_path / "reports")
    latest = latest_reports(files, sop)
    assert set(latest) == {"Reader^Ann", "Reader^Bob"}
    assert len(latest["Reader^Ann"].labels.findings) == 2  # her latest save, the earlier one still on the server
    assert latest["Reader^Bob"].labels.findings[0].pathology == Pathology.BENIGN


def test_a_server_that_is_down_loses_nothing(server, tmp_path):
    study, paths = study_files(tmp_path / "src", compressed=False)
    outbox = Outbox(tmp_path / "outbox")
    data, _ = report_bytes(ImageLabels("x", (Finding(FindingKind.MASS, shape=Rect(1, 1, 9, 9)),)), paths[0], "Ann Reader")
    entry = outbox.add(data, "down", paths[0].name)
    dead = open_archive(ServerConfig("down", url=f"http://127.0.0.1:{server.http_port + 1}/dicom-web", timeout_s=3))
    with pytest.raises(ArchiveError, match=r"cannot reach .*\(server down or network lost\)"):
        dead.search_studies(patient_id=PATIENT)
    sent, errors = send_pending(outbox, dead, "down")
    assert sent == 0 and "cannot reach" in errors[0]
    kept = outbox.pending("down")
    assert [e.id for e in kept] == [entry.id] and kept[0].attempts == 1 and "cannot reach" in kept[0].last_error
    alive = open_archive(ServerConfig("down", url=server.dicomweb))
    assert send_pending(outbox, alive, "down") == (1, []) and not outbox.pending()
    wrong = open_archive(ServerConfig("wrong", url=f"{server.url}/no-such-root"))
    with pytest.raises(ArchiveError, match="HTTP 404.*base URL") as info:
        wrong.search_studies()
    assert not info.value.retry


def test_a_server_stopped_mid_retrieve_loses_nothing_and_resumes(tmp_path):
    from orthanc_server import Orthanc

    study, paths = study_files(tmp_path / "src", compressed=False)
    own = Orthanc(tmp_path / "orthanc").start()
    try:
        for path in paths:
            own.upload(path)
        archive = open_archive(ServerConfig("team", url=own.dicomweb, timeout_s=3))
        folder = tmp_path / "cache"

        def stop_after_first(done, total):
            if done == 1:
                own.stop()  # the server goes down with three instances still to come

        with pytest.raises(ArchiveError, match=r"cannot reach .*\(server down or network lost\)"):
            retrieve_study(archive, study, folder, progress=stop_after_first)
        kept = sorted(folder.iterdir())
        assert len(kept) == 1 and kept[0].suffix == ".dcm"  # the instance that arrived; no partial files
        own.start()  # same storage and ports: the server is back
        files = retrieve_study(archive, study, folder)
        assert len(files) == 4 and not [p for p in folder.iterdir() if p.suffix != ".dcm"]
        by_sop = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in paths}
        for file in files:
            original = by_sop[str(pydicom.dcmread(file).SOPInstanceUID)]
            np.testing.assert_array_equal(read_image(file).pixels, read_image(original).pixels)
    finally:
        own.stop()


def test_bad_credentials_are_one_clear_error(tmp_path, monkeypatch):
    from orthanc_server import Orthanc

    locked = Orthanc(tmp_path / "locked", users={"ann": "right-horse-battery"}).start()
    try:
        config = ServerConfig("locked pacs", url=locked.dicomweb, auth="basic", username="ann")
        monkeypatch.setenv(secret_variable("locked pacs"), "wrong-guess")
        with pytest.raises(ArchiveError, match=r"refused the credentials.*HTTP 401") as info:
            open_archive(config).search_studies()
        assert "wrong-guess" not in str(info.value)  # the secret never reaches a message
        monkeypatch.setenv(secret_variable("locked pacs"), "right-horse-battery")
        assert open_archive(config).search_studies(patient_id=PATIENT) == []
    finally:
        locked.stop()


def _add_then_die(root, data):
    Outbox(root).add(data, "test", "RCC.dcm")
    os.kill(os.getpid(), signal.SIGKILL)  # the app killed during a send, before any acknowledgement


def test_killed_during_a_send_the_next_start_offers_it_again(server, tmp_path):
    study, paths = study_files(tmp_path / "src", compressed=False)
    for path in paths:
        server.upload(path)
    data, uid = report_bytes(ImageLabels("x", (Finding(FindingKind.MASS, shape=Rect(1, 1, 9, 9)),)), paths[0], "Ann")
    child = multiprocessing.get_context("spawn").Process(target=_add_then_die, args=(tmp_path / "outbox", data))
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    pending = Outbox(tmp_path / "outbox").pending()  # what a new start lists
    assert len(pending) == 1 and pending[0].image == "RCC.dcm"
    assert send_pending(Outbox(tmp_path / "outbox"), open_archive(ServerConfig("test", url=server.dicomweb)),
                        "test") == (1, [])
    assert uid in {r.sop_uid for r in open_archive(ServerConfig("t", url=server.dicomweb)).instances(study, "SR")}


def anonymised_studies(server, folder, patient="ANON-0001"):
    """Two screening studies whose instances carry no Modality tag (as research exports often do),
    and one CT study of the same patient: the filter must keep the first two and hide the third."""
    uids = []
    for index in range(2):
        study, paths = study_files(folder / f"anon{index}", patient=patient, date=f"2023010{index + 1}",
                                   compressed=False)
        for path in paths:
            ds = pydicom.dcmread(path)
            del ds.Modality
            ds.save_as(path)
            server.upload(path)
        uids.append(study)
    ct = make_dataset(phantom(64, 64, bits=12, seed=9), bits_stored=12, modality="CT", PatientID=patient,
                      StudyDate="20230105")
    server.upload(write(ct, folder / "ct.dcm"))
    return uids


@pytest.mark.parametrize("kind", ["dicomweb", "dimse"])
def test_a_search_finds_studies_whose_instances_have_no_modality(server, tmp_path, kind):
    from mammodesk.archive.client import search

    uids = anonymised_studies(server, tmp_path)
    config = ServerConfig("test", url=server.dicomweb) if kind == "dicomweb" else \
        ServerConfig("test", kind="dimse", host="127.0.0.1", port=server.dicom_port, called_ae=server.aet)
    archive = open_archive(config)
    found = search(archive, patient_id="ANON-0001")  # the default: MG
    assert sorted(s.study_uid for s in found.studies) == sorted(uids)
    assert found.without_modality == 2 and found.other_modalities == 1
    assert "2 without a modality" in found.describe() and "1 of other modalities hidden" in found.describe()
    everything = search(archive, modality="", patient_id="ANON-0001")
    assert len(everything.studies) == 3 and everything.other_modalities == 0
    assert [s.modalities for s in search(archive, modality="CT", patient_id="ANON-0001").studies
            if s.modalities] == [("CT",)]


def test_pacs_search_says_what_the_modality_filter_did(server, tmp_path, capsys):
    uids = anonymised_studies(server, tmp_path)
    assert mammodesk_main(["pacs", "search", "--server", server.dicomweb, "--patient-id", "ANON-0001"]) == 0
    captured = capsys.readouterr()
    rows = captured.out.strip().splitlines()
    assert sorted(r.split("\t")[0] for r in rows) == sorted(uids) and all(r.endswith("\t?") for r in rows)
    assert captured.err.strip() == ("2 studies (2 without a modality: shown, since they may be MG); "
                                    "1 of other modalities hidden (modality '' shows every study)")
    assert mammodesk_main(["pacs", "search", "--server", server.dicomweb, "--patient-id", "ANON-0001",
                           "--modality", ""]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def test_pacs_command_line(server, tmp_path, capsys):
    study, paths = study_files(tmp_path / "src")
    assert mammodesk_main(["pacs", "send", *map(str, paths), "--server", server.dicomweb]) == 0
    assert "4 object(s) stored" in capsys.readouterr().err
    assert mammodesk_main(["pacs", "search", "--server", server.dicomweb, "--patient-id", PATIENT]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].split("\t")[0] == study and out[0].split("\t")[3:] == ["4", "MG"]
    assert PATIENT not in out[0] and out[0].split("\t")[1].startswith("patient:")  # a key, not the identifier
    dimse = f"dimse://{server.aet}@127.0.0.1:{server.dicom_port}"
    assert mammodesk_main(["pacs", "retrieve", study, "--out", str(tmp_path / "got"), "--server", dimse]) == 0
    assert len(list((tmp_path / "got").glob("*.dcm"))) == 4 and "4 file(s)" in capsys.readouterr().err
    assert mammodesk_main(["pacs", "search", "--server", f"http://127.0.0.1:{server.http_port + 1}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach" in err[0]


def test_server_settings_never_hold_secrets(tmp_path, monkeypatch):
    with pytest.raises(ServerConfigError, match="plain HTTP to pacs.example.org"):
        ServerConfig("remote", url="http://pacs.example.org/dicom-web").check()
    ServerConfig("remote", url="http://pacs.example.org/dicom-web", allow_plain_http=True).check()
    ServerConfig("local", url="http://127.0.0.1:8042/dicom-web").check()
    store = ServerStore(tmp_path / "servers.json")
    store.save([ServerConfig("team", url="https://pacs.example.org/dicom-web", auth="basic", username="ann")])
    text = (tmp_path / "servers.json").read_text()
    assert "ann" in text and "password" not in text.lower() and "secret" not in text.lower()
    with pytest.raises(ArchiveError, match=secret_variable("team")):
        open_archive(store.find("team"))  # no secret anywhere: one clear line, not a login prompt
    monkeypatch.setenv(secret_variable("team"), "s3cr3t")
    archive = open_archive(store.find("team"))
    assert archive.client._session.auth == ("ann", "s3cr3t") and "s3cr3t" not in json.dumps(store.find("team").public())


def test_reading_room_session_two_readers_and_priors(server, tmp_path):
    from mammodesk.services.archive_session import ArchiveSession

    prior, prior_paths = study_files(tmp_path / "prior", date="20220110", compressed=False)
    current, paths = study_files(tmp_path / "current", compressed=False)
    for path in prior_paths + paths:
        server.upload(path)
    store = ServerStore(tmp_path / "servers.json")
    store.save([ServerConfig("team", url=server.dicomweb)])
    ann = ArchiveSession(store, StudyCache(tmp_path / "cache-ann"), Outbox(tmp_path / "out-ann"), author="Ann Reader")
    bob = ArchiveSession(store, StudyCache(tmp_path / "cache-bob"), Outbox(tmp_path / "out-bob"), author="Bob Reader")
    study = next(s for s in ann.search("team", patient_id=PATIENT).studies if s.study_uid == current)
    assert [p.study_uid for p in ann.priors("team", study)] == [prior]  # the woman's earlier study is offered
    images = ann.retrieve("team", current)
    assert len(images) == 4 and ann.origin(images[0]).study_uid == current
    image = next(p for p in images if pydicom.dcmread(p).ViewPosition == "CC" and pydicom.dcmread(p).ImageLaterality == "R")
    bob_image = next(p for p in bob.retrieve("team", current) if p.name == image.name)
    first = ann.save(image, ImageLabels("RCC", (Finding(FindingKind.MASS, shape=Rect(5, 5, 30, 30)),)))
    assert first.sent and first.concurrent == ()
    bob_result = bob.save(bob_image, ImageLabels("RCC", (Finding(FindingKind.ASYMMETRY, shape=Rect(40, 40, 60, 60)),)))
    assert bob_result.sent and bob_result.concurrent == ("Reader^Ann",)  # Ann saved while Bob was editing: both kept
    second = ann.save(image, ImageLabels("RCC", (Finding(FindingKind.MASS, Pathology.MALIGNANT, Rect(5, 5, 30, 30)),)))
    assert second.sent and second.concurrent == ("Reader^Bob",)
    mine, others = ann.refresh_reports(image)
    assert mine.labels.findings[0].pathology == Pathology.MALIGNANT  # her latest becomes the editable labels
    assert [r.author for r in others] == ["Reader^Bob"] and others[0].labels.findings[0].kind == FindingKind.ASYMMETRY
    assert len(open_archive(store.find("team")).instances(current, "SR")) == 3  # nothing overwritten


def test_error_messages_never_carry_the_patient_query():
    import requests

    from mammodesk.archive.dicomweb import _short

    error = requests.HTTPError("400 Client Error: Bad Request for url: "
                               "http://pacs.example/dicom-web/studies?PatientID=MRN-7731&PatientName=DOE%5EJANE")
    text = _short(error)
    assert "MRN-7731" not in text and "DOE" not in text and text.startswith("400 Client Error")


def test_other_modalities_never_crowd_mammograms_out_of_a_limited_search(server, tmp_path):
    """The filter runs here, so the server is asked for more than is shown: with a limit of 2 and three CT
    studies on the server, the one mammography study is still found."""
    from mammodesk.archive.client import search

    for index in range(3):
        ct = make_dataset(phantom(32, 32, bits=12, seed=index), bits_stored=12, modality="CT", PatientID="BUSY",
                          StudyDate=f"2023020{index + 1}")
        server.upload(write(ct, tmp_path / f"ct{index}.dcm"))
    mammography, paths = study_files(tmp_path / "mg", patient="BUSY", date="20230301", compressed=False)
    server.upload(paths[0])
    found = search(open_archive(ServerConfig("test", url=server.dicomweb)), patient_id="BUSY", limit=2)
    assert [s.study_uid for s in found.studies] == [mammography] and found.other_modalities == 3
