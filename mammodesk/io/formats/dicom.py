"""DICOM reader. Order of operations, as the standard prescribes: stored values
→ padding mask → modality LUT (rescale or LUT sequence) → VOI LUT presets →
MONOCHROME1 inversion (applied to the pixels, with the presets mirrored so the
display is identical; see `mammodesk.io.voi`)."""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, get_decoder

from mammodesk.errors import (
    CorruptFileError,
    MissingPixelDataError,
    UnsupportedImageError,
)
from mammodesk.io.image import Image, ImageMeta, WindowPreset
from mammodesk.io.naming import hashed_key, infer_from_name
from mammodesk.io.views import normalise_view
from mammodesk.io.phi import split_tags
from mammodesk.io.truncation import describe_truncation
from mammodesk.io.voi import mirror_preset
from mammodesk.io.registry import ImageFormat, register_format

_VOI_FUNCTIONS = {"LINEAR", "LINEAR_EXACT", "SIGMOID"}


def sniff_dicom(head: bytes) -> bool:
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    # Files without the 128-byte preamble start straight with a group 0002 or 0008 tag.
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00") and head[2:4] < b"\x20\x00"


class _PerThreadMessages(logging.Handler):
    """pydicom reports non-conformant data through `warn_and_log`: a log record
    (thread-safe, tagged with its thread) plus a Python warning. Collecting the
    records per thread lets concurrent reads each keep their own messages,
    which `warnings.catch_warnings` (process-wide state) cannot do."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._active: dict[int, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        messages = self._active.get(record.thread)
        if messages is not None:
            messages.append(record.getMessage().split(" Please see")[0])

    @contextlib.contextmanager
    def collect(self):
        ident = threading.get_ident()
        self._active[ident] = messages = []
        try:
            yield messages
        finally:
            self._active.pop(ident, None)


_PYDICOM_MESSAGES = _PerThreadMessages()
logging.getLogger("pydicom").addHandler(_PYDICOM_MESSAGES)
# The same messages also arrive as Python warnings; they are shown with the image instead.
warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")


def read_dicom(path: str | Path, *, keep_identifying: bool = False) -> Image:
    path = Path(path)
    warns: list[str] = []
    with _PYDICOM_MESSAGES.collect() as messages:
        ds = _parse(path)
        _check_supported(path, ds)
        header = _header(path, ds, warns)
        stored = _decode(path, ds)
    warns += [f"pydicom: {m}" for m in dict.fromkeys(messages)][:5]
    padding = _padding_mask(ds, stored)
    pixels, value_range = _modality_lut(ds, stored)
    presets = header.pop("presets")
    if header["photometric_interpretation"] == "MONOCHROME1":
        k = value_range[0] + value_range[1]
        pixels = _invert(pixels, k)
        presets = [mirror_preset(p, k) for p in presets]
    public, identifying = header.pop("tags")  # no presets in the file: the viewer picks a window on the breast
    meta = ImageMeta(
        source_path=path, format="DICOM", bits_stored=int(ds.get("BitsStored", stored.itemsize * 8)),
        window_presets=tuple(presets), padding_mask=padding, tags=public,
        identifying=identifying if keep_identifying else None, warnings=tuple(warns), **header)
    return Image(pixels, meta)


def _header(path: Path, ds: Dataset, warns: list[str]) -> dict:
    """Everything but the pixels. Touches every top-level element (split_tags iterates them)."""
    modality = str(ds.get("Modality", "") or "")
    if modality != "MG":
        warns.append(f"modality is {modality or 'missing'}, not MG (mammography); loaded anyway")
    hints = infer_from_name(str(ds.get("PatientID", "")) + " " + path.stem)
    in_tags = infer_from_name(str(ds.get("PatientID", "")))  # CBIS-DDSM: "Mass-Test_P_00820_RIGHT_MLO"
    study = ds.get("StudyInstanceUID")
    return {
        "tags": split_tags(ds),
        "presets": _window_presets(ds, path, warns),
        "modality": modality,
        "laterality": _laterality(ds) or in_tags.laterality,  # file names are `mammodesk.anatomy`'s
        "view": _view(ds) or in_tags.view,
        "photometric_interpretation": str(ds.PhotometricInterpretation),
        "pixel_spacing_mm": _spacing(ds),
        "patient_key": hints.patient_key or _patient_key(ds),
        "study_key": hashed_key("study", str(study)) if study else None,
    }


def _parse(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path, force=True)
    except (InvalidDicomError, EOFError, ValueError, OSError, KeyError, TypeError) as exc:
        raise CorruptFileError(path, f"DICOM header is damaged ({exc})") from exc


def _check_supported(path: Path, ds: Dataset) -> None:
    if len(ds) == 0 or ("PixelData" not in ds and "Rows" in ds):
        short = describe_truncation(path)
        if short is not None:
            raise CorruptFileError(path, short)
    if len(ds) == 0:
        raise CorruptFileError(path, "DICOM file ends before its dataset begins (truncated?)")
    if "PixelData" not in ds:
        kind = ds.get("SOPClassUID")
        what = f" ({kind.name})" if kind is not None and hasattr(kind, "name") else ""
        if what.endswith("Image Storage)") and "Rows" not in ds:  # an image object cut inside its header
            raise CorruptFileError(path, f"file ends inside its header (truncated: an image object{what} "
                                         "without its rows, columns or pixels)")
        hint = "; if it should be an image, the file may be cut short before its pixels" if "Rows" in ds else ""
        raise MissingPixelDataError(path, f"DICOM file has no pixel data{what}{hint}")
    for needed in ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation"):
        if needed not in ds:
            raise CorruptFileError(path, f"DICOM pixel module incomplete: {needed} is missing")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise UnsupportedImageError(
            path, f"multi-frame DICOM ({frames} frames, e.g. tomosynthesis) is not supported; "
            "export a single 2-D view")
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = str(ds.PhotometricInterpretation)
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedImageError(
            path, f"colour DICOM ({photometric}, {samples} samples/pixel); mammograms are greyscale")
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is None:
        ds.file_meta = getattr(ds, "file_meta", pydicom.dataset.FileMetaDataset())
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        syntax = ds.file_meta.TransferSyntaxUID
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise UnsupportedImageError(
            path, f"transfer syntax {syntax} ({syntax.name}) has no decoder in MammoDesk") from exc
    if not decoder.is_available:
        raise UnsupportedImageError(
            path, f"{syntax.name} needs a decoder plugin that is not installed "
            "(pylibjpeg-libjpeg for JPEG/JPEG-LS, pylibjpeg-openjpeg for JPEG 2000)")


def _decode(path: Path, ds: Dataset) -> np.ndarray:
    try:
        array = ds.pixel_array
    except BaseException as exc:
        # Plugins raise ValueError, RuntimeError, struct.error... and the Rust RLE decoder
        # panics with pyo3's PanicException, a BaseException: damaged bytes must not kill the app.
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)):
            raise
        short = describe_truncation(path, ds)
        raise CorruptFileError(path, short or f"pixel data could not be decoded ({exc})") from exc
    expected = (int(ds.Rows), int(ds.Columns))
    if array.shape != expected:
        raise CorruptFileError(path, f"decoded {array.shape} pixels, header says {expected}")
    return array


def _padding_mask(ds: Dataset, stored: np.ndarray) -> np.ndarray | None:
    value = ds.get("PixelPaddingValue")
    if value is None:
        return None
    limit = ds.get("PixelPaddingRangeLimit")
    lo, hi = (value, value) if limit is None else sorted((int(value), int(limit)))
    mask = (stored >= lo) & (stored <= hi)
    return mask if mask.any() else None


def _modality_lut(ds: Dataset, stored: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Apply rescale/LUT; returns pixels (uint8/uint16 when the LUT is identity,
    float32 otherwise) and the value range the stored bit depth allows."""
    bits = int(ds.get("BitsStored", stored.itemsize * 8))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if "ModalityLUTSequence" in ds:
        out = apply_modality_lut(stored, ds).astype(np.float32)
        return out, (float(out.min()), float(out.max()))
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if slope == 1 and intercept == 0 and not signed and stored.dtype in (np.uint8, np.uint16):
        # Bits above BitsStored may hold overlays or garbage; never let them through.
        return np.minimum(stored, hi).astype(stored.dtype, copy=False), (float(lo), float(hi))
    out = stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    ends = sorted((lo * slope + intercept, hi * slope + intercept))
    return out, (ends[0], ends[1])


def _invert(pixels: np.ndarray, k: float) -> np.ndarray:
    if pixels.dtype == np.float32:
        return (np.float32(k) - pixels).astype(np.float32)
    return (pixels.dtype.type(int(k)) - pixels).astype(pixels.dtype)


def _window_presets(ds: Dataset, path: Path, warns: list[str]) -> list[WindowPreset]:
    presets: list[WindowPreset] = []
    for item in ds.get("VOILUTSequence", []):
        preset = _lut_preset(item)
        if preset is not None:
            presets.append(preset)
    centers, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centers is not None and widths is not None:
        centers = list(centers) if isinstance(centers, pydicom.multival.MultiValue) else [centers]
        widths = list(widths) if isinstance(widths, pydicom.multival.MultiValue) else [widths]
        names = ds.get("WindowCenterWidthExplanation", [])
        names = list(names) if isinstance(names, pydicom.multival.MultiValue) else [names]
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        if function not in _VOI_FUNCTIONS:
            warns.append(f"unknown VOI LUT Function {function!r}; using LINEAR")
            function = "LINEAR"
        for index, (center, width) in enumerate(zip(centers, widths)):
            if float(width) <= 0:
                warns.append(f"ignored window {index + 1}: width {width} is not positive")
                continue
            name = str(names[index]) if index < len(names) else ""
            presets.append(WindowPreset(float(center), float(width), function, name))  # type: ignore[arg-type]
    return presets


def _lut_preset(item: Dataset) -> WindowPreset | None:
    descriptor = item.get("LUTDescriptor")
    data = item.get("LUTData")
    if descriptor is None or data is None:
        return None
    entries, first, bits = (int(v) for v in descriptor)
    entries = entries or 65536
    table = (np.frombuffer(data, dtype="<u2" if bits > 8 else "u1")
             if isinstance(data, bytes) else np.asarray(data, dtype=np.float64).ravel())
    table = table[:entries].astype(np.float32) / np.float32(2**bits - 1)
    centre = first + entries / 2
    name = str(item.get("LUTExplanation", "") or "VOI LUT")
    return WindowPreset(centre, float(entries), "LUT", name, table, first)


def _laterality(ds: Dataset) -> str | None:
    for keyword in ("ImageLaterality", "Laterality", "FrameLaterality"):
        value = str(ds.get(keyword, "") or "").upper()
        if value in ("L", "R"):
            return value
    return None


def _view(ds: Dataset) -> str | None:
    view = normalise_view(str(ds.get("ViewPosition", "") or ""))
    if view:
        return view
    for item in ds.get("ViewCodeSequence", []):
        view = normalise_view(str(item.get("CodeMeaning", "")))
        if view:
            return view
    orientation = ds.get("PatientOrientation")
    if isinstance(orientation, str):  # CBIS-DDSM writes the view name here
        return normalise_view(orientation)
    return None


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None and len(value) == 2 and all(float(v) > 0 for v in value):
            return float(value[0]), float(value[1])
    return None


def _patient_key(ds: Dataset) -> str | None:
    patient = str(ds.get("PatientID", "") or "").strip()
    return hashed_key("patient", patient) if patient else None


register_format(ImageFormat("dicom", "DICOM", sniff_dicom, read_dicom, suffixes=(".dcm", ".dicom", ".dic", "")))
