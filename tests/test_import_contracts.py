"""Layer rules (DESIGN.md): the core imports neither Qt nor torch nor the
training package; only mammodesk.qt imports PySide6/pyqtgraph."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import mammodesk

ROOT = Path(__file__).resolve().parent.parent
NOT_CORE = {"qt", "cli", "__main__"}  # the Qt layer and the launcher that starts it


def _contracts():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def test_import_linter_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is part of the test extra"
    result = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def test_every_top_level_module_is_classified():
    """A new top-level module must be listed in the core contract or be part of the Qt/launcher side."""
    core = set(_contracts()[0]["source_modules"])
    for info in pkgutil.iter_modules(mammodesk.__path__):
        if info.name in NOT_CORE:
            continue
        assert f"mammodesk.{info.name}" in core, f"mammodesk.{info.name} is in no import contract"


def test_core_import_pulls_in_no_qt_or_torch():
    code = ("import sys, mammodesk.io, mammodesk.preprocessing, mammodesk.annotations; "
            "bad = [m for m in ('PySide6', 'pyqtgraph', 'torch', 'mammodesk_train') if m in sys.modules]; "
            "print(bad); raise SystemExit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
