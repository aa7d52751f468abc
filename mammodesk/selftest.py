"""`mammodesk --self-test`: proves an installation works without a display or
data: a synthetic DICOM (written here with pydicom, JPEG 2000-compressed so the
pylibjpeg decoders are exercised) is read back, then every bundled model runs
on it on the CPU. Prints what it did; returns the number of failures."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, TextIO

import numpy as np


def synthetic_mammogram(rows: int = 512, cols: int = 416) -> np.ndarray:
    """A 12-bit breast-shaped phantom (chest wall on the left) with a bright 'lesion'."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    breast = (xx / (0.8 * cols)) ** 2 + ((yy - rows / 2) / (0.45 * rows)) ** 2 < 1
    lesion = (xx - 0.35 * cols) ** 2 + (yy - 0.5 * rows) ** 2 < (0.05 * cols) ** 2
    image = np.where(breast, 2200.0, 100.0) + np.where(lesion, 1200.0, 0.0) + rng.normal(0, 40, (rows, cols))
    return np.clip(image, 0, 4095).astype(np.uint16)


def write_synthetic_dicom(path: Path) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, SecondaryCaptureImageStorage, generate_uid

    pixels = synthetic_mammogram()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.ImageLaterality, ds.ViewPosition = "MG", "L", "CC"
    ds.PatientID = "SELFTEST"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [0.1, 0.1]
    ds.WindowCenter, ds.WindowWidth = 2000, 4000
    ds.PixelData = pixels.tobytes()
    try:
        ds.compress(JPEG2000Lossless, pixels, encoding_plugin="pylibjpeg")
    except Exception:  # no encoder: an uncompressed file still tests the reader
        pass
    ds.save_as(path, enforce_file_format=True)
    return path


def run_self_test(out: TextIO = sys.stdout, extra_checks: list[tuple[str, Callable[[], str]]] = ()) -> int:
    from mammodesk import __version__
    from mammodesk.inference import ModelLibrary
    from mammodesk.io import read_image

    failures = 0

    def check(name: str, fn: Callable[[], str]) -> None:
        nonlocal failures
        started = time.perf_counter()
        try:
            detail = fn()
            print(f"ok    {name}: {detail} ({(time.perf_counter() - started) * 1000:.0f} ms)", file=out)
        except Exception as exc:  # a self-test reports every failure and carries on
            failures += 1
            print(f"FAIL  {name}: {type(exc).__name__}: {exc}", file=out)

    print(f"MammoDesk {__version__} self-test", file=out)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "selftest.dcm"
        image_holder = {}

        def read() -> str:
            write_synthetic_dicom(path)
            image = read_image(path)
            if not np.array_equal(image.pixels, synthetic_mammogram()):
                raise ValueError("decoded pixels differ from what was written")
            image_holder["image"] = image
            import pydicom

            syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
            return f"{image.shape[1]}x{image.shape[0]} {image.meta.bits_stored}-bit, {syntax.name}"

        check("read synthetic DICOM", read)
        library = ModelLibrary()
        print(f"bundled models: {len(library.entries)}", file=out)
        for entry in library.entries:
            check(f"model {entry.name}", lambda entry=entry: _run_model(library, entry, image_holder.get("image")))
        for name, fn in extra_checks:
            check(name, fn)
    print("self-test passed" if not failures else f"self-test FAILED: {failures} check(s)", file=out)
    return failures


def _run_model(library, entry, image) -> str:
    if entry.card is None:
        raise ValueError(f"fails its contract: {entry.error}")
    if image is None:
        raise ValueError("no test image (the read check failed)")
    runner = library.runner(entry.name, prefer_gpu=False)
    rows, cols = image.shape
    roi = None if runner.card.reads_whole_image else (cols * 0.35 - 40, rows * 0.5 - 40, cols * 0.35 + 40,
                                                        rows * 0.5 + 40)
    prediction = runner.predict(image, roi)
    if not np.isclose(prediction.probabilities.sum(), 1.0, atol=1e-4) and runner.card.activation == "softmax":
        raise ValueError(f"probabilities sum to {prediction.probabilities.sum()}")
    cams = "with CAMs" if prediction.heatmaps is not None else "no CAMs"
    return f"{prediction.predicted_label} ({prediction.probabilities.max():.2f}), {cams}, providers {runner.providers}"
