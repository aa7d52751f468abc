"""Trains the toy model of test_train_engine.py, in one process or under torchrun
(gloo, CPU), and saves the final weights. Without BatchNorm and with the global
batch split evenly, DDP must give the single-process result."""

import sys

import torch
import torch.distributed as dist

from test_train_engine import ce, toy_data, toy_model
from mammodesk_train.engine import FitConfig, fit, leave_distributed

if __name__ == "__main__":
    launched = "RANK" in __import__("os").environ
    if launched:
        dist.init_process_group("gloo")
    model = toy_model()
    # shuffle off: DistributedSampler and a single-process loader then see the same global batches
    fit(model, ce, toy_data(), FitConfig(epochs=5, batch_size=16, lr=0.1, seed=0, shuffle=False),
        device=torch.device("cpu"), progress=False)
    if not launched or dist.get_rank() == 0:
        torch.save(model.state_dict(), sys.argv[1])
    leave_distributed()
