"""``trainer_overhead``: our Trainer vs a plain hand-written PyTorch loop doing the same work."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from deepnotes.bench.api import BenchItem, bench_case
from deepnotes.data.builtin import digits
from deepnotes.models.basic import MLP
from deepnotes.train.trainer import Trainer


def _plain_loop(train, epochs: int, batch_size: int, seed: int) -> torch.nn.Module:
    """What a user would write by hand: same model, data, seed, loss and bookkeeping."""
    torch.manual_seed(seed)
    model = MLP((1, 8, 8), 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    for _ in range(epochs):
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in loader:
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(x)
            correct += int((out.argmax(1) == y).sum())
            seen += len(x)
    return model


def _trainer(train, epochs: int, batch_size: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = MLP((1, 8, 8), 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    Trainer(model, opt, train, epochs=epochs, batch_size=batch_size, seed=seed, progress=False).fit()
    return model


@bench_case(
    "trainer_overhead",
    reference="plain PyTorch loop",
    target=1.05,
    description="Trainer.fit vs a hand-written loop: MLP on digits, same seed, no run directory",
)
def trainer_overhead(quick: bool) -> list[BenchItem]:
    train = digits(seed=0).train
    epochs, batch_size = (2, 32) if quick else (5, 32)
    return [
        BenchItem(
            size=f"digits train {len(train)} × {epochs} epochs, batch {batch_size}",
            ours=lambda: _trainer(train, epochs, batch_size, 0),
            reference=lambda: _plain_loop(train, epochs, batch_size, 0),
            repeats=9,
        )
    ]
