"""Box-aware augmentation: each op moves ``boxes``, ``masks`` and ``semantic`` with the pixels.

Every function takes and returns ``(image Tensor[C, H, W], target dict)``; boxes are pixel-edge
``xyxy`` (a box ``[x1, y1, x2, y2]`` covers columns ``x1 .. x2 - 1``), so a flip maps
``x ↦ W - x`` and a crop of offset ``(top, left)`` maps ``x ↦ x - left`` — the same maps the
pixels undergo. Other keys (``labels``, ``area``, ``iscrowd``, ``track_ids``…) follow the boxes
when objects are dropped. The invariant the tests check: augmenting then drawing the boxes equals
drawing the boxes then augmenting.

:class:`DetectionAugment` chains a random flip, scale, crop and colour jitter with every random
choice drawn from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepnotes.core.checks import check_float, check_int, check_tensor
from deepnotes.data.augment import color_jitter


def _check(image, target):
    check_tensor("image", image, ndim=3, floating=True)
    if not isinstance(target, dict) or "boxes" not in target:
        raise TypeError("target must be a dict with a 'boxes' Tensor[N, 4]")
    boxes = target["boxes"]
    check_tensor("target['boxes']", boxes, ndim=2)
    if boxes.shape[1] != 4:
        raise ValueError(f"target['boxes'] must have shape (N, 4), got {tuple(boxes.shape)}")
    return {k: (v.clone() if torch.is_tensor(v) else v) for k, v in target.items()}


def _keep_objects(target: dict, keep: torch.Tensor) -> dict:
    """Drop objects where ``keep`` is False from every per-object entry (first dim = N)."""
    n = len(keep)
    for k, v in target.items():
        if torch.is_tensor(v) and v.dim() >= 1 and v.shape[0] == n and k != "semantic":
            target[k] = v[keep]
    return target


def hflip_detection(image: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
    """Mirror left-right: ``x1' = W - x2``, ``x2' = W - x1``."""
    t = _check(image, target)
    w = image.shape[-1]
    b = t["boxes"]
    t["boxes"] = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
    for key in ("masks", "semantic"):
        if key in t:
            t[key] = t[key].flip(-1)
    return image.flip(-1), t


def crop_detection(image: torch.Tensor, target: dict, top: int, left: int, height: int, width: int,
                   min_area: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Crop the window ``[top, top + height) × [left, left + width)`` (inside the image).

    Boxes are shifted and clipped to the window; objects whose clipped box covers less than
    ``min_area`` pixels are dropped (with their masks and labels).
    """
    t = _check(image, target)
    h, w = image.shape[-2:]
    top, left = check_int("top", top, min=0), check_int("left", left, min=0)
    height, width = check_int("height", height, min=1), check_int("width", width, min=1)
    if top + height > h or left + width > w:
        raise ValueError(f"crop window ({top}, {left}, {height}, {width}) exceeds the image {h}x{w}")
    shift = torch.tensor([left, top, left, top], dtype=t["boxes"].dtype)
    limit = torch.tensor([width, height, width, height], dtype=t["boxes"].dtype)
    b = torch.minimum((t["boxes"] - shift).clamp(min=0), limit)
    t["boxes"] = b
    for key in ("masks", "semantic"):
        if key in t:
            t[key] = t[key][..., top : top + height, left : left + width]
    keep = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) >= check_float("min_area", min_area, min=0.0)
    keep &= (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    if "area" in t and "masks" in t:
        t["area"] = t["masks"].flatten(1).sum(1).to(t["area"].dtype)
    return image[:, top : top + height, left : left + width], _keep_objects(t, keep)


def resize_detection(image: torch.Tensor, target: dict, size: tuple[int, int]) -> tuple[torch.Tensor, dict]:
    """Resize to ``size = (H', W')``: bilinear pixels, nearest-neighbour masks, boxes scaled by
    ``(W'/W, H'/H)``. For an integer factor the nearest-neighbour masks are exactly the scaled
    boxes' pixels."""
    t = _check(image, target)
    h, w = image.shape[-2:]
    nh, nw = check_int("size[0]", size[0], min=1), check_int("size[1]", size[1], min=1)
    scale = torch.tensor([nw / w, nh / h, nw / w, nh / h], dtype=t["boxes"].dtype)
    t["boxes"] = t["boxes"] * scale
    out = F.interpolate(image.unsqueeze(0), size=(nh, nw), mode="bilinear", align_corners=False)[0]
    for key in ("masks", "semantic"):
        if key in t:
            m = t[key]
            m3 = m.unsqueeze(0) if m.dim() == 2 else m
            r = F.interpolate(m3.unsqueeze(0).float(), size=(nh, nw), mode="nearest-exact")[0].to(m.dtype)
            t[key] = r[0] if m.dim() == 2 else r
    if "area" in t:
        t["area"] = t["area"] * (nw / w) * (nh / h)
    return out, t


def color_jitter_detection(image, target, brightness=0.0, contrast=0.0, saturation=0.0, generator=None):
    """Photometric jitter (:func:`deepnotes.data.augment.color_jitter`); geometry unchanged."""
    t = _check(image, target)
    return color_jitter(image.unsqueeze(0), brightness, contrast, saturation, generator=generator)[0], t


class DetectionAugment:
    """Random flip (``p_flip``), scale (factor ``~ U[scale]``), crop back to ``crop_size``
    (or to the scaled size's minimum with the original size) and colour jitter.

    Call as ``aug(image, target)``; pass it as ``transform=`` to :class:`ShapesDataset`,
    :class:`CocoDetection` or :class:`VOCDetection`.
    """

    def __init__(self, p_flip=0.5, scale=(0.8, 1.25), crop=True, brightness=0.2, contrast=0.2,
                 saturation=0.2, min_area=4.0, seed: int = 0):
        self.p_flip = check_float("p_flip", p_flip, min=0.0, max=1.0)
        lo, hi = (check_float("scale[0]", scale[0], min=0.0, min_inclusive=False),
                  check_float("scale[1]", scale[1], min=0.0, min_inclusive=False))
        if hi < lo:
            raise ValueError(f"scale must be (low, high) with low <= high, got {scale!r}")
        self.scale, self.crop, self.min_area = (lo, hi), bool(crop), min_area
        self.jitter = (brightness, contrast, saturation)
        self.generator = torch.Generator().manual_seed(check_int("seed", seed, min=0))

    def __call__(self, image, target):
        g = self.generator
        h, w = image.shape[-2:]
        if float(torch.rand((), generator=g)) < self.p_flip:
            image, target = hflip_detection(image, target)
        factor = self.scale[0] + float(torch.rand((), generator=g)) * (self.scale[1] - self.scale[0])
        if factor != 1.0:
            image, target = resize_detection(image, target, (max(1, round(h * factor)), max(1, round(w * factor))))
        if self.crop:
            sh, sw = image.shape[-2:]
            ch, cw = min(h, sh), min(w, sw)
            top = int(torch.randint(0, sh - ch + 1, (), generator=g))
            left = int(torch.randint(0, sw - cw + 1, (), generator=g))
            image, target = crop_detection(image, target, top, left, ch, cw, self.min_area)
        if any(self.jitter):
            image, target = color_jitter_detection(image, target, *self.jitter, generator=g)
        return image, target
