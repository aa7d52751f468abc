"""Core benchmark: decode time per format and each preprocessing op at full
resolution and on a 1024-wide view, for a 4096 x 3328 16-bit image.

Run on demand:  .venv/bin/python tests/benchmarks/bench_core.py [--repeat 5]

Machines are noisy, so every figure is also given as a ratio to a baseline
measured in the same run: decoding against reading the uncompressed DICOM,
ops against copying the same pixels (np.copy).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dicom_factory import compress, make_dataset, mammogram_like, write  # noqa: E402
from timing import timed as _timed  # noqa: E402
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, JPEGLSLossless, RLELossless  # noqa: E402

from mammodesk.io import Image, ImageMeta, read_image  # noqa: E402
from mammodesk.preprocessing import PipelineSpec, initial_frame  # noqa: E402


def timed(fn, repeat: int) -> float:
    """Median ms."""
    return _timed(fn, repeat)[0]

ROWS, COLS = 4096, 3328
VIEW_WIDTH = 1024
OPS = [
    ("window", {}), ("crop_to_breast", {}), ("flip_laterality", {}), ("median", {"ksize": 5}),
    ("gaussian", {"sigma": 2.0}), ("wiener", {"ksize": 5}), ("nlmeans", {"h": 10}), ("clahe", {}),
    ("threshold_roi", {"level": 100}), ("resize", {"width": 640, "height": 800}), ("normalise", {}),
    ("to_rgb", {}),
]
SLOW = {"nlmeans"}


def bench_decode(pixels: np.ndarray, folder: Path, repeat: int) -> None:
    files = {"DICOM uncompressed": write(make_dataset(pixels, bits_stored=12), folder / "raw.dcm")}
    for name, syntax in [("DICOM RLE", RLELossless), ("DICOM JPEG lossless", JPEGLosslessSV1),
                         ("DICOM JPEG-LS", JPEGLSLossless), ("DICOM JPEG 2000", JPEG2000Lossless)]:
        ds = compress(make_dataset(pixels, bits_stored=12), pixels, syntax)
        files[name] = write(ds, folder / f"{syntax}.dcm")
    pgm = folder / "img.pgm"
    pgm.write_bytes(f"P5\n{COLS} {ROWS}\n4095\n".encode() + pixels.astype(">u2").tobytes())
    files["PGM 16-bit"] = pgm
    for suffix in ("png", "tif"):
        path = folder / f"img.{suffix}"
        cv2.imwrite(str(path), pixels)
        files[f"{suffix.upper()} 16-bit"] = path
    baseline = timed(lambda: read_image(files["DICOM uncompressed"]), repeat)
    print(f"\nDecode {COLS}x{ROWS} 16-bit (median of {repeat}; ratio to uncompressed DICOM)")
    print(f"{'format':<22}{'ms':>9}{'ratio':>8}{'MB on disk':>12}")
    for name, path in files.items():
        ms = baseline if name == "DICOM uncompressed" else timed(lambda p=path: read_image(p), repeat)
        print(f"{name:<22}{ms:>9.1f}{ms / baseline:>8.2f}{path.stat().st_size / 1e6:>12.1f}")


def bench_ops(pixels: np.ndarray, repeat: int) -> None:
    image = Image(pixels, ImageMeta(bits_stored=12, laterality="L"))
    scale = VIEW_WIDTH / COLS
    full_frame, view_frame = initial_frame(image), initial_frame(image, scale)
    copy_full = timed(lambda: np.copy(pixels), repeat)
    copy_view = timed(lambda: np.copy(view_frame.pixels), repeat)
    view_shape = view_frame.pixels.shape
    print(f"\nOps on {COLS}x{ROWS} (full) and {view_shape[1]}x{view_shape[0]} (view, scale {scale:.3f});"
          f" ratio to np.copy of the same pixels ({copy_full:.2f} / {copy_view:.3f} ms)")
    print(f"{'op':<16}{'full ms':>10}{'x copy':>9}{'view ms':>10}{'x copy':>9}")
    for name, params in OPS:
        spec = PipelineSpec([{"op": name, "params": params}])
        reps = 1 if name in SLOW else repeat
        full = timed(lambda spec=spec: spec.run(full_frame), reps)
        view = timed(lambda spec=spec: spec.run(view_frame), reps)
        print(f"{name:<16}{full:>10.1f}{full / copy_full:>9.0f}{view:>10.1f}{view / copy_view:>9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-decode", action="store_true")
    args = parser.parse_args()
    print(f"OpenCV threads: {cv2.getNumThreads()}, CPU cores: {cv2.getNumberOfCPUs()}")
    pixels = mammogram_like()
    if not args.skip_decode:
        with tempfile.TemporaryDirectory() as folder:
            bench_decode(pixels, Path(folder), args.repeat)
    bench_ops(pixels, args.repeat)


if __name__ == "__main__":
    main()
