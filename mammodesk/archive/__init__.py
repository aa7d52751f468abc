"""The archive: DICOM servers a team shares (DICOMweb through dicomweb-client,
DIMSE through pynetdicom). Studies come in through a local cache; labels go
back as DICOM SR, one series per author, a new instance per save, through an
outbox that keeps every report until the server has acknowledged it. Qt-free."""

from mammodesk.archive.client import ArchiveError, StudySummary, open_archive
from mammodesk.archive.servers import ServerConfig, ServerStore

__all__ = ["ArchiveError", "ServerConfig", "ServerStore", "StudySummary", "open_archive"]
