"""Console entry point. Checks for the `train` extra before importing anything
heavy, so a desktop-only install gets one clear line instead of a traceback."""

from __future__ import annotations

import importlib.util
import sys

REQUIRED = ("torch", "onnx", "onnxscript", "sklearn")
INSTALL_HINT = ("install the training extra: pip install torch==2.13.0 (CPU build) "
                "then pip install 'mammodesk[train]'")


def missing_packages() -> list[str]:
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def main(argv: list[str] | None = None) -> int:
    missing = missing_packages()
    if missing:
        print(f"mammodesk-train: missing {', '.join(missing)}; {INSTALL_HINT}", file=sys.stderr)
        return 2
    from mammodesk_train.cli import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":  # torchrun -m mammodesk_train.entry fit ...
    raise SystemExit(main())
