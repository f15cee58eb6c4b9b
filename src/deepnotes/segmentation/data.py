"""``shapes-seg``: the ``shapes`` images with their semantic masks, as a segmentation dataset;
and how the segment task reads a detection dataset's semantic masks (``--data shapes``).

Items are ``(image Tensor[3, S, S] float32, mask Tensor[S, S] int64)`` with mask labels
``0`` background, ``1`` rectangle, ``2`` ellipse, ``3`` triangle — four pixel classes. The
defaults (64x64 images, 1–4 objects of 8–32 px) keep training within minutes on a CPU; every
geometry argument of :func:`deepnotes.data.shapes` can be changed.

The segment task also takes the ``shapes`` detection dataset itself (128x128, 1–6 objects):
:func:`semantic_target` reads each target's ``semantic`` mask and :func:`pixel_classes` counts the
background as a class.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from deepnotes.core.checks import check_int
from deepnotes.core.registry import DATASETS
from deepnotes.data.shapes import CLASSES, ShapesDataset
from deepnotes.data.splits import DataSplits

__all__ = ["SEGMENT_CLASSES", "SemanticMasks", "pixel_classes", "semantic_target", "shapes_segmentation"]

SEGMENT_CLASSES = ("background", *CLASSES)


def semantic_target(target: Any) -> torch.Tensor:
    """The per-pixel class mask of a dataset item's target: the target itself when it is a mask
    tensor, the ``"semantic"`` entry of a detection target dict."""
    if isinstance(target, dict):
        if "semantic" not in target:
            raise ValueError(
                f"target: a detection target needs a 'semantic' mask to be segmented, got keys {sorted(target)}"
            )
        return target["semantic"]
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a mask tensor or a detection target dict, got {type(target).__name__}")
    return target


def pixel_classes(splits: Any) -> int:
    """Pixel classes of ``splits`` for a segmentation model: ``num_classes`` of segmentation data,
    ``num_classes + 1`` (the background added) of detection data, whose items must carry masks."""
    if getattr(splits, "task", "segment") != "detect":
        return splits.num_classes
    if len(splits.train) == 0:
        raise ValueError("splits: the training split is empty")
    semantic_target(splits.train[0][1])  # refuse a detection dataset without semantic masks now
    return splits.num_classes + 1


class SemanticMasks(Dataset):
    """``(image, target)`` items of a detection dataset → ``(image, target["semantic"])``."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, target = self.dataset[index]
        return image, target["semantic"]


@DATASETS.register(
    "shapes-seg",
    task="segment",
    description="shapes images (64x64, 1-4 objects) with semantic masks: background + 3 shape classes",
)
def shapes_segmentation(
    seed: int = 0,
    n_train: int = 2000,
    n_val: int = 200,
    n_test: int = 200,
    image_size: int = 64,
    max_objects: int = 4,
    min_size: float = 8.0,
    max_size: float = 32.0,
    min_visible: float = 0.3,
) -> DataSplits:
    """Train / val / test splits of ``shapes`` semantic masks; ``num_classes`` is 4 (background included)."""
    kw = dict(seed=seed, image_size=image_size, max_objects=max_objects, min_size=min_size,
              max_size=max_size, min_visible=min_visible)
    return DataSplits(
        SemanticMasks(ShapesDataset(check_int("n_train", n_train, min=1), "train", **kw)),
        SemanticMasks(ShapesDataset(check_int("n_val", n_val, min=1), "val", **kw)),
        SemanticMasks(ShapesDataset(check_int("n_test", n_test, min=1), "test", **kw)),
        in_shape=(3, image_size, image_size),
        num_classes=len(SEGMENT_CLASSES),
        task="segment",
    )
