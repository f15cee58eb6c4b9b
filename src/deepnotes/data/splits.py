"""The object every registered dataset factory returns, and a seeded split helper."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Subset

from deepnotes.core.checks import check_float, check_int, check_type
from deepnotes.core.seeding import make_generator


@dataclass
class DataSplits:
    """Train / validation / test datasets plus what a model needs to know about them.

    in_shape : shape of one input, e.g. ``(1, 8, 8)`` for a digit image or ``(1,)`` for a scalar
    num_classes : number of classes (classification) or output size (regression)
    task : ``"classification"`` (targets are class indices) or ``"regression"`` (float targets)
    """

    train: Dataset
    val: Dataset
    test: Dataset
    in_shape: tuple[int, ...]
    num_classes: int
    task: str = "classification"


def split_dataset(
    dataset: Dataset, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> tuple[Subset, Subset, Subset]:
    """Seeded random split into train / val / test subsets by ``fractions`` (summing to 1).

    Sizes are ``floor(f * n)`` for val and test; train gets the rest, so no sample is lost.
    """
    check_type("fractions", fractions, (tuple, list))
    if len(fractions) != 3:
        raise ValueError(f"fractions must have 3 entries (train, val, test), got {len(fractions)}")
    fr = [check_float(f"fractions[{i}]", f, min=0.0, max=1.0) for i, f in enumerate(fractions)]
    if abs(sum(fr) - 1.0) > 1e-9:
        raise ValueError(f"fractions must sum to 1, got {sum(fr)}")
    seed = check_int("seed", seed, min=0)
    n = len(dataset)
    n_val, n_test = int(fr[1] * n), int(fr[2] * n)
    n_train = n - n_val - n_test
    perm = torch.randperm(n, generator=make_generator(seed)).tolist()
    return (
        Subset(dataset, perm[:n_train]),
        Subset(dataset, perm[n_train : n_train + n_val]),
        Subset(dataset, perm[n_train + n_val :]),
    )
