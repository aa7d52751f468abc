"""Fine-tunes the reader's last stages on the synthetic MIAS folder given, in one process or under torchrun
(gloo, CPU), and saves the tuned part's weights. With BatchNorm frozen, the global batch split evenly and no
shuffling, DDP must give the single-process result. Usage: finetune_worker.py MIAS_FOLDER WORK OUT.pt"""

import os
import sys
from pathlib import Path

import numpy as np
import torch

from mammodesk_train.engine import init_distributed_from_env, leave_distributed


def tuned_weights(folder: Path, work: Path, config) -> dict:
    """{"start": the tuned part before its fit, "tuned": after}."""
    from test_reader_finetune import TINY, small_data
    from mammodesk_train.reader.finetune import TunedPart, early_maps, tune
    from mammodesk_train.reader.fit import fit_head
    from mammodesk_train.reader.model import head_from_standardised

    records, reader, data = small_data(folder, work)
    maps = early_maps(records, TINY.spec(), reader, config, data, work / "early", progress=False)
    index = np.arange(len(data))
    setting = TINY.settings[1]
    head = fit_head(data, index, setting, TINY.schedule, 0)
    start = TunedPart(reader, config, head_from_standardised(head.net, head.mean, head.sd), setting.k).state_dict()
    return {"start": start, "tuned": tune(maps, data, index, reader, head, setting, config, seed=0).state_dict()}


if __name__ == "__main__":
    from test_reader_finetune import DDP_TUNE

    launched = init_distributed_from_env()
    rank = int(os.environ.get("RANK", 0))
    weights = tuned_weights(Path(sys.argv[1]), Path(sys.argv[2]) / f"rank{rank}", DDP_TUNE)
    if not launched or rank == 0:
        torch.save(weights, sys.argv[3])
    leave_distributed()
