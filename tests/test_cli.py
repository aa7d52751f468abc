"""Command lines: `mammodesk info`, `--version`, and `mammodesk-train` without its extra."""

from __future__ import annotations

import subprocess
import sys

from dicom_factory import make_dataset, phantom, write

from mammodesk import __version__
from mammodesk.cli import main


def test_version():
    result = subprocess.run([sys.executable, "-m", "mammodesk", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"mammodesk {__version__}"


def test_info_reports_and_fails_per_file(tmp_path, capsys):
    good = write(make_dataset(phantom(bits=12), bits_stored=12), tmp_path / "good.dcm")
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(good.read_bytes()[:300])
    assert main(["info", str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    assert "good.dcm: DICOM 80x96 uint16 (12-bit), laterality L, view CC, spacing 0.070 mm" in captured.out
    assert "bad.dcm: ERROR" in captured.err
    assert "Doe" not in captured.out + captured.err


def test_train_entry_without_extra_says_what_to_install(monkeypatch, capsys):
    from mammodesk_train import entry

    monkeypatch.setattr(entry, "missing_packages", lambda: ["torch", "onnx"])
    assert entry.main(["env"]) == 2
    err = capsys.readouterr().err
    assert "missing torch, onnx" in err and "pip install torch==2.13.0" in err


def test_train_entry_env(capsys):
    from mammodesk_train import entry

    assert entry.main(["env"]) == 0
    assert "torch " in capsys.readouterr().out


def test_train_help_works_without_the_extra(monkeypatch, capsys):
    import subprocess
    import sys

    from mammodesk_train import entry
    from mammodesk_train.cli import build_parser

    monkeypatch.setattr(entry, "missing_packages", lambda: ["torch", "onnx"])
    assert entry.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in entry.COMMANDS) and "pip install torch==2.13.0" in out
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert set(commands) == set(entry.COMMANDS)  # one list of commands, for both helps
    probe = "import sys, mammodesk_train.entry; print('torch' in sys.modules or 'sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"


def test_predict_help_lists_the_bundled_models(capsys):
    import pytest

    from mammodesk.cli import main
    from mammodesk.resources import resources_dir

    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = capsys.readouterr().out
    bundled = sorted(p.stem for p in (resources_dir() / "models").glob("*.onnx"))
    assert bundled and all(name in out for name in bundled)
