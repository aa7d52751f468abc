"""DIMSE through pynetdicom: C-ECHO, C-FIND (study root), C-GET (the images
come back on the same association, in the transfer syntax they are stored in,
compressed ones included) and C-STORE. One association per request."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000, JPEG2000Lossless,
    JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1, JPEGLSLossless, JPEGLSNearLossless, RLELossless,
)

from mammodesk.archive.servers import ServerConfig
from mammodesk.archive.types import ArchiveError, InstanceRef, StudySummary, date_range
from mammodesk.storage import write_atomic_with

TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                     JPEG2000Lossless, JPEG2000, JPEGLSLossless, JPEGLSNearLossless, RLELossless, JPEGLosslessSV1,
                     JPEGBaseline8Bit, JPEGExtended12Bit]
RECEIVED_CLASSES = ("DigitalMammographyXRayImageStorageForPresentation",
                    "DigitalMammographyXRayImageStorageForProcessing", "SecondaryCaptureImageStorage",
                    "DigitalXRayImageStorageForPresentation", "ComputedRadiographyImageStorage",
                    "Comprehensive3DSRStorage", "ComprehensiveSRStorage", "EnhancedSRStorage", "BasicTextSRStorage",
                    "BreastTomosynthesisImageStorage")


# DIMSE status codes (PS3.4 annex C), by what they mean here
SUCCESS = 0x0000
PENDING = (0xFF00, 0xFF01)  # a match follows (C-FIND) / sub-operations continue (C-GET)
SUB_OPERATIONS_FAILED = 0xB000  # C-GET warning: one or more images could not be sent
STORED_WITH_WARNINGS = (0xB000, 0xB006, 0xB007)  # C-STORE: coercion, elements discarded, not matching SOP class


class DimseArchive:
    def __init__(self, config: ServerConfig):
        self.config = config

    def _associate(self, contexts: list[str], *, receive: bool = False, handlers=()):
        from pynetdicom import AE, build_role, sop_class

        ae = AE(ae_title=self.config.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.config.timeout_s
        roles = []
        for name in contexts:
            ae.add_requested_context(getattr(sop_class, name))
        if receive:  # one context per transfer syntax, so the server can send each image as stored
            for name in RECEIVED_CLASSES:
                for syntax in TRANSFER_SYNTAXES:
                    ae.add_requested_context(getattr(sop_class, name), syntax)
                roles.append(build_role(getattr(sop_class, name), scp_role=True))
        try:
            assoc = ae.associate(self.config.host, int(self.config.port), ae_title=self.config.called_ae,
                                 ext_neg=roles or None, evt_handlers=list(handlers))
        except (OSError, ValueError) as exc:
            raise self._unreachable() from exc
        if not assoc.is_established:
            if assoc.is_rejected:
                raise ArchiveError(f"{self.config.name}: the server rejected the association (check the AE titles "
                                   f"{self.config.calling_ae} -> {self.config.called_ae})", retry=False)
            raise self._unreachable()
        return assoc

    def _unreachable(self) -> ArchiveError:
        return ArchiveError(f"{self.config.name}: cannot reach {self.config.host}:{self.config.port} (server down, "
                            "wrong port, or a firewall); check the server and try again")

    def echo(self) -> str:
        assoc = self._associate(["Verification"])
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        if not status or status.Status != 0:
            raise ArchiveError(f"{self.config.name}: C-ECHO failed")
        return f"{self.config.name}: C-ECHO answered by {self.config.called_ae} at {self.config.host}"

    def _find(self, query: pydicom.Dataset) -> list[pydicom.Dataset]:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

        assoc = self._associate(["StudyRootQueryRetrieveInformationModelFind"])
        results = []
        try:
            for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
                if status is None:
                    raise ArchiveError(f"{self.config.name}: the connection dropped during the search; try again")
                if status.Status in PENDING and identifier is not None:
                    results.append(identifier)
                elif status.Status not in (SUCCESS, *PENDING):
                    raise ArchiveError(f"{self.config.name}: the search failed (status 0x{status.Status:04X})",
                                       retry=False)
        finally:
            assoc.release()
        return results

    def search_studies(self, *, patient_id: str = "", patient_name: str = "", date_from: str = "",
                       date_to: str = "", accession: str = "", modality: str = "MG",
                       limit: int = 200) -> list[StudySummary]:
        query = pydicom.Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        query.PatientID = patient_id or ""
        query.PatientName = f"*{patient_name}*" if patient_name else ""
        query.StudyDate = date_range(date_from, date_to)
        query.AccessionNumber = accession or ""
        query.ModalitiesInStudy = modality or ""
        query.NumberOfStudyRelatedInstances = ""
        query.StudyDescription = ""
        found = self._find(query)[:limit]
        return [StudySummary(str(ds.get("StudyInstanceUID", "")), str(ds.get("PatientID", "") or ""),
                             str(ds.get("PatientName", "") or ""), str(ds.get("StudyDate", "") or ""),
                             str(ds.get("AccessionNumber", "") or ""), _values(ds.get("ModalitiesInStudy")),
                             int(ds.get("NumberOfStudyRelatedInstances", 0) or 0),
                             str(ds.get("StudyDescription", "") or "")) for ds in found]

    def instances(self, study_uid: str, modality: str = "") -> list[InstanceRef]:
        query = pydicom.Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = ""
        query.SOPInstanceUID = ""
        query.Modality = modality or ""
        return [InstanceRef(study_uid, str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), str(ds.get("Modality", "")))
                for ds in self._find(query)]

    def retrieve(self, refs: list[InstanceRef], folder: Path, progress=None, should_stop=None) -> list[Path]:
        from pynetdicom import evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

        folder.mkdir(parents=True, exist_ok=True)
        paths: list[Path] = []

        def on_store(event):
            ds = event.dataset
            ds.file_meta = event.file_meta
            path = folder / f"{ds.SOPInstanceUID}.dcm"
            write_atomic_with(path, lambda temporary: ds.save_as(temporary, enforce_file_format=True))
            paths.append(path)
            if progress is not None:
                progress(len(paths), len(refs))
            return SUCCESS

        for ref in refs:
            if should_stop is not None and should_stop():
                raise InterruptedError("retrieve stopped")
            assoc = self._associate(["StudyRootQueryRetrieveInformationModelGet"], receive=True,
                                    handlers=[(evt.EVT_C_STORE, on_store)])
            try:
                query = pydicom.Dataset()
                query.QueryRetrieveLevel = "IMAGE"
                query.StudyInstanceUID, query.SeriesInstanceUID = ref.study_uid, ref.series_uid
                query.SOPInstanceUID = ref.sop_uid
                for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
                    if status is None:
                        raise ArchiveError(f"{self.config.name}: the connection dropped during the retrieve; "
                                           "retrieve again (the images already here are kept)")
                    if status.Status == SUB_OPERATIONS_FAILED:  # an image is missing
                        raise ArchiveError(f"{self.config.name}: the server could not send every image of the "
                                           "study (C-GET warning 0xB000); retrieve again (the images already "
                                           "here are kept)")
                    if status.Status not in (SUCCESS, *PENDING):
                        raise ArchiveError(f"{self.config.name}: C-GET failed (status 0x{status.Status:04X})")
            finally:
                assoc.release()
        if len(paths) < len(refs):
            raise ArchiveError(f"{self.config.name}: {len(refs) - len(paths)} of {len(refs)} images did not arrive; "
                               "retrieve again (the images already here are kept)")
        return paths

    def store(self, paths: list[Path]) -> list[str]:
        datasets = [pydicom.dcmread(p) for p in paths]
        classes = sorted({_class_name(ds.SOPClassUID) for ds in datasets})
        assoc = self._associate(classes)
        stored = []
        try:
            for ds in datasets:
                status = assoc.send_c_store(ds)
                if status is None:
                    raise ArchiveError(f"{self.config.name}: the connection dropped while storing; the report stays "
                                       "in the outbox and is sent again")
                if status.Status not in (SUCCESS, *STORED_WITH_WARNINGS):
                    raise ArchiveError(f"{self.config.name}: the server refused the object (C-STORE status "
                                       f"0x{status.Status:04X}); it stays in the outbox", retry=False)
                stored.append(str(ds.SOPInstanceUID))
        finally:
            assoc.release()
        return stored


def _values(value) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _class_name(uid) -> str:
    from pynetdicom import sop_class

    for name in dir(sop_class):
        if getattr(sop_class, name) == uid and not name.startswith("_"):
            return name
    raise ArchiveError(f"cannot store SOP class {uid}: pynetdicom does not know it", retry=False)
