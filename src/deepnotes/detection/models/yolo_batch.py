"""Training-batch augmentations of YOLOv2–v5, applied inside the detector's training forward.

The detect task hands every model fixed-size images, so these act on the batch the model
receives (images and targets together) rather than in the dataset:

- :func:`mosaic_batch` — YOLOv4's Mosaic: image ``i`` is replaced by four images of the batch
  (``i, i+1, i+2, i+3`` mod N) tiled around a random centre (:func:`deepnotes.data.mosaic_detection`);
- :func:`cutmix_batch` — CutMix: a random rectangle of image ``i + 1`` (mod N) pasted into image
  ``i`` (:func:`deepnotes.data.cutmix_detection`);
- :func:`rescale_batch` — multi-scale training (YOLOv2): the whole batch resized to another size.

Each draws from torch's global generator (as dropout does), so the Trainer's saved RNG state
makes a resumed run repeat them. With ``p`` the share of batches that are augmented; the
per-image work of Mosaic and CutMix is the data functions' own (one call per image).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepnotes.core.checks import check_float, check_int, check_tensor
from deepnotes.data.detection_augment import cutmix_detection, mosaic_detection


def _draw(p: float) -> bool:
    return p > 0 and float(torch.rand(())) < p


def _keep(t: dict) -> dict:
    return {"boxes": t["boxes"], "labels": t["labels"]}


def mosaic_batch(images: torch.Tensor, targets: list[dict], p: float = 0.5) -> tuple[torch.Tensor, list[dict]]:
    """With probability ``p``, replace every image by a mosaic of four (the centre drawn in the
    middle half of the image, so each quadrant keeps at least a quarter of its side)."""
    check_tensor("images", images, ndim=4, floating=True)
    if not _draw(check_float("p", p, min=0.0, max=1.0)) or len(images) == 0:
        return images, targets
    n, _, h, w = images.shape
    centres = torch.stack([torch.randint(h // 4, h - h // 4 + 1, (n,)), torch.randint(w // 4, w - w // 4 + 1, (n,))], 1)
    out_images, out_targets = [], []
    for i in range(n):
        four = [(images[(i + k) % n], targets[(i + k) % n]) for k in range(4)]
        image, target = mosaic_detection(four, (h, w), tuple(int(v) for v in centres[i]))
        out_images.append(image)
        out_targets.append(_keep({"labels": torch.zeros(0, dtype=torch.int64), **target}))
    return torch.stack(out_images), out_targets


def cutmix_batch(images: torch.Tensor, targets: list[dict], p: float = 0.5) -> tuple[torch.Tensor, list[dict]]:
    """With probability ``p``, paste into image ``i`` a rectangle of image ``i + 1``: sides drawn
    uniformly in [H/4, H/2] × [W/4, W/2], position uniform inside the image."""
    check_tensor("images", images, ndim=4, floating=True)
    if not _draw(check_float("p", p, min=0.0, max=1.0)) or len(images) < 2:
        return images, targets
    n, _, h, w = images.shape
    rh = torch.randint(max(1, h // 4), max(1, h // 2) + 1, (n,))
    rw = torch.randint(max(1, w // 4), max(1, w // 2) + 1, (n,))
    y1 = (torch.rand(n) * (h - rh + 1)).long()
    x1 = (torch.rand(n) * (w - rw + 1)).long()
    out_images, out_targets = [], []
    for i in range(n):
        region = (int(x1[i]), int(y1[i]), int(x1[i] + rw[i]), int(y1[i] + rh[i]))
        image, target = cutmix_detection((images[i], targets[i]), (images[(i + 1) % n], targets[(i + 1) % n]), region)
        out_images.append(image)
        out_targets.append(_keep(target))
    return torch.stack(out_images), out_targets


def rescale_batch(images: torch.Tensor, targets: list[dict], size: int) -> tuple[torch.Tensor, list[dict]]:
    """Resize the batch to ``size × size`` (bilinear) and scale every box with it."""
    check_tensor("images", images, ndim=4, floating=True)
    size = check_int("size", size, min=1)
    h, w = images.shape[-2:]
    if (h, w) == (size, size):
        return images, targets
    scale = torch.tensor([size / w, size / h, size / w, size / h])
    out = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return out, [{**t, "boxes": t["boxes"] * scale.to(t["boxes"])} for t in targets]


def random_size(base: int, scales, multiple: int) -> int:
    """A size drawn uniformly from ``round(base · s / multiple) · multiple`` over ``scales``."""
    sizes = sorted({max(multiple, round(base * float(s) / multiple) * multiple) for s in scales})
    return sizes[int(torch.randint(len(sizes), ()))]
