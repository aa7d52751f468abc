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
    full = " ".join(build_parser().format_help().split())
    assert all(" ".join(text.split())[:40] in full for text in entry.COMMANDS.values())
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


def test_no_display_is_one_clear_line_not_a_qt_abort():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "mammodesk"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no display is available" in done.stderr and "Abort" not in done.stderr


def test_missing_qt_libraries_are_named_from_ldd():
    import os
    import shutil
    import subprocess
    import sys
    import time

    from mammodesk.qt.platform import debian_package, missing_libraries, xcb_plugin

    assert debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libEGL.so.1") == "libegl1"
    missing = missing_libraries(xcb_plugin())
    env = {**{k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}, "DISPLAY": ":97"}  # no server there
    done = subprocess.run([sys.executable, "-m", "mammodesk"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "does not answer" in done.stderr  # a display nobody serves: one line
    env["DISPLAY"] = ":96"
    server = subprocess.Popen(["Xvfb", ":96", "-screen", "0", "640x480x24"], stderr=subprocess.DEVNULL) \
        if shutil.which("Xvfb") else None
    try:
        if server is not None:
            time.sleep(1.0)
        done = subprocess.run([sys.executable, "-m", "mammodesk", "--self-test"], env=env, capture_output=True,
                              text=True, timeout=120)
    finally:
        if server is not None:
            server.terminate()
    if server is not None and missing:  # what this machine lacks, named exactly, with the packages that bring it
        assert done.returncode == 1 and all(f"{name}" in done.stdout for name in missing)
        assert all(debian_package(name) in done.stdout for name in missing)
    elif server is not None:  # the plugin loads: the self-test opened the real platform
        assert "platform xcb opens here" in done.stdout
