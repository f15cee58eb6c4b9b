"""A few Adam steps of a detector on random batches of ``shapes`` items: the small training loop
that chapter-17 claims comparing variants of one detector share (no claims here)."""

from __future__ import annotations

import torch

from deepnotes.train.tasks import get_task


def train_steps(model: torch.nn.Module, items: list, steps: int, batch: int, seed: int, lr: float,
                cosine: bool = False) -> torch.nn.Module:
    """Train ``model`` for ``steps`` Adam steps on batches of ``batch`` items drawn with a generator
    seeded by ``seed`` (the same batches for every model given the same seed), cosine-annealed if
    asked; the global generator (training sizes, augmentations) is seeded with ``seed + 1``.
    Returns the model in eval mode."""
    task = get_task("detect")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cosine else None
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed + 1)
    for _ in range(steps):
        data = task.collate([items[int(i)] for i in torch.randint(0, len(items), (batch,), generator=g)])
        loss = sum(model(*data).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return model.eval()
