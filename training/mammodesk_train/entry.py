"""Console entry point. Checks for the `train` extra before importing anything
heavy, so a desktop-only install gets one clear line instead of a traceback."""

from __future__ import annotations

import importlib.util
import sys

REQUIRED = ("torch", "onnx", "onnxscript", "sklearn")
INSTALL_HINT = ("install the training extra: pip install torch==2.13.0 (CPU build) "
                "then pip install 'mammodesk[train]'")


COMMANDS = {  # name -> help; the parser (cli.py) takes them from here, so --help works without the extra
    "env": "print the training environment (torch, devices, exporters)",
    "list": "presets, tasks and data sources",
    "fit": "patient-level cross-validation against the plain baseline, then the shipped model on all data (any "
           "family's preset, the reader's included); with --export, its ONNX file",
    "pretrain": "self-supervised pretraining of a backbone on unlabelled images",
    "export": "export a run's shipped model to ONNX with its CV metrics and model card (any family)",
    "explain": "per CV fold: the share of Grad-CAM on the breast, and the pointing game on whole-breast scans "
               "(ROI models), through the app's engine",
    "evaluate": "run an exported model through the app's engine on labelled data",
    "reader": "fit with a reader preset (the whole-mammogram reader): nested patient-level CV against the "
              "plain baseline on two fold seeds, out-of-fold calibration and operating points per view, breast and "
              "exam, then (with --export) the ONNX file, shipped only when it beats the baseline",
    "catalogue": "write the app's catalogue of model families (resources/models/families.json) from the "
                 "registered families",
}
DESCRIPTION = "Train, evaluate and export MammoDesk models."


def light_help() -> str:
    """What `--help` says when the training packages are not installed."""
    lines = ["usage: mammodesk-train {" + ",".join(COMMANDS) + "} ...", "", DESCRIPTION, "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def missing_packages() -> list[str]:
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    missing = missing_packages()
    if missing and (not argv or argv[0] in ("-h", "--help")):
        print(light_help())
        print(f"\nNot installed here: {', '.join(missing)}; {INSTALL_HINT}")
        return 0
    if missing:
        print(f"mammodesk-train: missing {', '.join(missing)}; {INSTALL_HINT}", file=sys.stderr)
        return 2
    from mammodesk_train.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":  # torchrun -m mammodesk_train.entry fit ...
    raise SystemExit(main())
