"""Map-style datasets: eager (all in memory) and lazy (paths kept, files read on access)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from deepnotes.core.checks import as_tensor, check_same_length, check_type


class TensorDataset(Dataset):
    """An eager dataset: inputs and targets held in memory as tensors.

    Parameters
    ----------
    inputs : Tensor[N, ...] or array-like
    targets : Tensor[N, ...] or array-like
    transform : callable, optional
        Applied to each input in ``__getitem__`` (per-item preprocessing).
    """

    def __init__(self, inputs: Any, targets: Any, transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.inputs = as_tensor("inputs", inputs)
        self.targets = as_tensor("targets", targets)
        check_same_length(inputs=self.inputs, targets=self.targets)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int):
        x = self.inputs[index]
        if self.transform is not None:
            x = self.transform(x)
        return x, self.targets[index]


class LazyFileDataset(Dataset):
    """A lazy dataset: keeps file paths and reads each file only in ``__getitem__``.

    Parameters
    ----------
    paths : sequence of path-like
    targets : sequence
        One target per path (a class index, a box tensor, ...).
    reader : callable(path) -> Tensor
        Reads one file.
    transform : callable, optional
        Applied to what ``reader`` returns.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        targets: Sequence[Any],
        reader: Callable[[Path], Any],
        transform: Callable[[Any], Any] | None = None,
    ):
        check_type("paths", paths, (list, tuple))
        check_same_length(paths=paths, targets=targets)
        if not callable(reader):
            raise TypeError(f"reader must be callable, got {type(reader).__name__}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.paths = [Path(p) for p in paths]
        self.targets = list(targets)
        self.reader, self.transform = reader, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        x = self.reader(self.paths[index])
        if self.transform is not None:
            x = self.transform(x)
        return x, self.targets[index]
