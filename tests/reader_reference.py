"""The reader's head fit written plainly, one setting at a time, as the reference that `fit.fit_heads` (every
setting of a fold fitted together, rows streamed from disk) must equal, and the baseline its benchmark is timed
against."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mammodesk_train.reader import fit as fitting


def synthetic_reader_data(views: int, cells: int, channels: int, *, breast_share: float, lift: float,
                          finding_share: float, seed: int, map_shape: tuple[int, int] | None = None):
    """Trunk features of `views` images (a third abnormal, their breast cells lifted by `lift`), read upright and
    flipped, with breast and finding cells drawn at the given shares."""
    from mammodesk_train.reader.data import ReaderData

    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(views, cells, channels, generator=generator)
    breast = torch.rand(views, cells, generator=generator) < breast_share
    y = np.arange(views) % 3 == 0
    features[y] += lift * breast[y, :, None]
    finding = breast & (torch.rand(views, cells, generator=generator) < finding_share) & torch.as_tensor(y)[:, None]
    return ReaderData([str(i) for i in range(views)], y.astype(int), np.arange(views) // 2, features, breast,
                      finding, finding.any(1).numpy(), [[] for _ in range(views)], np.zeros((views, 1)),
                      map_shape or (1, cells), [None] * views, np.zeros((views, 2)), [None] * views, [None] * views,
                      8.0, features.flip(1).clone())


def fit_one_head(data, index, setting, schedule, seed, all_cells: bool = False) -> fitting.Head:
    """One setting's head fitted on its own, its net run as a module on the cells the losses see (breast and
    finding cells; the others never reach a loss) with its own dropout. `all_cells`: on every cell of the
    map, as the reader's heads were fitted before (the benchmark's baseline; another dropout stream)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        x = data.features[index]
        breast, finding, y = data.breast[index], data.finding[index], data.y[index]
        if data.flipped is not None:
            x = torch.cat([x, data.flipped[index]])
            breast, finding, y = torch.cat([breast] * 2), torch.cat([finding] * 2), np.concatenate([y] * 2)
        y = torch.as_tensor(y, dtype=torch.float32)
        mean, sd = x.mean(dim=(0, 1)), x.std(dim=(0, 1)) + 1e-3
        x = (x - mean) / sd
        known = breast & (y[:, None] == 0) | finding
        net = fitting.patch_classifier(x.shape[2], setting.hidden).train()
        optimiser = torch.optim.Adam(net.parameters(), lr=schedule.lr, weight_decay=setting.weight_decay)
        balance = (y == 0).sum() / y.sum()
        for _ in range(schedule.epochs):
            for batch in torch.randperm(len(y), generator=generator).split(schedule.batch):
                if all_cells:
                    logits = net(x[batch])[..., 0]
                else:
                    used = (breast | finding)[batch]
                    logits = torch.full(used.shape, fitting.NOT_BREAST).masked_scatter(used,
                                                                                      net(x[batch][used])[:, 0])
                loss = F.binary_cross_entropy_with_logits(fitting.pool(logits, breast[batch], setting.k), y[batch],
                                                          pos_weight=balance)
                cells = known[batch]
                if setting.cell_weight > 0 and cells.any():
                    loss = loss + setting.cell_weight * F.binary_cross_entropy_with_logits(
                        logits[cells], finding[batch][cells].float(), pos_weight=torch.tensor(fitting.FINDING_WEIGHT))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    return fitting.Head(net.eval(), mean, sd, setting.k)
