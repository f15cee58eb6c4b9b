"""A user's own images, one sub-folder per class, read lazily."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from deepnotes.data.datasets import LazyFileDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def read_image(path: Path) -> torch.Tensor:
    """Read an image file as a float tensor ``(C, H, W)`` in [0, 1] (matplotlib's PNG/JPEG reader)."""
    import matplotlib.image as mpimg

    try:
        arr = np.asarray(mpimg.imread(path))
    except Exception as exc:
        raise ValueError(f"cannot read image {str(path)!r}: {exc}") from exc
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def image_folder(root: str | os.PathLike, transform=None) -> LazyFileDataset:
    """Images under ``root/<class_name>/*`` as a lazy dataset; classes sorted by name.

    The returned dataset has ``classes`` (names) and ``class_to_idx``. Raises ``ValueError`` when
    ``root`` is missing or holds no class folder with images.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root {str(root)!r} is not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    paths, targets = [], []
    for idx, name in enumerate(classes):
        files = sorted(f for f in (root / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        targets += [idx] * len(files)
    if not paths:
        raise ValueError(f"root {str(root)!r} has no class sub-folders with images ({', '.join(IMAGE_SUFFIXES)})")
    ds = LazyFileDataset(paths, targets, reader=read_image, transform=transform)
    ds.classes = classes
    ds.class_to_idx = {c: i for i, c in enumerate(classes)}
    return ds


def resize_to(size: tuple[int, int]):
    """A transform resizing a ``(C, H, W)`` image to ``size`` (bilinear, antialiased)."""
    import torch.nn.functional as F

    def _resize(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x.unsqueeze(0), size=size, mode="bilinear", antialias=True, align_corners=False)[0]

    return _resize


def image_folder_splits(root: str | os.PathLike, seed: int = 0, size: tuple[int, int] = (32, 32), channels: int = 3):
    """A user's class-per-sub-folder images as train / val / test :class:`DataSplits` (70/15/15).

    Images are read lazily, converted to ``channels`` channels (grey ↔ RGB; an alpha channel is
    dropped) and resized to ``size`` so they can be batched.
    """
    from deepnotes.core.checks import check_choice
    from deepnotes.data.splits import DataSplits, split_dataset

    check_choice("channels", channels, (1, 3))
    resize = resize_to(tuple(size))

    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = x[:3]
        if channels == 1 and x.shape[0] == 3:
            x = x.mean(0, keepdim=True)
        elif channels == 3 and x.shape[0] == 1:
            x = x.expand(3, -1, -1)
        return resize(x)

    ds = image_folder(root, transform=prepare)
    train, val, test = split_dataset(ds, seed=seed)
    return DataSplits(train, val, test, in_shape=(channels, *size), num_classes=len(ds.classes))


def resolve_dataset(name: str):
    """The dataset factory for ``name``: a registered name, or ``folder:PATH`` for a user's images."""
    from functools import partial

    from deepnotes.core.registry import DATASETS

    if name.startswith("folder:"):
        return partial(image_folder_splits, name[len("folder:") :])
    return DATASETS.get(name)


def dataset_task(name: str) -> str:
    """The task of dataset ``name`` (its registry metadata; class folders are classification)."""
    from deepnotes.core.registry import DATASETS

    if name.startswith("folder:"):
        return "classification"
    return DATASETS.meta(name).get("task", "classification")
