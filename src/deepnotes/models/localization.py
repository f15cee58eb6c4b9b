"""Classification + localization: one backbone, a class head and a box-regression head, and a
synthetic single-object dataset to train it on.

The box head predicts ``(cx, cy, w, h)`` through a sigmoid (so every coordinate lies in [0, 1] of
the image side) and returns boxes as ``xyxy``. The heads read the *flattened* feature map, not
a global average: averaging over positions would throw away where the object is.

:func:`make_shapes` draws images of one filled shape (square, disc or triangle) of random colour,
size and position on a noisy background; the target box is the tight box of the shape's pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor
from deepnotes.core.seeding import make_generator
from deepnotes.models.interface import parse_in_shape

SHAPES = ("square", "disc", "triangle")


def make_shapes(n: int, size: int = 32, seed: int = 0, noise: float = 0.1):
    """``n`` RGB images with one shape each.

    Returns
    -------
    images : Tensor[n, 3, size, size] (float32 in [0, 1])
    labels : LongTensor[n]  (index into :data:`SHAPES`)
    boxes : Tensor[n, 4]  (``x1, y1, x2, y2`` as fractions of the side; the pixel-edge box of the shape)
    """
    n = check_int("n", n, min=1)
    size = check_int("size", size, min=8)
    noise = check_float("noise", noise, min=0.0)
    g = make_generator(seed)
    labels = torch.randint(len(SHAPES), (n,), generator=g)
    half = (torch.rand(n, generator=g) * 0.25 + 0.1) * size  # half-extent: 10–35 % of the side
    cx = half + torch.rand(n, generator=g) * (size - 2 * half)
    cy = half + torch.rand(n, generator=g) * (size - 2 * half)
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")  # pixel centres
    dx, dy = xx - cx[:, None, None], yy - cy[:, None, None]
    h = half[:, None, None]
    square = (dx.abs() <= h) & (dy.abs() <= h)
    disc = dx * dx + dy * dy <= h * h
    # upward triangle: inside the square and below the two edges from the apex
    triangle = (dy <= h) & (dy >= -h) & (dx.abs() <= (dy + h) / 2)
    lab = labels[:, None, None]
    mask = torch.where(lab == 0, square, torch.where(lab == 1, disc, triangle))
    colour = torch.rand(n, 3, generator=g) * 0.6 + 0.4
    background = torch.rand(n, 3, generator=g) * 0.3
    images = torch.where(mask[:, None], colour[:, :, None, None], background[:, :, None, None])
    images = (images + noise * torch.randn(images.shape, generator=g)).clamp(0, 1)
    rows, cols = mask.any(2), mask.any(1)  # (n, size): which rows / columns the shape touches
    idx = torch.arange(size)
    big = size + 1
    y1 = torch.where(rows, idx, big).amin(1)
    y2 = torch.where(rows, idx, -1).amax(1) + 1
    x1 = torch.where(cols, idx, big).amin(1)
    x2 = torch.where(cols, idx, -1).amax(1) + 1
    boxes = torch.stack([x1, y1, x2, y2], 1).float() / size
    return images.float(), labels, boxes


def box_iou_paired(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of ``a[i]`` with ``b[i]`` for ``xyxy`` boxes ``(N, 4)``; 0 where the union is empty."""
    check_tensor("a", a, ndim=2)
    check_tensor("b", b, ndim=2)
    if a.shape != b.shape or a.shape[-1] != 4:
        raise ValueError(f"a and b must both have shape (N, 4), got {tuple(a.shape)} and {tuple(b.shape)}")
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area = lambda t: (t[:, 2:] - t[:, :2]).clamp(min=0).prod(1)  # noqa: E731
    union = area(a) + area(b) - inter
    return torch.where(union > 0, inter / union.clamp_min(torch.finfo(a.dtype).tiny), torch.zeros_like(inter))


class ClassifyLocalize(nn.Module):
    """A conv backbone with a class head and a box head.

    ``forward(x) → (logits (N, num_classes), boxes (N, 4) xyxy in [0, 1])``.
    ``forward_features`` gives the backbone's map; ``forward_head`` both heads. Not in the
    ``MODELS`` registry: it returns two outputs and trains with :func:`train_localizer`, not the
    classification trainer.
    """

    def __init__(self, in_shape=(3, 32, 32), num_classes: int = 3, width: int = 32):
        super().__init__()
        c, h, w = parse_in_shape(in_shape, 8, "localizer")
        self.in_channels, self.num_classes = c, check_int("num_classes", num_classes, min=1)
        width = check_int("width", width, min=1)

        def stage(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.backbone = nn.Sequential(
            *stage(c, width), nn.MaxPool2d(2), *stage(width, 2 * width), nn.MaxPool2d(2),
            *stage(2 * width, 4 * width), nn.MaxPool2d(2),
        )
        feat = 4 * width * (h // 8) * (w // 8)
        self.shared = nn.Sequential(nn.Flatten(), nn.Linear(feat, 256), nn.ReLU(inplace=True))
        self.cls_head = nn.Linear(256, self.num_classes)
        self.box_head = nn.Linear(256, 4)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_head(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.shared(features)
        cx, cy, bw, bh = torch.sigmoid(self.box_head(z)).unbind(1)
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        return self.cls_head(z), boxes

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_head(self.forward_features(x))


@dataclass
class LocalizationReport:
    accuracy: float
    mean_iou: float
    seconds: float
    history: list[float]


def localization_loss(logits, boxes, labels, target_boxes, box_weight: float = 5.0) -> torch.Tensor:
    """Cross-entropy on the class plus ``box_weight`` × smooth-L1 on the box corners."""
    return F.cross_entropy(logits, labels) + box_weight * F.smooth_l1_loss(boxes, target_boxes, beta=0.05)


def train_localizer(
    model: ClassifyLocalize,
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
) -> LocalizationReport:
    """Train with Adam and a cosine schedule; report test accuracy and mean IoU."""
    import time

    epochs = check_int("epochs", epochs, min=1)
    batch_size = check_int("batch_size", batch_size, min=1)
    x, y, b = train
    g = make_generator(seed)
    opt = torch.optim.Adam(model.parameters(), lr=check_float("lr", lr, min=0.0, min_inclusive=False))
    steps = epochs * math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    t0, history = time.perf_counter(), []
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            logits, boxes = model(x[idx])
            loss = localization_loss(logits, boxes, y[idx], b[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(x))
    acc, miou = evaluate_localizer(model, test)
    return LocalizationReport(acc, miou, time.perf_counter() - t0, history)


@torch.no_grad()
def evaluate_localizer(model: ClassifyLocalize, data) -> tuple[float, float]:
    """(accuracy, mean IoU) on ``(images, labels, boxes)``."""
    model.eval()
    x, y, b = data
    logits, boxes = model(x)
    return float((logits.argmax(1) == y).float().mean()), float(box_iou_paired(boxes, b).mean())
