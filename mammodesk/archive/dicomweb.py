"""DICOMweb through dicomweb-client: QIDO-RS searches, WADO-RS retrieves (the
instance as stored: transfer-syntax=*, so JPEG 2000, JPEG-LS and RLE arrive
compressed and decode like local files), STOW-RS stores. TLS is verified;
every request has a timeout; secrets come from `servers.get_secret`."""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import requests
from requests.adapters import HTTPAdapter

from mammodesk.archive.servers import ServerConfig, get_secret, secret_variable
from mammodesk.archive.types import ArchiveError, InstanceRef, StudySummary, date_range
from mammodesk.storage import write_atomic_with

STUDY_FIELDS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "AccessionNumber",
                "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "StudyDescription")
AS_STORED = (("application/dicom", "*"),)


class _Timeout(HTTPAdapter):
    def __init__(self, timeout: float):
        super().__init__(max_retries=0)
        self.timeout = timeout

    def send(self, request, **kwargs):
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        return super().send(request, **kwargs)


class DicomWebArchive:
    def __init__(self, config: ServerConfig):
        from dicomweb_client.api import DICOMwebClient

        self.config = config
        session = requests.Session()
        session.verify = True
        # Pixel data hardly compresses, and a server that gzips 20 MB instances on the fly takes
        # several times longer than the transfer itself (measured: 8x slower than curl with gzip).
        session.headers["Accept-Encoding"] = "identity"
        adapter = _Timeout(config.timeout_s)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if config.auth != "none":
            secret = get_secret(config.name)
            if not secret:
                raise ArchiveError(f"{config.name}: no password or token stored; add it in Servers... (OS keyring) "
                                   f"or set {secret_variable(config.name)}", retry=False)
            if config.auth == "basic":
                session.auth = (config.username, secret)
            else:
                session.headers["Authorization"] = f"Bearer {secret}"
        self.client = DICOMwebClient(url=config.url, session=session)
        self.client.set_http_retry_params(retry=False)  # fail fast with one message; the user (or outbox) retries

    # --- requests ------------------------------------------------------------------------------
    def _call(self, what: str, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise ArchiveError(f"{self.config.name}: the server's TLS certificate is not trusted ({_short(exc)}); "
                               "fix the certificate or install its authority", retry=False) from exc
        except requests.exceptions.Timeout as exc:
            raise ArchiveError(f"{self.config.name}: {what} timed out after {self.config.timeout_s:.0f} s; the server "
                               "is slow or unreachable - try again") from exc
        except requests.exceptions.ConnectionError as exc:
            raise ArchiveError(f"{self.config.name}: cannot reach {self.config.url} during {what} (server down or "
                               "network lost); check the server and try again") from exc
        except requests.exceptions.HTTPError as exc:
            raise _http_error(self.config.name, what, exc) from exc
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            raise ArchiveError(f"{self.config.name}: {what} failed ({_short(exc)}); try again") from exc

    def echo(self) -> str:
        self._call("a test search", self.client.search_for_studies, limit=1)
        return f"{self.config.name}: DICOMweb answers at {self.config.url}"

    def search_studies(self, *, patient_id: str = "", patient_name: str = "", date_from: str = "",
                       date_to: str = "", accession: str = "", modality: str = "MG",
                       limit: int = 200) -> list[StudySummary]:
        filters = {k: v for k, v in (("PatientID", patient_id), ("PatientName", patient_name),
                                     ("StudyDate", date_range(date_from, date_to)), ("AccessionNumber", accession),
                                     ("ModalitiesInStudy", modality)) if v}
        found = self._call("the study search", self.client.search_for_studies, search_filters=filters,
                           fields=list(STUDY_FIELDS), limit=limit, fuzzymatching=bool(patient_name))
        return [_summary(pydicom.Dataset.from_json(item)) for item in found]

    def instances(self, study_uid: str, modality: str = "") -> list[InstanceRef]:
        filters = {"Modality": modality} if modality else {}
        found = self._call("the instance search", self.client.search_for_instances, study_instance_uid=study_uid,
                           search_filters=filters, fields=["SeriesInstanceUID", "SOPInstanceUID", "Modality"])
        refs = []
        for item in found:
            ds = pydicom.Dataset.from_json(item)
            refs.append(InstanceRef(study_uid, str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID),
                                    str(ds.get("Modality", ""))))
        return refs

    def retrieve(self, refs: list[InstanceRef], folder: Path, progress=None, should_stop=None) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index, ref in enumerate(refs):
            if should_stop is not None and should_stop():
                raise InterruptedError("retrieve stopped")
            ds = self._call("the retrieve", self.client.retrieve_instance, ref.study_uid, ref.series_uid,
                            ref.sop_uid, media_types=AS_STORED)
            paths.append(_save_atomically(ds, folder / f"{ref.sop_uid}.dcm"))
            if progress is not None:
                progress(index + 1, len(refs))
        return paths

    def store(self, paths: list[Path]) -> list[str]:
        datasets = [pydicom.dcmread(p) for p in paths]
        response = self._call("storing", self.client.store_instances, datasets)
        failed = response.get("00081198", {}).get("Value", []) if response else []
        if failed:
            raise ArchiveError(f"{self.config.name}: the server refused {len(failed)} of {len(datasets)} object(s) "
                               "(FailedSOPSequence); they stay in the outbox - check the server's log", retry=False)
        return [str(ds.SOPInstanceUID) for ds in datasets]


def _summary(ds: pydicom.Dataset) -> StudySummary:
    modalities = ds.get("ModalitiesInStudy", [])
    modalities = [modalities] if isinstance(modalities, str) else list(modalities)
    return StudySummary(str(ds.get("StudyInstanceUID", "")), str(ds.get("PatientID", "") or ""),
                        str(ds.get("PatientName", "") or ""), str(ds.get("StudyDate", "") or ""),
                        str(ds.get("AccessionNumber", "") or ""), tuple(str(m) for m in modalities),
                        int(ds.get("NumberOfStudyRelatedInstances", 0) or 0), str(ds.get("StudyDescription", "") or ""))


def _save_atomically(ds: pydicom.Dataset, path: Path) -> Path:
    write_atomic_with(path, lambda temporary: ds.save_as(temporary, enforce_file_format=True))
    return path


def _http_error(name: str, what: str, exc: requests.exceptions.HTTPError) -> ArchiveError:
    status = exc.response.status_code if exc.response is not None else 0
    if status in (401, 403):
        return ArchiveError(f"{name}: the server refused the credentials during {what} (HTTP {status}); check the "
                            "user name and password or token in Servers...", retry=False)
    if status == 404:
        return ArchiveError(f"{name}: not found on the server during {what} (HTTP 404): check the base URL (it "
                            "usually ends in /dicom-web) or whether the study still exists", retry=False)
    if 400 <= status < 500:
        return ArchiveError(f"{name}: the server rejected {what} (HTTP {status}): {_short(exc)}", retry=False)
    return ArchiveError(f"{name}: the server failed during {what} (HTTP {status}); try again later")


def _short(exc: Exception) -> str:
    """The first line of an error, without URL query strings: a QIDO query carries the patient's
    ID or name, and messages reach the status bar, the outbox and the terminal."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r"\?\S*", "?…", text)[:160]
