"""The README opens with the two set-up commands, and CI runs the second one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_launch_and_test_commands():
    launch, test = _readme_commands()[:2]
    assert "pip install" in launch and "mammodesk --demo" in launch
    assert "pip install torch==2.13.0" in test and '".[train,test]"' in test and "pytest" in test


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci_lines


def test_the_archive_tests_skip_naming_the_readme_line_that_runs_them():
    from orthanc_server import INSTALL

    assert f"`{INSTALL}`" in (ROOT / "README.md").read_text()


def test_every_file_architecture_names_exists():
    """ARCHITECTURE.md's map and recipes name real files: a path in backticks is found under the repository,
    the app, the training package or the app's feature floors (`<name>` stands for any file there)."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    bases = [ROOT, ROOT / "mammodesk", ROOT / "training" / "mammodesk_train", ROOT / "mammodesk" / "state",
             ROOT / "mammodesk" / "inference", ROOT / "mammodesk" / "io"]
    missing = []
    for name in sorted(set(re.findall(r"`([\w./<>-]+(?:\.py|\.json|/))`", text))):
        if "<" in name:
            folder = name.split("<", 1)[0]
            found = any((base / folder).is_dir() for base in bases)
        else:
            found = any((base / name).exists() for base in bases)
        if not found:
            missing.append(name)
    assert missing == []
