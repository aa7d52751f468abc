"""A tiny fine-tuning reader run on the synthetic MIAS folder given, in one process or under torchrun (gloo,
CPU); the first rank writes OUT/report.json. Usage: reader_worker.py MIAS_FOLDER OUT"""

import dataclasses
import sys
from pathlib import Path

from mammodesk_train.engine import init_distributed_from_env, leave_distributed

if __name__ == "__main__":
    from test_reader_finetune import DDP_TUNE, TINY
    from mammodesk_train.reader import run as reader_run

    init_distributed_from_env()
    preset = dataclasses.replace(TINY, name="reader-tiny-tuned", finetune=dataclasses.replace(DDP_TUNE, epochs=1))
    try:
        reader_run.run(f"mias:{sys.argv[1]}", Path(sys.argv[2]), preset, folds=2, seed=0, second_seed=1)
    finally:
        leave_distributed()
