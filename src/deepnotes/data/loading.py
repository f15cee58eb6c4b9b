"""Loader construction and collate functions."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from deepnotes.core.checks import check_int, check_type
from deepnotes.core.seeding import make_generator, worker_init_fn


def collate_variable(batch: list[tuple[Any, Any]]) -> tuple[torch.Tensor, list[Any]]:
    """Stack inputs (same shape) and keep targets as a list (e.g. boxes of different counts)."""
    if not batch:
        raise ValueError("batch must not be empty")
    xs, ys = zip(*batch)
    return torch.stack(list(xs)), list(ys)


def make_loader(
    dataset: Dataset,
    batch_size: int = 32,
    *,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    collate_fn=None,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """A ``DataLoader`` whose shuffling flows from its own seeded ``torch.Generator``.

    The generator is attached as ``loader.generator``; saving and restoring its state is what
    makes a resumed run bit-identical. Workers are reseeded per worker (python and numpy).
    """
    batch_size = check_int("batch_size", batch_size, min=1)
    num_workers = check_int("num_workers", num_workers, min=0)
    check_type("shuffle", shuffle, bool)
    check_type("drop_last", drop_last, bool)
    if len(dataset) == 0:
        raise ValueError("dataset must not be empty")
    kwargs: dict[str, Any] = {}
    if num_workers > 0 and prefetch_factor is not None:
        kwargs["prefetch_factor"] = check_int("prefetch_factor", prefetch_factor, min=1)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=make_generator(seed),
        num_workers=num_workers,
        worker_init_fn=worker_init_fn if num_workers > 0 else None,
        drop_last=drop_last,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        **kwargs,
    )


def collate_detection(batch: list[tuple[Any, Any]], stack: bool = True):
    """Detection batches: images stacked to Tensor[B, C, H, W] (``stack=True``, all one size) or
    kept as a list (as torchvision's detectors take them); targets always a list of dicts."""
    if not batch:
        raise ValueError("batch must not be empty")
    images, targets = zip(*batch)
    if not stack:
        return list(images), list(targets)
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        raise ValueError(f"images of different sizes {sorted(shapes)} cannot be stacked; use stack=False")
    return torch.stack(list(images)), list(targets)
