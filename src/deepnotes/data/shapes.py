"""``shapes``: a synthetic detection / segmentation / tracking set drawn on the fly.

Every image holds 1 to ``max_objects`` filled shapes of three classes — ``1`` rectangle,
``2`` ellipse, ``3`` triangle (``0`` is the background, as in torchvision's detectors) — with
sides between ``min_size`` and ``max_size`` pixels, in random colours, painted in order over a
textured background so that later shapes occlude earlier ones. Targets describe what is *visible*:

- ``boxes`` Tensor[N, 4] float32, ``xyxy`` in pixel-edge coordinates: the visible pixels of
  object ``k`` span columns ``x1 .. x2 - 1`` and rows ``y1 .. y2 - 1``;
- ``labels`` Tensor[N] int64 in ``1..3``;
- ``masks`` Tensor[N, H, W] uint8, the visible pixels of each instance (disjoint);
- ``semantic`` Tensor[H, W] int64, the class of every pixel (0 for background);
- ``area`` Tensor[N] float32 (visible pixel count), ``iscrowd`` Tensor[N] int64 (zeros) and
  ``image_id`` (int), so the targets can be fed to COCO-style evaluation as they are.

An object whose visible part is smaller than ``min_visible`` of its drawn area (or than 16
pixels) is removed from the image altogether, so every painted pixel belongs to a listed object.
The topmost object is never occluded, so no image is empty.

Each image is generated from ``(seed, split, index)`` alone, lazily in ``__getitem__`` and in a
few tensor ops (all objects and pixels at once): the same arguments always give the same images,
in any order and in any DataLoader worker.

:class:`ShapesSequence` moves the objects of one scene at constant velocity (bouncing off the
image borders, keeping their depth order) and adds ``track_ids`` to every frame's target.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from deepnotes.core.checks import check_float, check_int
from deepnotes.core.registry import DATASETS
from deepnotes.data.splits import DataSplits

CLASSES = ("rectangle", "ellipse", "triangle")
_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
_MIN_VISIBLE_PIXELS = 16


def _generator(*key: int) -> torch.Generator:
    """A torch generator seeded from a tuple of ints (numpy's SeedSequence mixes them)."""
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def _sample_objects(g: torch.Generator, n: int, size: int, min_size: float, max_size: float) -> dict:
    """Class, box (float, inside the image), colour and triangle geometry of ``n`` objects."""
    wh = min_size + torch.rand(n, 2, generator=g, dtype=torch.float64) * (max_size - min_size)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * (size - wh)
    return {
        "labels": torch.randint(1, len(CLASSES) + 1, (n,), generator=g),
        "xy": xy,  # top-left corner
        "wh": wh,
        "colour": torch.rand(n, 3, generator=g, dtype=torch.float64),
        # triangle: apex on the top (or, flipped, bottom) edge at a random fraction of the width
        "apex": torch.rand(n, generator=g, dtype=torch.float64),
        "flip": torch.rand(n, generator=g) < 0.5,
    }


def _background(g: torch.Generator, size: int) -> torch.Tensor:
    """A base colour modulated by smooth low-frequency noise: Tensor[3, size, size] in [0, 1]."""
    base = 0.15 + 0.7 * torch.rand(3, 1, 1, generator=g, dtype=torch.float64)
    coarse = torch.rand(1, 3, 6, 6, generator=g, dtype=torch.float64) - 0.5
    smooth = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
    return (base + 0.35 * smooth).clamp(0.0, 1.0)


def _shape_masks(obj: dict, size: int) -> torch.Tensor:
    """Full (unoccluded) masks Tensor[K, size, size] bool, evaluated at pixel centres."""
    c = torch.arange(size, dtype=torch.float64) + 0.5
    px, py = c.view(1, 1, -1), c.view(1, -1, 1)
    x1, y1 = obj["xy"][:, 0].view(-1, 1, 1), obj["xy"][:, 1].view(-1, 1, 1)
    w, h = obj["wh"][:, 0].view(-1, 1, 1), obj["wh"][:, 1].view(-1, 1, 1)
    u, v = (px - x1) / w, (py - y1) / h  # coordinates in the unit box
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    ellipse = (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    # triangle with apex (a, 0) and base (0, 1)–(1, 1) in unit-box coordinates (v flipped if asked)
    a = obj["apex"].view(-1, 1, 1)
    vv = torch.where(obj["flip"].view(-1, 1, 1), 1 - v, v)
    triangle = inside & (u >= a * (1 - vv)) & (u <= a + (1 - a) * vv)
    kind = obj["labels"].view(-1, 1, 1)
    return torch.where(kind == 1, inside, torch.where(kind == 2, ellipse & inside, triangle))


def _top_object(masks: torch.Tensor) -> torch.Tensor:
    """For every pixel, 1 + the index of the last (topmost) mask covering it, 0 if none."""
    order = torch.arange(1, len(masks) + 1).view(-1, 1, 1)
    return (masks * order).amax(0) if len(masks) else torch.zeros(masks.shape[1:], dtype=torch.int64)


def _masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Pixel-edge ``xyxy`` extent of non-empty boolean masks Tensor[K, H, W] → Tensor[K, 4]."""
    k, h, w = masks.shape
    cols, rows = masks.any(1), masks.any(2)
    x1 = cols.int().argmax(1)
    x2 = w - cols.flip(1).int().argmax(1)
    y1 = rows.int().argmax(1)
    y2 = h - rows.flip(1).int().argmax(1)
    return torch.stack([x1, y1, x2, y2], 1).to(torch.float32).view(k, 4)


def _compose(obj: dict, masks: torch.Tensor, background: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Paint the objects in order over the background; a little pixel noise on top."""
    top = _top_object(masks)
    palette = torch.cat([torch.zeros(1, 3, dtype=torch.float64), obj["colour"]])  # row 0 unused
    painted = palette[top].permute(2, 0, 1)
    img = torch.where(top.unsqueeze(0) > 0, painted, background)
    img = img + 0.03 * torch.randn(img.shape, generator=g, dtype=torch.float64)
    return img.clamp(0.0, 1.0).to(torch.float32)


def _target(obj: dict, masks: torch.Tensor, keep: torch.Tensor, image_id: int) -> dict:
    """Visible masks, boxes, labels and the semantic map of the objects flagged in ``keep``."""
    top = _top_object(masks)
    visible = top.unsqueeze(0) == torch.arange(1, len(masks) + 1).view(-1, 1, 1)
    visible, labels = visible[keep], obj["labels"][keep]
    semantic = torch.cat([torch.zeros(1, dtype=torch.int64), obj["labels"]])[top]
    return {
        "boxes": _masks_to_boxes(visible),
        "labels": labels.to(torch.int64),
        "masks": visible.to(torch.uint8),
        "semantic": semantic,
        "area": visible.sum((1, 2)).to(torch.float32),
        "iscrowd": torch.zeros(len(labels), dtype=torch.int64),
        "image_id": int(image_id),
    }


def _visible_enough(masks: torch.Tensor, min_visible: float) -> torch.Tensor:
    """Objects whose visible area is at least ``min_visible`` of their own area (and 16 px)."""
    top = _top_object(masks)
    visible = (top.unsqueeze(0) == torch.arange(1, len(masks) + 1).view(-1, 1, 1)).sum((1, 2))
    full = masks.sum((1, 2))
    ok = (visible >= min_visible * full) & (visible >= _MIN_VISIBLE_PIXELS)
    ok[-1] = True  # the topmost object is whole: an image is never empty
    return ok


def render_shapes(
    seed: int,
    image_size: int = 128,
    max_objects: int = 6,
    min_size: float = 8.0,
    max_size: float = 64.0,
    min_visible: float = 0.3,
    image_id: int = 0,
) -> tuple[torch.Tensor, dict]:
    """One ``shapes`` image Tensor[3, S, S] (float32 in [0, 1]) and its target dict.

    ``seed`` alone fixes the image (see the module docstring for the target's keys).
    """
    return _render(_generator(seed), image_size, max_objects, min_size, max_size, min_visible, image_id)


def _render(g, image_size, max_objects, min_size, max_size, min_visible, image_id):
    n = int(torch.randint(1, max_objects + 1, (1,), generator=g))
    obj = _sample_objects(g, n, image_size, min_size, max_size)
    background = _background(g, image_size)
    # an object colour too close to the local background is shifted round the colour cube
    cx = (obj["xy"] + obj["wh"] / 2).long().clamp(0, image_size - 1)
    local = background[:, cx[:, 1], cx[:, 0]].T
    near = (obj["colour"] - local).abs().amax(1, keepdim=True) < 0.25
    obj["colour"] = torch.where(near, (obj["colour"] + 0.5) % 1.0, obj["colour"])
    masks = _shape_masks(obj, image_size)
    keep = _visible_enough(masks, min_visible)
    obj = {k: v[keep] for k, v in obj.items()}
    masks = masks[keep]
    image = _compose(obj, masks, background, g)
    return image, _target(obj, masks, torch.ones(len(masks), dtype=torch.bool), image_id)


def _check_geometry(image_size, max_objects, min_size, max_size, min_visible):
    image_size = check_int("image_size", image_size, min=16)
    max_objects = check_int("max_objects", max_objects, min=1)
    min_size = check_float("min_size", min_size, min=2.0)
    max_size = check_float("max_size", max_size, min=min_size)
    if max_size > image_size:
        raise ValueError(f"max_size must be <= image_size ({image_size}), got {max_size}")
    min_visible = check_float("min_visible", min_visible, min=0.0, max=1.0)
    return image_size, max_objects, min_size, max_size, min_visible


class ShapesDataset(Dataset):
    """``num_images`` lazily drawn ``shapes`` images of one split; items are ``(image, target)``.

    Parameters
    ----------
    num_images : int
    split : ``"train" | "val" | "test"`` — part of every image's seed, so splits never share images
    seed : int
    image_size, max_objects, min_size, max_size, min_visible : see :func:`render_shapes`
    transform : callable(image, target) -> (image, target), optional (e.g. a detection augmentation)

    Attributes ``classes`` (names of labels 1..3) and ``num_classes`` (3, background excluded).
    """

    classes = CLASSES
    num_classes = len(CLASSES)

    def __init__(
        self,
        num_images: int = 2000,
        split: str = "train",
        seed: int = 0,
        image_size: int = 128,
        max_objects: int = 6,
        min_size: float = 8.0,
        max_size: float = 64.0,
        min_visible: float = 0.3,
        transform: Callable | None = None,
    ):
        self.num_images = check_int("num_images", num_images, min=0)
        if split not in _SPLIT_CODES:
            raise ValueError(f"split must be one of 'train', 'val', 'test'; got {split!r}")
        self.split, self.seed = split, check_int("seed", seed, min=0)
        self.geometry = _check_geometry(image_size, max_objects, min_size, max_size, min_visible)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.transform = transform

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int):
        index = check_int("index", index)
        if index < 0:
            index += self.num_images
        if not 0 <= index < self.num_images:
            raise IndexError(f"index {index} out of range for {self.num_images} images")
        g = _generator(self.seed, _SPLIT_CODES[self.split], index)
        image, target = _render(g, *self.geometry, image_id=index)
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image, target


class ShapesSequence(Dataset):
    """One scene of moving shapes over ``num_frames`` frames; items are ``(frame, target)``.

    Objects keep their class, colour, size and depth order, move at a constant velocity of up to
    ``max_speed`` px/frame per axis and bounce off the borders, so they pass behind and in front
    of each other. Each frame's target has the keys of :class:`ShapesDataset` plus
    ``track_ids`` Tensor[N] int64 (1..K, stable over the sequence) and ``visibility`` Tensor[N]
    float32 (visible / full area). Objects hidden below ``min_visible`` are left out of that
    frame's target (they reappear with the same id); their few visible pixels stay painted.
    """

    classes = CLASSES
    num_classes = len(CLASSES)

    def __init__(
        self,
        num_frames: int = 50,
        seed: int = 0,
        image_size: int = 128,
        max_objects: int = 6,
        min_size: float = 8.0,
        max_size: float = 64.0,
        min_visible: float = 0.3,
        max_speed: float = 3.0,
        num_objects: int | None = None,
    ):
        self.num_frames = check_int("num_frames", num_frames, min=1)
        self.seed = check_int("seed", seed, min=0)
        size, max_objects, min_size, max_size, self.min_visible = _check_geometry(
            image_size, max_objects, min_size, max_size, min_visible
        )
        self.image_size = size
        max_speed = check_float("max_speed", max_speed, min=0.0)
        g = _generator(self.seed, 3)  # split code 3: sequences never share a stream with images
        n = int(torch.randint(1, max_objects + 1, (1,), generator=g))
        if num_objects is not None:
            n = check_int("num_objects", num_objects, min=1)
        self._obj = _sample_objects(g, n, size, min_size, max_size)
        self._velocity = (torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1) * max_speed
        self._background = _background(g, size)
        self._noise_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))

    def __len__(self) -> int:
        return self.num_frames

    def positions(self, t: int) -> torch.Tensor:
        """Top-left corners Tensor[K, 2] at frame ``t``: a triangle wave in ``[0, S - w]`` (bounces)."""
        span = self.image_size - self._obj["wh"]
        p = self._obj["xy"] + self._velocity * t
        q = torch.remainder(p, (2 * span).clamp(min=1e-12))
        return torch.where(span > 0, span - (span - q).abs(), torch.zeros_like(p))  # no room: stays at 0

    def __getitem__(self, t: int):
        t = check_int("t", t)
        if t < 0:
            t += self.num_frames
        if not 0 <= t < self.num_frames:
            raise IndexError(f"frame {t} out of range for {self.num_frames} frames")
        obj = dict(self._obj, xy=self.positions(t))
        masks = _shape_masks(obj, self.image_size)
        full = masks.sum((1, 2))
        keep = _visible_enough(masks, self.min_visible)
        frame = _compose(obj, masks, self._background, _generator(self._noise_seed, t))
        target = _target(obj, masks, keep, image_id=t)
        target["track_ids"] = torch.arange(1, len(masks) + 1)[keep]
        target["visibility"] = (target["area"] / full[keep].to(torch.float32)).clamp(max=1.0)
        return frame, target


@DATASETS.register(
    "shapes",
    task="detect",
    description="synthetic detection set: 128x128 RGB, 1-6 rectangles/ellipses/triangles, boxes + masks",
)
def shapes(
    seed: int = 0,
    n_train: int = 2000,
    n_val: int = 250,
    n_test: int = 250,
    image_size: int = 128,
    max_objects: int = 6,
    min_size: float = 8.0,
    max_size: float = 64.0,
    min_visible: float = 0.3,
) -> DataSplits:
    """The ``shapes`` detection set as train / val / test :class:`ShapesDataset` splits.

    ``num_classes`` is 3 (labels 1..3; 0 is the background). Ask for small ``n_*`` in tests.
    """
    kw = dict(seed=seed, image_size=image_size, max_objects=max_objects, min_size=min_size,
              max_size=max_size, min_visible=min_visible)
    return DataSplits(
        ShapesDataset(check_int("n_train", n_train, min=1), "train", **kw),
        ShapesDataset(check_int("n_val", n_val, min=1), "val", **kw),
        ShapesDataset(check_int("n_test", n_test, min=1), "test", **kw),
        in_shape=(3, image_size, image_size),
        num_classes=len(CLASSES),
        task="detect",
    )
