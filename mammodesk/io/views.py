"""The mammographic view vocabulary, in one place: the codes (DICOM's ViewPosition and
ACR's names), what the code meanings say, which hanging row (CC or MLO) each belongs to, and
the hanging's four slots. Readers, file-name hints and the anatomy all use these."""

from __future__ import annotations

VIEWS = ("XCCL", "XCCM", "CC", "MLO", "ML", "LM", "LMO", "AT", "SIO", "FB")
SLOTS: tuple[str, ...] = ("RCC", "LCC", "RMLO", "LMLO")
# Views that take a slot when the exact one is missing (ML for MLO, XCCL for CC, ...).
VIEW_FAMILY = {"CC": "CC", "XCCL": "CC", "XCCM": "CC", "FB": "CC",
               "MLO": "MLO", "ML": "MLO", "LM": "MLO", "LMO": "MLO", "SIO": "MLO"}

VIEW_CODE_MEANINGS = {
    "cranio-caudal": "CC",
    "medio-lateral oblique": "MLO",
    "medio-lateral": "ML",
    "latero-medial": "LM",
    "exaggerated cranio-caudal": "XCCL",
    "cranio-caudal exaggerated laterally": "XCCL",
    "cranio-caudal exaggerated medially": "XCCM",
    "latero-medial oblique": "LMO",
    "axillary tail": "AT",
    "superolateral to inferomedial oblique": "SIO",
    "caudo-cranial (from below)": "FB",
}


def normalise_view(text: str | None) -> str | None:
    """A view code from a tag value or a code meaning ("medio-lateral oblique" -> "MLO"), None if unknown."""
    if not text:
        return None
    text = text.strip()
    upper = text.upper().replace(" ", "")
    if upper in VIEWS:
        return upper
    return VIEW_CODE_MEANINGS.get(text.lower())
