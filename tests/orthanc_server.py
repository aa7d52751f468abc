"""A real Orthanc DICOM server for the archive tests: started from a JSON
config on free loopback ports with its own storage folder, DICOMweb plugin on,
stopped afterwards. Never mocked. Where Orthanc is not installed the tests skip,
unless MAMMODESK_REQUIRE_PACS=1 (CI), where they fail."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

INSTALL = "sudo apt-get install orthanc orthanc-dicomweb"  # the README's line, word for word
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Orthanc:
    def __init__(self, folder: Path, aet: str = "ORTHANC", users: dict[str, str] | None = None):
        """`users` (name: password) turns on HTTP basic authentication."""
        self.folder, self.aet, self.users = folder, aet, users
        self.http_port, self.dicom_port = free_port(), free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self) -> "Orthanc":
        binary = shutil.which("Orthanc")
        if binary is None or not Path(PLUGIN).exists():
            message = (f"Orthanc and its DICOMweb plugin are not installed: `{INSTALL}` runs the archive tests "
                       "(README, under the test command)")
            if os.environ.get("MAMMODESK_REQUIRE_PACS") == "1":
                pytest.fail(message)
            pytest.skip(message)
        storage = self.folder / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {"Name": "mammodesk-test", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
                  "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": self.aet,
                  "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
                  "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
                  "DicomAlwaysAllowGet": True, "UnknownSopClassAccepted": True, "StableAge": 1,
                  "Plugins": [PLUGIN], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
        if self.users:
            config.update({"AuthenticationEnabled": True, "RegisteredUsers": self.users})
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config))
        log = open(self.folder / "orthanc.log", "ab")
        self.process = subprocess.Popen([binary, str(path)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                auth = next(iter(self.users.items())) if self.users else None
                if requests.get(f"{self.url}/system", timeout=1, auth=auth).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"Orthanc did not start; see {self.folder / 'orthanc.log'}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def upload(self, path: Path) -> dict:
        response = requests.post(f"{self.url}/instances", data=Path(path).read_bytes(), timeout=30)
        response.raise_for_status()
        return response.json()

    def clear(self) -> None:
        for patient in requests.get(f"{self.url}/patients", timeout=10).json():
            requests.delete(f"{self.url}/patients/{patient}", timeout=10)
