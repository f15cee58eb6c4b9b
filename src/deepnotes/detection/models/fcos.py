"""FCOS, "Fully Convolutional One-Stage Object Detection" (Tian et al., 2019): no anchors — every
feature-map location inside a box regresses its distances to the four sides.

A location ``(x, y)`` of level ``i`` (stride ``s_i``, centre ``(s_i·col + s_i/2, s_i·row + s_i/2)``)
is positive for a box when it lies inside it and the largest of its distances
``l* = x − x1, t* = y − y1, r* = x2 − x, b* = y2 − y`` falls in the level's size range
``(m_{i−1}, m_i]`` (big objects on coarse levels); inside several boxes it takes the smallest.
Each level predicts class logits, ``(l, t, r, b) = exp(s·x)`` (a learned scale ``s`` per level, in
pixels) and a centerness logit. The loss::

    L = 1/N_pos Σ_xy FL(p_xy, c*_xy) + 1/N_pos Σ_pos −ln IoU(b_xy, b*_xy) + BCE(centerness_xy, ctr*_xy) (mean over positives)
    ctr* = √( min(l*, r*) / max(l*, r*) · min(t*, b*) / max(t*, b*) )

with FL the focal loss (α = 0.25, γ = 2; :func:`deepnotes.detection.sigmoid_focal_loss`) and the
IoU loss of UnitBox. At test time a location scores ``p · centerness`` (which ranks
off-centre boxes lower), then per-class NMS at 0.6.

Here: three levels P3–P5 (strides 8, 16, 32) from an FPN over a :class:`TinyResNet` (the paper
has P3–P7), default size ranges ``(0, 24], (24, 48], (48, ∞)`` for objects of 8–64 px, heads of two
conv layers without group norm, and the class prior π = 0.01 in the last bias as in RetinaNet.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.iou import box_iou_paired
from deepnotes.detection.losses import sigmoid_focal_loss
from deepnotes.detection.models._common import (
    check_images,
    check_in_shape,
    flatten_targets,
    select_detections,
)
from deepnotes.detection.models.backbone import TinyResNet


def fcos_locations(sizes, strides, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres ``(P, 2)`` (x, y) of every location of every level, row-major, and each one's level."""
    points, level = [], []
    for i, ((h, w), s) in enumerate(zip(sizes, strides)):
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        points.append(torch.stack([xs.flatten(), ys.flatten()], 1).float() * s + s // 2)
        level.append(torch.full((h * w,), i, device=device))
    return torch.cat(points), torch.cat(level)


def fcos_targets(points, level, size_ranges, boxes, labels, image, batch: int):
    """Per image and location: class target ``(N, P)`` (0..C-1, −1 background) and the assigned
    box's ``l*, t*, r*, b*`` ``(N, P, 4)``."""
    x, y = points[:, 0].view(1, -1, 1), points[:, 1].view(1, -1, 1)  # (1, P, 1)
    b = boxes.view(1, 1, -1, 4)
    ltrb = torch.stack([x - b[..., 0], y - b[..., 1], b[..., 2] - x, b[..., 3] - y], -1)[0]  # (P, K, 4)
    lo = torch.tensor([r[0] for r in size_ranges], dtype=ltrb.dtype, device=ltrb.device)[level].view(-1, 1)
    hi = torch.tensor([r[1] for r in size_ranges], dtype=ltrb.dtype, device=ltrb.device)[level].view(-1, 1)
    reach = ltrb.max(-1).values
    ok = (ltrb.min(-1).values > 0) & (reach > lo) & (reach <= hi)  # (P, K)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).view(1, -1)
    # per image: mask out other images' boxes, then the smallest fitting box wins
    own = image.view(1, 1, -1) == torch.arange(batch, device=image.device).view(-1, 1, 1)  # (N, 1, K)
    cost = torch.where(ok.unsqueeze(0) & own, area.unsqueeze(0), torch.full_like(area, math.inf).unsqueeze(0))
    best_cost, best = cost.min(-1) if cost.shape[-1] else (cost.new_full(cost.shape[:2], math.inf), None)
    if best is None:
        return torch.full(best_cost.shape, -1, dtype=torch.int64, device=points.device), points.new_zeros(*best_cost.shape, 4)
    cls = torch.where(torch.isfinite(best_cost), labels[best], torch.full_like(best, -1))
    reg = ltrb[torch.arange(len(points), device=points.device).view(1, -1), best]  # (N, P, 4)
    return cls, reg


def centerness_target(ltrb: torch.Tensor) -> torch.Tensor:
    """``√(min(l, r)/max(l, r) · min(t, b)/max(t, b))`` of ``(…, 4)`` distances."""
    lr, tb = ltrb[..., [0, 2]], ltrb[..., [1, 3]]
    return (lr.min(-1).values / lr.max(-1).values * tb.min(-1).values / tb.max(-1).values).sqrt()


def _ltrb_to_boxes(points: torch.Tensor, ltrb: torch.Tensor) -> torch.Tensor:
    return torch.cat([points - ltrb[..., :2], points + ltrb[..., 2:]], -1)


@MODELS.register("fcos", task="detect", description="FCOS: anchor-free ltrb regression, centerness, size ranges per level",
                 zoo=dict(epochs=16, batch_size=16, lr=2e-3, schedule="cosine", data_kw={"n_val": 100}, target_map50=0.80))
class FCOS(nn.Module):
    """FCOS on P3–P5 of an FPN over :class:`TinyResNet`.

    Training mode → ``{"loss_cls", "loss_box", "loss_centerness"}``; eval mode → one
    ``{"boxes", "scores", "labels"}`` dict per image.
    """

    strides = (8, 16, 32)
    loss_names = ("loss_box", "loss_centerness", "loss_cls")

    def __init__(self, in_shape=(3, 128, 128), num_classes: int = 3, width: int = 32,
                 size_ranges=((0.0, 24.0), (24.0, 48.0), (48.0, math.inf)), alpha: float = 0.25, gamma: float = 2.0,
                 score_thresh: float = 0.05, nms_thresh: float = 0.6, detections_per_img: int = 100):
        super().__init__()
        self.in_shape = check_in_shape(in_shape, 32)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        check_type("size_ranges", size_ranges, (tuple, list))
        if len(size_ranges) != 3 or any(len(r) != 2 or not r[0] < r[1] for r in size_ranges):
            raise ValueError("size_ranges must be three (low, high] pairs with low < high, one per level")
        self.size_ranges = tuple((float(a), float(b)) for a, b in size_ranges)
        self.alpha, self.gamma = check_float("alpha", alpha, max=1.0), check_float("gamma", gamma, min=0.0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.nms_thresh = check_float("nms_thresh", nms_thresh, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
        w = check_int("width", width, min=2)
        widths = (w // 2, w // 2, w, 2 * w, 4 * w)  # strides 2 … 32
        self.backbone = TinyResNet(self.in_shape[0], widths, stem_width=w // 2)
        self.lateral = nn.ModuleList([nn.Conv2d(c, w, 1) for c in widths[2:]])
        self.output = nn.ModuleList([nn.Conv2d(w, w, 3, padding=1) for _ in widths[2:]])

        def tower() -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU())

        self.cls_tower, self.box_tower = tower(), tower()
        self.cls_logits = nn.Conv2d(w, self.num_classes, 3, padding=1)
        self.centerness = nn.Conv2d(w, 1, 3, padding=1)
        self.box = nn.Conv2d(w, 4, 3, padding=1)
        self.scales = nn.Parameter(torch.ones(3))
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - 0.01) / 0.01))

    def raw(self, images: torch.Tensor):
        """Over all locations ``P`` of P3–P5: class logits ``(N, P, C)``, distances ``(N, P, 4)`` in
        pixels, centerness logits ``(N, P)``, and the feature sizes."""
        feats = self.backbone(check_images(images, self.in_shape))[2:]
        x = self.lateral[2](feats[2])
        pyramid = [self.output[2](x)]
        for i in (1, 0):  # top-down: upsample and add the lateral features
            x = F.interpolate(x, size=feats[i].shape[-2:], mode="nearest") + self.lateral[i](feats[i])
            pyramid.insert(0, self.output[i](x))
        cls, box, ctr = [], [], []
        for i, p in enumerate(pyramid):
            c, b = self.cls_tower(p), self.box_tower(p)
            cls.append(self.cls_logits(c).flatten(2).transpose(1, 2))
            ctr.append(self.centerness(c).flatten(1))
            box.append(torch.exp(self.scales[i] * self.box(b)).flatten(2).transpose(1, 2) * self.strides[i])
        return torch.cat(cls, 1), torch.cat(box, 1), torch.cat(ctr, 1), [tuple(p.shape[-2:]) for p in pyramid]

    def forward(self, images: torch.Tensor, targets=None):
        cls, box, ctr, sizes = self.raw(images)
        points, level = fcos_locations(sizes, self.strides, images.device)
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode (call model.eval() to detect)")
            return self.loss(cls, box, ctr, points, level, targets)
        return self.postprocess(cls, box, ctr, points)

    def loss(self, cls, box, ctr, points, level, targets) -> dict[str, torch.Tensor]:
        n = cls.shape[0]
        boxes, labels, image = flatten_targets(targets, n, self.num_classes, cls.device, cls.dtype)
        cls_t, reg_t = fcos_targets(points.to(cls.dtype), level, self.size_ranges, boxes, labels, image, n)
        pos = cls_t >= 0
        num_pos = max(int(pos.sum()), 1)
        onehot = F.one_hot(cls_t.clamp(min=0), self.num_classes).to(cls.dtype) * pos.unsqueeze(-1)
        focal = sigmoid_focal_loss(cls, onehot, self.alpha, self.gamma, reduction="sum") / num_pos
        if not pos.any():
            zero = box.sum() * 0 + ctr.sum() * 0
            return {"loss_cls": focal, "loss_box": zero, "loss_centerness": zero}
        where = points.to(cls.dtype).expand(n, -1, -1)[pos]
        iou = box_iou_paired(_ltrb_to_boxes(where, box[pos]), _ltrb_to_boxes(where, reg_t[pos]))
        ctr_t = centerness_target(reg_t[pos])
        return {
            "loss_cls": focal,
            "loss_box": -torch.log(iou.clamp(min=1e-6)).sum() / num_pos,
            "loss_centerness": F.binary_cross_entropy_with_logits(ctr[pos], ctr_t),
        }

    def postprocess(self, cls, box, ctr, points) -> list[dict[str, torch.Tensor]]:
        n, p, c = cls.shape
        scores = cls.sigmoid() * ctr.sigmoid().unsqueeze(-1)  # (N, P, C)
        h, w = self.in_shape[1:]
        boxes = _ltrb_to_boxes(points.expand(n, -1, -1), box)
        boxes = torch.stack([boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h),
                             boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)], -1)
        boxes = boxes.unsqueeze(2).expand(n, p, c, 4).reshape(-1, 4)
        labels = torch.arange(c, device=cls.device).expand(n, p, c).reshape(-1)
        image = torch.arange(n, device=cls.device).view(-1, 1, 1).expand(n, p, c).reshape(-1)
        return select_detections(boxes, scores.reshape(-1), labels, image, n, score_thresh=self.score_thresh,
                                 nms_thresh=self.nms_thresh, detections_per_img=self.detections_per_img)
