"""Embedded datasets that need no network: ``digits`` and ``linear``.

Each factory takes ``seed`` (for the split and any sampling) and returns :class:`DataSplits`.
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_float, check_int
from deepnotes.core.registry import DATASETS
from deepnotes.core.seeding import make_generator
from deepnotes.data.datasets import TensorDataset
from deepnotes.data.splits import DataSplits, split_dataset


@DATASETS.register("digits", task="classification", description="scikit-learn's bundled 8x8 digits, 1797 images, 10 classes")
def digits(seed: int = 0) -> DataSplits:
    """scikit-learn's 1797 bundled 8×8 digit images, pixels scaled to [0, 1], shape (1, 8, 8).

    Split 70 / 15 / 15 with ``seed``.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    train, val, test = split_dataset(TensorDataset(x, y), seed=seed)
    return DataSplits(train, val, test, in_shape=(1, 8, 8), num_classes=10, task="classification")


def make_linear(
    n: int = 200, w: float = 2.0, b: float = 1.0, noise: float = 0.5, x_range: float = 3.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples of ``y = w·x + b + ε`` with ``x ~ U(-x_range, x_range)``, ``ε ~ N(0, noise²)``.

    Returns ``x`` and ``y`` as float64 tensors of shape ``(n,)``.
    """
    n = check_int("n", n, min=1)
    noise = check_float("noise", noise, min=0.0)
    x_range = check_float("x_range", x_range, min=0.0, min_inclusive=False)
    g = make_generator(seed)
    x = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * x_range
    y = check_float("w", w) * x + check_float("b", b) + noise * torch.randn(n, generator=g, dtype=torch.float64)
    return x, y


@DATASETS.register("linear", task="regression", description="synthetic y = 2x + 1 + N(0, 0.5²), 1000 samples")
def linear(seed: int = 0, n: int = 1000, w: float = 2.0, b: float = 1.0, noise: float = 0.5) -> DataSplits:
    """Synthetic regression data ``y = w·x + b + noise`` (float32, inputs of shape (1,))."""
    x, y = make_linear(n=n, w=w, b=b, noise=noise, seed=seed)
    ds = TensorDataset(x.float().unsqueeze(1), y.float().unsqueeze(1))
    train, val, test = split_dataset(ds, seed=seed)
    return DataSplits(train, val, test, in_shape=(1,), num_classes=1, task="regression")
