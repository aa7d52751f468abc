"""Build the frozen one-folder bundle and run its self-test offscreen."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.installer, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def _build_module():
    spec = importlib.util.spec_from_file_location("installer_build", ROOT / "installer" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    pytest.importorskip("PyInstaller")
    folder = tmp_path_factory.mktemp("bundle")
    return _build_module().build(folder / "dist", folder / "work", compresslevel=1)


def test_bundle_self_test_passes_offscreen(bundle):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("MAMMODESK_RESOURCES", None)
    result = subprocess.run([str(bundle / "mammodesk"), "--self-test"], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "read synthetic DICOM" in result.stdout and "JPEG 2000" in result.stdout
    assert "Qt platform plugin: platform offscreen" in result.stdout and "self-test passed" in result.stdout
    assert "decoded in a worker process" in result.stdout  # spawned workers work in the frozen build
    from mammodesk.inference import ModelLibrary

    models = ModelLibrary().entries
    assert f"bundled models: {len(models)}" in result.stdout
    assert result.stdout.count("CPUExecutionProvider") >= len(models)


def test_bundle_contents(bundle):
    version = subprocess.run([str(bundle / "mammodesk"), "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("mammodesk ")
    internal = bundle / "_internal"
    names = {p.name for p in internal.iterdir()}
    assert not {"torch", "mammodesk_train", "sklearn"} & names
    assert (internal / "resources" / "icons" / "mammodesk.svg").is_file()
    assert not list(internal.rglob("*providers_cuda*"))  # the default bundle is CPU-only
    assert (bundle / "mammodesk.desktop").read_text().count("Exec=mammodesk") == 1
    archives = list(bundle.parent.glob("mammodesk-*-linux-*.tar.gz"))
    assert len(archives) == 1
    with tarfile.open(archives[0]) as tar:
        assert any(name.endswith("/mammodesk") for name in tar.getnames())
