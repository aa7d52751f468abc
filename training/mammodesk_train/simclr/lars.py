"""LARS (You et al. 2017) as SimCLR uses it: SGD with momentum whose step for
each weight tensor is scaled by the trust ratio eta * ||w|| / ||g + wd * w||;
biases and BatchNorm parameters (1-D tensors) get neither weight decay nor the
trust ratio. With the linear warm-up + cosine schedule of the paper."""

from __future__ import annotations

import math

import torch


class LARS(torch.optim.Optimizer):
    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 1e-6,
                 trust_coefficient: float = 0.001, eps: float = 1e-9):
        if lr <= 0:
            raise ValueError(f"LARS needs a positive learning rate, got {lr}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                                  "trust_coefficient": trust_coefficient, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad
                if p.dim() > 1:  # weights: decay and adapt; biases and BN: plain momentum SGD
                    update = update.add(p, alpha=group["weight_decay"])
                    w_norm, u_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(update)
                    trust = torch.where((w_norm > 0) & (u_norm > 0),
                                        group["trust_coefficient"] * w_norm / (u_norm + group["eps"]),
                                        torch.ones_like(w_norm))
                    update = update * trust
                buffer = self.state[p].get("momentum")
                if buffer is None:
                    buffer = self.state[p]["momentum"] = torch.clone(update).detach()
                else:
                    buffer.mul_(group["momentum"]).add_(update)
                p.add_(buffer, alpha=-group["lr"])
        return loss


def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
