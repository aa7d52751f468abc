"""The fit loop: schedules, early stopping, determinism, resume, and DDP equivalence."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import TensorDataset  # noqa: E402

from mammodesk_train.engine import FitConfig, fit, lr_factor  # noqa: E402

HERE = Path(__file__).parent


def toy_data(n=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return TensorDataset(x, y)


def toy_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def ce(model, batch):
    x, y = batch
    return torch.nn.functional.cross_entropy(model(x), y)


def test_warmup_cosine_and_step_schedules():
    cosine = FitConfig(epochs=10, lr=1.0, schedule="cosine", warmup_epochs=2)
    assert [lr_factor(cosine, e) for e in (0, 1)] == pytest.approx([1 / 3, 2 / 3])
    assert lr_factor(cosine, 2) == pytest.approx(1.0)
    assert lr_factor(cosine, 6) == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 8)))
    step = FitConfig(epochs=10, schedule="step", step_size=3, gamma=0.5)
    assert [lr_factor(step, e) for e in (0, 2, 3, 6)] == [1, 1, 0.5, 0.25]


def test_training_learns_and_is_deterministic():
    config = FitConfig(epochs=15, batch_size=16, lr=0.05, seed=1)
    first, second = toy_model(), toy_model()
    history = fit(first, ce, toy_data(), config, progress=False).history
    fit(second, ce, toy_data(), config, progress=False)
    assert history[-1]["train_loss"] < history[0]["train_loss"] * 0.6
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_early_stopping_on_validation_loss():
    config = FitConfig(epochs=200, batch_size=16, lr=0.5, patience=3, seed=0)
    result = fit(toy_model(), ce, toy_data(), config, val=toy_data(seed=5), progress=False)
    assert result.stopped_early and len(result.history) < 200
    assert len(result.history) - result.best_epoch == 3


class Crash(Exception):
    pass


def crashing_after(batches):
    calls = {"n": 0}

    def loss(model, batch):
        calls["n"] += 1
        if calls["n"] > batches:
            raise Crash
        return ce(model, batch)

    return loss


def test_resume_matches_an_uninterrupted_run(tmp_path):
    config = FitConfig(epochs=8, batch_size=16, lr=0.05, schedule="cosine", seed=2)
    straight = toy_model()
    fit(straight, ce, toy_data(), config, progress=False)
    with pytest.raises(Crash):  # 4 batches per epoch: dies early in epoch 5
        fit(toy_model(), crashing_after(4 * 4 + 1), toy_data(), config, out_dir=tmp_path, name="run", progress=False)
    resumed = toy_model(seed=99)  # a different init: everything must come from the checkpoint
    result = fit(resumed, ce, toy_data(), config, out_dir=tmp_path, name="run", progress=False, resume=True)
    assert [h["epoch"] for h in result.history] == list(range(1, 9))
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)
    assert len((tmp_path / "run.jsonl").read_text().strip().splitlines()) == 8


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(tmp_path):
    single = tmp_path / "single.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    _run_worker([sys.executable, str(HERE / "ddp_worker.py"), str(single)], env)
    double = tmp_path / "ddp.pt"
    _run_worker([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 str(HERE / "ddp_worker.py"), str(double)], env)
    a = torch.load(single, weights_only=True)
    b = torch.load(double, weights_only=True)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def _run_worker(command: list[str], env: dict) -> None:
    """Run a training process; on failure the assertion carries its output (torchrun's and each rank's)."""
    done = subprocess.run(command, env=env, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, f"exit {done.returncode}\n--- stdout ---\n{done.stdout[-4000:]}\n" \
                                 f"--- stderr ---\n{done.stderr[-8000:]}"
