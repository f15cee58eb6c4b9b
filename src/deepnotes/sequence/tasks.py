"""Sequence tasks that probe long-term memory, registered as datasets.

* ``adding`` (Hochreiter & Schmidhuber, 1997; the form of Le et al., 2015): two channels per step —
  a value ``U(0, 1)`` and a marker that is 1 at exactly two steps, one in each half of the sequence.
  Target: the sum of the two marked values (regression). Predicting the mean 1 scores MSE ≈ 1/6.
* ``copy`` (Arjovsky et al., 2016): ``S`` symbols from ``1..K``, ``delay`` blanks, a delimiter
  ``K + 1``, then ``S − 1`` blanks during which the symbols must be recalled. Inputs are one-hot
  over ``K + 2`` classes; the target has one class per step: blank (0) everywhere except the last
  ``S`` steps, which hold the ``S`` symbols. Emitting blanks and then guessing scores a mean
  cross-entropy of ``S·log K / (2S + delay)`` per step.
* ``seq_digits``: scikit-learn's bundled 8×8 digits read row by row: 8 time steps of 8 features.

Every input is batch-first: Tensor[N, T, F].
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_int
from deepnotes.core.registry import DATASETS
from deepnotes.core.seeding import make_generator
from deepnotes.data.datasets import TensorDataset
from deepnotes.data.splits import DataSplits, split_dataset


def make_adding(n: int = 1000, seq_len: int = 50, seed: int = 0, dtype: torch.dtype = torch.float32):
    """Samples of the adding problem.

    Returns
    -------
    x : Tensor[n, seq_len, 2] — column 0 values in [0, 1), column 1 the two markers
    y : Tensor[n, 1] — the sum of the two marked values
    """
    n = check_int("n", n, min=1)
    seq_len = check_int("seq_len", seq_len, min=2)
    g = make_generator(seed)
    values = torch.rand(n, seq_len, generator=g, dtype=dtype)
    half = seq_len // 2
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, seq_len, (n,), generator=g)
    marks = torch.zeros(n, seq_len, dtype=dtype)
    rows = torch.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    y = (values * marks).sum(dim=1, keepdim=True)
    return torch.stack([values, marks], dim=2), y


def make_copy(n: int = 1000, num_symbols: int = 10, delay: int = 20, alphabet: int = 8, seed: int = 0):
    """Samples of the copy task.

    Class ``0`` is the blank, ``1..alphabet`` the symbols, ``alphabet + 1`` the delimiter.

    Returns
    -------
    x : Tensor[n, L, alphabet + 2] — one-hot float32, ``L = 2·num_symbols + delay``
    y : Tensor[n, L] int64 — the class to emit at each step: 0 except ``y[:, -num_symbols:]``,
        the symbols of ``x[:, :num_symbols]``
    """
    n = check_int("n", n, min=1)
    s = check_int("num_symbols", num_symbols, min=1)
    delay = check_int("delay", delay, min=0)
    k = check_int("alphabet", alphabet, min=1)
    g = make_generator(seed)
    symbols = torch.randint(1, k + 1, (n, s), generator=g)
    tokens = torch.zeros(n, 2 * s + delay, dtype=torch.int64)
    tokens[:, :s] = symbols
    tokens[:, s + delay] = k + 1  # delimiter: "start recalling now"
    x = torch.nn.functional.one_hot(tokens, k + 2).float()
    y = torch.zeros_like(tokens)
    y[:, -s:] = symbols
    return x, y


def make_seq_digits(dtype: torch.dtype = torch.float32):
    """scikit-learn's digits as sequences: x Tensor[1797, 8, 8] (rows as time steps, in [0, 1]), y Tensor[1797]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=dtype) / 16.0
    return x, torch.tensor(bunch.target, dtype=torch.int64)


@DATASETS.register("adding", task="regression",
                   description="adding problem: sum of the two marked values in a sequence (T=50, 2 features)")
def adding(seed: int = 0, n: int = 4000, seq_len: int = 50) -> DataSplits:
    """The adding problem as train/val/test splits; ``in_shape=(seq_len, 2)``, output size 1."""
    x, y = make_adding(n, seq_len, seed)
    train, val, test = split_dataset(TensorDataset(x, y), seed=seed)
    return DataSplits(train, val, test, in_shape=(seq_len, 2), num_classes=1, task="regression")


@DATASETS.register("copy", task="classification",
                   description="copy task: recall 10 symbols after a delay of 20; one target per step (use a *_seq model)")
def copy_task(seed: int = 0, n: int = 4000, num_symbols: int = 10, delay: int = 20, alphabet: int = 8) -> DataSplits:
    """The copy task; ``in_shape=(L, K + 2)``, ``num_classes=K + 2``, targets Tensor[N, L].

    A model must emit logits Tensor[N, K + 2, L], one prediction per step, as the registered
    ``rnn_seq`` / ``lstm_seq`` / ``gru_seq`` / ``tcn_seq`` models do; ``cross_entropy`` accepts
    that layout directly.
    """
    x, y = make_copy(n, num_symbols, delay, alphabet, seed)
    train, val, test = split_dataset(TensorDataset(x, y), seed=seed)
    return DataSplits(train, val, test, in_shape=tuple(x.shape[1:]), num_classes=alphabet + 2,
                      task="classification")


@DATASETS.register("seq_digits", task="classification",
                   description="sklearn's 8x8 digits read row by row: 8 time steps of 8 features, 10 classes")
def seq_digits(seed: int = 0) -> DataSplits:
    """Row-by-row digits; ``in_shape=(8, 8)``, 10 classes, split 70/15/15 with ``seed``."""
    x, y = make_seq_digits()
    train, val, test = split_dataset(TensorDataset(x, y), seed=seed)
    return DataSplits(train, val, test, in_shape=(8, 8), num_classes=10, task="classification")
