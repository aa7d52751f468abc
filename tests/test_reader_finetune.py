"""Fine-tuning the reader's trunk (`reader/finetune.py`): the frozen stages' maps are read once from disk, only
the last stages and the head learn, the tuned features of an untrained part are the frozen trunk's, an outer
fold's test images never reach its fit, and two processes under torchrun (gloo) train as one."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from train_fixtures import mias_folder, run_and_ship  # noqa: E402

from mammodesk_train.reader import finetune  # noqa: E402
from mammodesk_train.reader import fit as fitting  # noqa: E402
from mammodesk_train.reader import run as reader_run  # noqa: E402
from mammodesk_train.reader.model import STAGES, WholeImageReader  # noqa: E402
from mammodesk_train.splits import patient_kfold  # noqa: E402

HERE = Path(__file__).resolve().parent
TINY = dataclasses.replace(reader_run.PRESETS["reader-lite0"], name="reader-tiny", spacing_mm=0.1, height=128,
                           width=96, settings=(fitting.Setting(2, 1e-3, 0.0), fitting.Setting(4, 1e-3, 1.0)),
                           schedule=fitting.Schedule(epochs=3), flip_reading=True)
SMALL_TUNE = finetune.FineTune(stages=2, epochs=3, lr=1e-3, batch=4, shuffle=False)
# SGD for the comparison across process counts: Adam's first steps are about lr * sign(gradient), so a
# gradient within rounding of zero moves a weight by lr one way or the other
DDP_TUNE = dataclasses.replace(SMALL_TUNE, optimizer="sgd", lr=1e-3)


def small_data(folder: Path, work: Path):
    from mammodesk_train.data.sources import load_source
    from mammodesk_train.reader.data import prepare

    torch.manual_seed(0)
    records = load_source(f"mias:{folder}", announce=False)
    reader = WholeImageReader(reader_run.build_trunk("lite0"), k=1, flip_reading=True)
    data = prepare(records, TINY.spec(), reader, spacing_mm=TINY.spacing_mm, flip_reading=True, progress=False,
                   cache_root=work / "cache")
    return records, reader, data


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    folder = mias_folder(root, lesions_on_spots=True, normal_women=(2, 4, 6, 8))
    records, reader, data = small_data(folder, root / "work")
    maps = finetune.early_maps(records, TINY.spec(), reader, SMALL_TUNE, data, root / "work" / "early",
                               progress=False)
    return root, folder, records, reader, data, maps


def test_an_untrained_tuned_part_reads_what_the_frozen_trunk_reads(small):
    """Early maps on disk (float16) through the copied last stages give the cached features of the whole trunk."""
    _, _, _, reader, data, maps = small
    head = fitting.fit_head(data, np.arange(len(data)), TINY.settings[0], TINY.schedule, 0)
    from mammodesk_train.reader.model import head_from_standardised

    part = finetune.TunedPart(reader, SMALL_TUNE, head_from_standardised(head.net, head.mean, head.sd), 2).eval()
    upright, flipped = finetune.tuned_features(part, maps)
    index = np.arange(len(data))
    scale = float(data.features[index].abs().max())
    assert upright.shape == data.features[index].shape and flipped.shape == data.flipped[index].shape
    assert float((upright - data.features[index]).abs().max()) < 0.02 * scale  # float16 maps in between
    assert float((flipped - data.flipped[index]).abs().max()) < 0.02 * scale


def test_only_the_last_stages_and_the_head_learn(small):
    root, _, _, reader, data, maps = small
    index = np.arange(len(data))
    frozen_before = {k: v.clone() for k, v in reader.state_dict().items()}
    head = fitting.fit_head(data, index, TINY.settings[1], TINY.schedule, 0)
    part = finetune.tune(maps, data, index, reader, head, TINY.settings[1], SMALL_TUNE, seed=0, out=root / "fit")
    start = finetune.TunedPart(reader, SMALL_TUNE, finetune.head_from_standardised(head.net, head.mean, head.sd), 4)
    assert all(torch.equal(v, reader.state_dict()[k]) for k, v in frozen_before.items())  # the trunk untouched
    learnt = {k for k, v in part.state_dict().items() if not torch.equal(v, start.state_dict()[k])}
    assert any(k.startswith("stages.") for k in learnt) and any(k.startswith("head.") for k in learnt)
    assert not any("running_" in k for k in learnt)  # BatchNorm statistics frozen
    losses = [json.loads(line)["train_loss"] for line in (root / "fit" / "finetune.jsonl").read_text().splitlines()]
    assert len(losses) == SMALL_TUNE.epochs and losses[-1] < losses[0]
    replaced = finetune.into_reader(WholeImageReader(reader_run.build_trunk("lite0"), k=4), part, SMALL_TUNE)
    assert torch.equal(replaced.stages[STAGES - 1][0].project[0].weight, part.stages[-1][0].project[0].weight)


def test_a_fold_is_tuned_on_its_training_images_only_and_kept(small, monkeypatch):
    root, _, _, reader, data, maps = small
    train = np.arange(len(data))[: len(data) // 2]
    seen = []
    original = finetune._Rows.__init__

    def recording(self, maps_, data_, index):
        seen.append(set(index.tolist()))
        original(self, maps_, data_, index)

    monkeypatch.setattr(finetune._Rows, "__init__", recording)
    tuned, _ = finetune.tuned_data(data, maps, reader, train, list(TINY.settings), TINY.schedule, SMALL_TUNE, 0,
                                   keep=root / "kept")
    assert seen == [set(train.tolist())]
    assert tuned.features.shape == data.features[np.arange(len(data))].shape and tuned.provenance != data.provenance
    again, _ = finetune.tuned_data(data, maps, reader, train, list(TINY.settings), TINY.schedule, SMALL_TUNE, 0,
                                   keep=root / "kept")
    every = np.arange(len(data))
    assert len(seen) == 1 and torch.equal(again.features[every], tuned.features[every])  # kept: not fitted again
    from mammodesk_train.reader.cache import Rows

    assert isinstance(tuned.features, Rows) and tuned.features.path.parent == root / "kept"  # on disk, not in memory


def test_two_processes_under_torchrun_tune_as_one(small, tmp_path):
    _, folder, *_ = small
    # one thread per process, as torchrun sets: the frozen pass's head (fitted with Adam) starts both the same
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    single, double = tmp_path / "single.pt", tmp_path / "ddp.pt"
    _run([sys.executable, str(HERE / "finetune_worker.py"), str(folder), str(tmp_path / "one"), str(single)], env)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          str(HERE / "finetune_worker.py"), str(folder), str(tmp_path / "two"), str(double)], env)
    a, b = torch.load(single, weights_only=True), torch.load(double, weights_only=True)
    for key, start in a["start"].items():  # the same start; what each learnt, the same to 1 % of its size
        assert torch.equal(start, b["start"][key]), key
        moved, moved_too = a["tuned"][key] - start, b["tuned"][key] - start
        torch.testing.assert_close(moved_too, moved, rtol=0, atol=0.01 * float(moved.abs().max()) + 1e-9)
    learnt = max(float((a["tuned"][k] - a["start"][k]).abs().max()) for k in a["start"] if k.startswith("stages."))
    assert learnt > 1e-3  # the trunk did learn, far beyond the tolerance


def _run(command: list[str], env: dict) -> None:
    done = subprocess.run(command, env=env, timeout=600, capture_output=True, text=True)
    assert done.returncode == 0, f"exit {done.returncode}\n--- stdout ---\n{done.stdout[-4000:]}\n" \
                                 f"--- stderr ---\n{done.stderr[-8000:]}"


def test_a_fine_tuned_reader_run_tunes_each_fold_on_its_training_images_and_exports(small, tmp_path, monkeypatch):
    """The whole run with a fine-tuning preset: every tuned trunk learns from one outer training fold (or, for
    the shipped model, from every image), the report and the export are as the frozen reader's, and the app
    runs the exported file."""
    from mammodesk.inference import ModelRunner
    from mammodesk.io import read_image

    folder = small[1]
    preset = dataclasses.replace(TINY, name="reader-tiny-tuned", finetune=dataclasses.replace(SMALL_TUNE, epochs=1))
    tuned_on = []
    original = finetune._Rows.__init__
    monkeypatch.setattr(finetune._Rows, "__init__",
                        lambda self, maps, data, index: (tuned_on.append(frozenset(index.tolist())),
                                                         original(self, maps, data, index))[1])
    report = run_and_ship(f"mias:{folder}", tmp_path / "run", preset, tmp_path / "tuned.onnx", folds=2, seed=0,
                          second_seed=1)
    data = small[4]
    everything = frozenset(range(len(data)))
    trains = {frozenset(f.train.tolist()) for s in (0, 1) for f in patient_kfold(data.y, data.groups, 2, s)}
    assert Counter(tuned_on) == Counter([*trains, everything])  # four outer training folds and the shipped model, once each
    assert "fine-tuned" in report["description"] and report["reported"]["comparison"]["model"]
    runner = ModelRunner(tmp_path / "tuned.onnx", prefer_gpu=False)
    image = read_image(sorted(folder.glob("*.pgm"))[0])
    assert 0.0 <= runner.predict(image).probabilities[1] <= 1.0


def test_a_fine_tuning_reader_run_under_torchrun_gives_the_single_process_report(small, tmp_path):
    """Two ranks (gloo) share each fine-tuning fit and compute the rest alike; the first writes the report,
    which is the one process's, up to rounding."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    _run([sys.executable, str(HERE / "reader_worker.py"), str(small[1]), str(tmp_path / "one")], env)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          str(HERE / "reader_worker.py"), str(small[1]), str(tmp_path / "two")], env)
    one, two = (json.loads((tmp_path / name / "report.json").read_text()) for name in ("one", "two"))
    for part in ("reported", "second_seed"):
        assert [f["chosen"] for f in one[part]["folds"]] == [f["chosen"] for f in two[part]["folds"]]
        np.testing.assert_allclose(one[part]["oof_probability"], two[part]["oof_probability"], atol=1e-4)
    np.testing.assert_allclose(one["shipped_oof_probability"], two["shipped_oof_probability"], atol=1e-4)
