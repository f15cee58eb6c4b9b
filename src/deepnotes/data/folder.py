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
