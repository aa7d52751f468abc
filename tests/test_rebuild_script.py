"""scripts/rebuild_models.sh --only NAME rebuilds one model with whichever mammodesk-train it is given."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "rebuild_models.sh"


def _run(tmp_path, *args):
    calls = tmp_path / "calls.txt"
    train = tmp_path / "bin" / "mammodesk-train"
    train.parent.mkdir()
    train.write_text(f"#!/bin/sh\necho \"$*\" >> {calls}\n")  # records what the script asks of it
    train.chmod(0o755)
    result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "MAMMODESK_TRAIN": str(train)})
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_only_one_model_is_rebuilt(tmp_path):
    result, calls = _run(tmp_path, "data/mias.tar.gz", "--only", "reader-lite0-hidden")
    assert result.returncode == 0, result.stderr
    assert calls == ["reader --data mias:data/mias.tar.gz --preset reader-lite0-hidden --out runs/reader-lite0-hidden "
                     "--resume --export resources/models/reader-lite0-hidden.onnx"]


def test_a_fit_family_gets_fit_explain_and_export_only(tmp_path):
    result, calls = _run(tmp_path, "--only", "vae-cnn-lite0-density")
    assert result.returncode == 0, result.stderr
    assert [c.split()[0] for c in calls] == ["fit", "explain", "export"]
    assert "--data mias:../shared/data/mias-dev.tar.gz" in calls[0] and "--task density" in calls[0]


def test_an_unknown_name_is_refused_with_the_known_ones(tmp_path):
    result, calls = _run(tmp_path, "--only", "reader-lite9")
    assert result.returncode == 2 and "known: reader-lite0-hidden" in result.stderr and calls == []
