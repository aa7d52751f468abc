"""Synthetic DICOM files written with pydicom, for the cases the real files
don't cover: MONOCHROME1, each VOI LUT function, LUT sequences, padding,
12/16-bit, every compressed syntax we decode, identifying tags, damage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000Lossless, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1, JPEGLSLossless, RLELossless,
    ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid,
)

PHI = {
    "PatientName": "Doe^Jane^Q",
    "PatientID": "MRN-0042-SECRET",
    "PatientBirthDate": "19610203",
    "AccessionNumber": "ACC-998877",
    "InstitutionName": "St Example Hospital",
    "ReferringPhysicianName": "House^Gregory",
    "OtherPatientIDs": "ALT-77",
    "PatientAddress": "1 Privacy Lane",
    "StudyDate": "20240115",
}


def phantom(rows: int = 96, cols: int = 80, bits: int = 12, seed: int = 0) -> np.ndarray:
    """A breast-like bright half-disc on a dark background, with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    disc = ((xx / (0.75 * cols)) ** 2 + ((yy - rows / 2) / (0.45 * rows)) ** 2) < 1
    top = 2**bits - 1
    image = np.where(disc, 0.55 * top, 0.04 * top) + rng.normal(0, 0.03 * top, (rows, cols))
    return np.clip(image, 0, top).astype(np.uint16 if bits > 8 else np.uint8)


def mammogram_like(rows: int = 4096, cols: int = 3328, seed: int = 0) -> np.ndarray:
    """Breast-shaped 12-bit-in-16 image with smooth texture and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    breast = (xx / (0.8 * cols)) ** 2 + ((yy - rows / 2) / (0.45 * rows)) ** 2 < 1
    texture = cv2.GaussianBlur(rng.normal(0, 1, (rows // 8, cols // 8)).astype(np.float32), (0, 0), 3)
    texture = cv2.resize(texture, (cols, rows), interpolation=cv2.INTER_CUBIC)
    image = np.where(breast, 2200 + 600 * texture, 120) + rng.normal(0, 25, (rows, cols))
    return np.clip(image, 0, 4095).astype(np.uint16)


def make_dataset(pixels: np.ndarray, *, bits_stored: int | None = None, photometric: str = "MONOCHROME2",
                 modality: str = "MG", phi: bool = True, signed: bool = False, **attributes: Any) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.ImageLaterality = "L"
    ds.ViewPosition = "CC"
    ds.PixelSpacing = [0.07, 0.07]
    if phi:
        for keyword, value in PHI.items():
            setattr(ds, keyword, value)
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 1 if pixels.ndim == 2 else pixels.shape[2]
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if pixels.dtype.itemsize == 1 else 16
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if ds.SamplesPerPixel > 1:
        ds.PlanarConfiguration = 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def write(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def compress(ds: Dataset, pixels: np.ndarray, syntax: str) -> Dataset:
    """Re-encode the dataset's pixels in a compressed transfer syntax."""
    import imagecodecs  # test-only dependency, encoders for the JPEG family

    bits = int(ds.BitsStored)
    if syntax == RLELossless:
        ds.compress(RLELossless, pixels, encoding_plugin="pydicom")
        return ds
    if syntax == JPEGBaseline8Bit:
        ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 100])
        assert ok
        frame = encoded.tobytes()
        ds.LossyImageCompression = "01"
    elif syntax == JPEGExtended12Bit:
        frame = imagecodecs.jpeg8_encode(pixels, level=95, bitspersample=bits)
        ds.LossyImageCompression = "01"
    elif syntax == JPEGLosslessSV1:
        frame = imagecodecs.jpeg8_encode(pixels, lossless=True, predictor=1, bitspersample=bits)
    elif syntax == JPEGLSLossless:
        frame = imagecodecs.jpegls_encode(pixels, level=0)
    elif syntax == JPEG2000Lossless:
        frame = imagecodecs.jpeg2k_encode(pixels, level=0, codecformat="J2K", reversible=True, bitspersample=bits)
    else:
        raise ValueError(f"no test encoder for {syntax}")
    ds.PixelData = encapsulate([bytes(frame)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    return ds
