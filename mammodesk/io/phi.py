"""Which DICOM attributes identify a patient (after DICOM PS3.15 Annex E, the
Basic Application Level Confidentiality Profile, applied conservatively).

A rule set rather than only a list: every person name, date and time, every
instance UID and every private element is treated as identifying, plus the
named attributes below. Used by readers (what enters `ImageMeta.tags`) and by
exports (what may leave the app)."""

from __future__ import annotations

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

IDENTIFYING_KEYWORDS = frozenset(
    """
    PatientName PatientID IssuerOfPatientID OtherPatientIDs OtherPatientIDsSequence
    OtherPatientNames PatientBirthName PatientMotherBirthName PatientBirthDate
    PatientBirthTime PatientSex PatientAge PatientSize PatientWeight PatientAddress
    PatientTelephoneNumbers PatientReligiousPreference MilitaryRank EthnicGroup
    Occupation AdditionalPatientHistory PatientComments MedicalRecordLocator
    CountryOfResidence RegionOfResidence AccessionNumber StudyID
    InstitutionName InstitutionAddress InstitutionalDepartmentName
    ReferringPhysicianName ReferringPhysicianAddress ReferringPhysicianTelephoneNumbers
    PerformingPhysicianName PhysiciansOfRecord NameOfPhysiciansReadingStudy
    OperatorsName RequestingPhysician ScheduledPerformingPhysicianName
    StationName DeviceSerialNumber DetectorID PlateID CassetteID GantryID
    RequestAttributesSequence ReferencedPatientSequence ReferencedStudySequence
    ImageComments StudyDescription RequestedProcedureDescription
    PerformedProcedureStepID ScheduledProcedureStepID RequestedProcedureID
    FillerOrderNumberImagingServiceRequest PlacerOrderNumberImagingServiceRequest
    """.split()
)
_NON_IDENTIFYING_UIDS = frozenset(
    {"SOPClassUID", "TransferSyntaxUID", "MediaStorageSOPClassUID", "ImplementationClassUID"}
)


def is_identifying(element: DataElement) -> bool:
    if element.tag.is_private:
        return True
    if element.VR in ("PN", "DA", "DT", "TM"):
        return True
    if element.VR == "UI":
        return element.keyword not in _NON_IDENTIFYING_UIDS
    return element.keyword in IDENTIFYING_KEYWORDS


def _display_value(element: DataElement) -> str:
    if element.VR == "SQ":
        return f"<sequence of {len(element.value)} item(s)>"
    if element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return f"<{element.VR}, {len(element.value or b'')} bytes>"
    text = str(element.value)
    return text if len(text) <= 200 else text[:197] + "..."


def split_tags(ds: Dataset) -> tuple[dict[str, str], dict[str, str]]:
    """Top-level attributes as display strings: (non-identifying, identifying)."""
    public: dict[str, str] = {}
    private: dict[str, str] = {}
    for element in ds:  # top level only; sequences are summarised
        if element.tag == 0x7FE00010 or element.tag.group == 0x0002:
            continue
        name = element.keyword or str(element.tag)
        target = private if is_identifying(element) else public
        target[name] = _display_value(element)
    return public, private
