"""Box-aware augmentation: each op moves ``boxes``, ``masks`` and ``semantic`` with the pixels.

Every function takes and returns ``(image Tensor[C, H, W], target dict)``; boxes are pixel-edge
``xyxy`` (a box ``[x1, y1, x2, y2]`` covers columns ``x1 .. x2 - 1``), so a flip maps
``x ↦ W - x`` and a crop of offset ``(top, left)`` maps ``x ↦ x - left`` — the same maps the
pixels undergo. Other keys (``labels``, ``area``, ``iscrowd``, ``track_ids``…) follow the boxes
when objects are dropped. The invariant the tests check: augmenting then drawing the boxes equals
drawing the boxes then augmenting.

:func:`mosaic_detection` tiles four samples around a centre (YOLOv4's Mosaic); :func:`cutmix_detection`
pastes a rectangle of one sample into another.
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


def mosaic_detection(samples, output_size, center) -> tuple[torch.Tensor, dict]:
    """Mosaic (YOLOv4): four ``(image, target)`` samples tiled around ``center = (cy, cx)``.

    Sample 0 fills the top-left quadrant of a canvas of ``output_size = (H, W)`` with its
    bottom-right corner at the centre, sample 1 the top-right (its bottom-left corner at the
    centre), sample 2 the bottom-left, sample 3 the bottom-right; what falls outside a quadrant is
    cut off. Boxes are shifted with their image and clipped to its quadrant; objects cut away
    entirely are dropped. Per-object entries are concatenated in sample order; the canvas outside
    the four images is 0.
    """
    if not isinstance(samples, (list, tuple)) or len(samples) != 4:
        raise ValueError("samples must be a list of four (image, target) pairs")
    h, w = check_int("output_size[0]", output_size[0], min=1), check_int("output_size[1]", output_size[1], min=1)
    cy, cx = check_int("center[0]", center[0], min=0, max=h), check_int("center[1]", center[1], min=0, max=w)
    image0 = samples[0][0]
    canvas = image0.new_zeros(image0.shape[0], h, w)
    quadrants = [(0, 0, cy, cx), (0, cx, cy, w), (cy, 0, h, cx), (cy, cx, h, w)]  # (top, left, bottom, right)
    parts = []
    for q, ((image, target), (top, left, bottom, right)) in enumerate(zip(samples, quadrants)):
        t = _check(image, target)
        ih, iw = image.shape[-2:]
        # where the image's top-left corner lands on the canvas
        oy = cy - ih if q in (0, 1) else cy
        ox = cx - iw if q in (0, 2) else cx
        # the part of the quadrant the image covers, in canvas and in image coordinates
        y0, y1, x0, x1 = max(top, oy), min(bottom, oy + ih), max(left, ox), min(right, ox + iw)
        if y1 <= y0 or x1 <= x0:
            continue
        canvas[:, y0:y1, x0:x1] = image[:, y0 - oy : y1 - oy, x0 - ox : x1 - ox]
        cropped_image, ct = crop_detection(image, t, y0 - oy, x0 - ox, y1 - y0, x1 - x0)
        ct["boxes"] = ct["boxes"] + torch.tensor([x0, y0, x0, y0], dtype=ct["boxes"].dtype)
        for key in ("masks", "semantic"):
            if key in ct:
                m = ct[key]
                full = m.new_zeros(*m.shape[:-2], h, w)
                full[..., y0:y1, x0:x1] = m
                ct[key] = full
        parts.append(ct)
    out: dict = {}
    for key in (parts[0] if parts else {"boxes": None}):
        values = [p[key] for p in parts if key in p]
        if key == "semantic":
            out[key] = torch.stack(values).amax(0)  # quadrants are disjoint
        elif values and torch.is_tensor(values[0]) and values[0].dim() >= 1:
            out[key] = torch.cat(values)
        elif values:
            out[key] = values[0]
    if not parts:
        out["boxes"] = torch.zeros(0, 4)
    return canvas, out


def _mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Pixel-edge extent of each mask Tensor[N, H, W] (all zeros for an empty mask)."""
    n, h, w = masks.shape
    cols, rows = masks.bool().any(1), masks.bool().any(2)
    x1 = cols.int().argmax(1)
    x2 = w - cols.flip(1).int().argmax(1)
    y1 = rows.int().argmax(1)
    y2 = h - rows.flip(1).int().argmax(1)
    boxes = torch.stack([x1, y1, x2, y2], 1).to(torch.float32)
    return torch.where(cols.any(1, keepdim=True), boxes, torch.zeros_like(boxes))


def cutmix_detection(sample_a, sample_b, region) -> tuple[torch.Tensor, dict]:
    """CutMix for detection: paste ``region = (x1, y1, x2, y2)`` (integers) of image B into image A.

    With ``masks`` (both targets), every box becomes the extent of its object's visible pixels (as
    ``shapes`` defines boxes): A's objects lose the pasted pixels, B's keep only those in the
    region, and objects left without pixels are dropped. Without masks, B's boxes are clipped to
    the region (empty ones dropped) and A's boxes are kept unless they lie entirely inside it.
    Per-object entries: A's first, then B's.
    """
    (image_a, target_a), (image_b, target_b) = sample_a, sample_b
    ta, tb = _check(image_a, target_a), _check(image_b, target_b)
    if image_a.shape != image_b.shape:
        raise ValueError(f"images must have the same shape, got {tuple(image_a.shape)} and {tuple(image_b.shape)}")
    h, w = image_a.shape[-2:]
    if not isinstance(region, (tuple, list)) or len(region) != 4:
        raise ValueError(f"region must be (x1, y1, x2, y2), got {region!r}")
    x1, y1 = check_int("region[0]", region[0], min=0), check_int("region[1]", region[1], min=0)
    x2, y2 = check_int("region[2]", region[2], min=x1 + 1, max=w), check_int("region[3]", region[3], min=y1 + 1, max=h)
    image = image_a.clone()
    image[:, y1:y2, x1:x2] = image_b[:, y1:y2, x1:x2]
    _, tb = crop_detection(image_b, tb, y1, x1, y2 - y1, x2 - x1)
    tb["boxes"] = tb["boxes"] + torch.tensor([x1, y1, x1, y1], dtype=tb["boxes"].dtype)
    for key in ("masks", "semantic"):
        if key in tb:
            full = tb[key].new_zeros(*tb[key].shape[:-2], h, w)
            full[..., y1:y2, x1:x2] = tb[key]
            tb[key] = full
    if "masks" in ta and "masks" in tb:
        ta["masks"][:, y1:y2, x1:x2] = 0
        for t in (ta, tb):
            t["boxes"] = _mask_boxes(t["masks"]).to(t["boxes"].dtype)
            if "area" in t:
                t["area"] = t["masks"].flatten(1).sum(1).to(t["area"].dtype)
        keep = ta["masks"].flatten(1).sum(1) > 0
        tb = _keep_objects(tb, tb["masks"].flatten(1).sum(1) > 0)
    else:
        b = ta["boxes"]
        keep = ~((b[:, 0] >= x1) & (b[:, 1] >= y1) & (b[:, 2] <= x2) & (b[:, 3] <= y2))
    ta = _keep_objects(ta, keep)
    if "semantic" in ta:
        ta["semantic"][y1:y2, x1:x2] = tb["semantic"][y1:y2, x1:x2] if "semantic" in tb else 0
    out = {}
    for key, va in ta.items():
        vb = tb.get(key)
        if key != "semantic" and torch.is_tensor(va) and va.dim() >= 1 and torch.is_tensor(vb):
            out[key] = torch.cat([va, vb])
        else:
            out[key] = va
    return image, out
