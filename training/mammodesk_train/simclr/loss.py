"""NT-Xent, the normalised-temperature cross entropy of SimCLR (Chen et al.
2020): for 2N views, each view's positive is the other view of its image and
the 2N - 2 remaining views are its negatives, on cosine similarity / t."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"two N x D projections expected, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)
