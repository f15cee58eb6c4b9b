"""A user's own images, one sub-folder per class, read lazily."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from deepnotes.data.datasets import LazyFileDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def _open_image(path: Path):
    """Open ``path`` with Pillow under its decompression-bomb limit; ValueError naming the file."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that; refuse both
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"image {str(path)!r} refused: too many pixels for a safe read ({exc})") from None
    except Exception as exc:
        raise ValueError(f"cannot read image {str(path)!r}: {exc}") from None
    return img


def read_image(path: Path) -> torch.Tensor:
    """Read an image file as a float tensor ``(C, H, W)`` in [0, 1].

    Pillow reads the file, with its decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``): an
    image with more pixels is refused with a ``ValueError`` naming the file instead of being
    decoded into gigabytes. Channels are kept as stored (grey 1, grey + alpha 2, RGB 3, RGBA 4);
    palette, CMYK and YCbCr images become RGB(A); 16-bit and float images are scaled to [0, 1].
    """
    img = _open_image(Path(path))
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "I;16", "F"):
        img = img.convert("RGB")
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        arr = arr / 255.0
    elif img.mode in ("I", "I;16"):  # 16-bit images (Pillow opens them as 32-bit integers too)
        arr = np.clip(arr / 65535.0, 0.0, 1.0)
    arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def _check_image_file(path: Path) -> str | None:
    """Why ``path`` cannot be used as an image (None when it can): header, size limit, integrity."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "too many pixels for a safe read"
    except Exception as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def image_folder(root: str | os.PathLike, transform=None) -> LazyFileDataset:
    """Images under ``root/<class_name>/*`` as a lazy dataset; classes sorted by name.

    Every file is checked before it is used (a training run must not find a corrupt image after
    its last epoch): an unreadable or oversized image raises ``ValueError`` listing the files.
    Hidden files (``._x.png`` written by macOS, ``.DS_Store``) and images in folders nested below
    the class folders are skipped with a warning that names them. At least two classes with
    images are required (one class has nothing to classify). The returned dataset has
    ``classes`` (names) and ``class_to_idx``.
    """
    import warnings

    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root {str(root)!r} is not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    paths, targets, hidden, nested = [], [], [], []
    for idx, name in enumerate(classes):
        folder = root / name
        for f in sorted(folder.rglob("*")):
            if not f.is_file() or f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if any(part.startswith(".") for part in f.relative_to(folder).parts):
                hidden.append(f)
            elif f.parent != folder:
                nested.append(f)
            else:
                paths.append(f)
                targets.append(idx)
    for kind, skipped in (("hidden", hidden), ("nested below a class folder", nested)):
        if skipped:
            shown = ", ".join(str(p.relative_to(root)) for p in skipped[:3]) + (", …" if len(skipped) > 3 else "")
            warnings.warn(f"{str(root)!r}: skipped {len(skipped)} {kind} image file(s): {shown}", stacklevel=2)
    if not paths:
        raise ValueError(f"root {str(root)!r} has no class sub-folders with images ({', '.join(IMAGE_SUFFIXES)})")
    used = sorted(set(targets))
    if len(used) < 2:
        raise ValueError(
            f"root {str(root)!r} has images of {len(used)} class ({classes[used[0]]!r}); "
            "classification needs at least two class folders with images"
        )
    bad = [(p, why) for p in paths if (why := _check_image_file(p)) is not None]
    if bad:
        shown = "; ".join(f"{str(p.relative_to(root))!r}: {why}" for p, why in bad[:5])
        raise ValueError(f"root {str(root)!r}: {len(bad)} image file(s) cannot be used: {shown}"
                         + (" …" if len(bad) > 5 else ""))
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
    if min(len(train), len(val), len(test)) == 0:
        raise ValueError(
            f"root {str(root)!r}: {len(ds)} images are too few for train / val / test splits "
            f"({len(train)} / {len(val)} / {len(test)}); add images (at least 7 in all)"
        )
    return DataSplits(train, val, test, in_shape=(channels, *size), num_classes=len(ds.classes))


def resolve_dataset(name: str):
    """The dataset factory for ``name``: a registered name, ``folder:PATH`` for a user's images,
    ``coco:PATH`` (COCO JSON + images) or ``voc:PATH`` (Pascal VOC layout) for detection data."""
    from functools import partial

    from deepnotes.core.registry import DATASETS

    if name.startswith("folder:"):
        return partial(image_folder_splits, name[len("folder:") :])
    if name.startswith("coco:"):
        from deepnotes.data.coco import coco_splits

        return partial(coco_splits, name[len("coco:") :])
    if name.startswith("voc:"):
        from deepnotes.data.voc import voc_splits

        return partial(voc_splits, name[len("voc:") :])
    return DATASETS.get(name)


def dataset_task(name: str) -> str:
    """The task of dataset ``name`` (its registry metadata; class folders are classification)."""
    from deepnotes.core.registry import DATASETS

    if name.startswith("folder:"):
        return "classification"
    return DATASETS.meta(name).get("task", "classification")
