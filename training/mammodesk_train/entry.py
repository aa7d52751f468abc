"""Console entry point. Checks for the `train` extra before importing anything
heavy, so a desktop-only install gets one clear line instead of a traceback."""

from __future__ import annotations

import argparse
import importlib.util
import sys

REQUIRED = ("torch", "onnx", "onnxscript")
INSTALL_HINT = ("install the training extra: pip install torch==2.13.0 (CPU build) "
                "then pip install 'mammodesk[train]'")


def missing_packages() -> list[str]:
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def main(argv: list[str] | None = None) -> int:
    missing = missing_packages()
    if missing:
        print(f"mammodesk-train: missing {', '.join(missing)}; {INSTALL_HINT}", file=sys.stderr)
        return 2
    from mammodesk_train import __version__

    parser = argparse.ArgumentParser(prog="mammodesk-train", description="Train, evaluate and export MammoDesk models.")
    parser.add_argument("--version", action="version", version=f"mammodesk-train {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help="print the training environment (torch, devices, exporters)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "env":
        return _env()
    return 2  # pragma: no cover - argparse rejects unknown commands


def _env() -> int:
    import onnx
    import torch

    cuda = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    print(f"torch {torch.__version__} (CUDA {'available: ' + ', '.join(devices) if cuda else 'not available'})")
    print(f"onnx {onnx.__version__}, threads {torch.get_num_threads()}")
    return 0
