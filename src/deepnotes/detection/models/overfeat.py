"""OverFeat-style detection (Sermanet et al., 2014): a window classifier applied to the whole image
fully convolutionally — a sliding window at the cost of one forward pass — with a box regressed at
every window position, and the predictions of neighbouring windows merged.

**Sliding window as convolution.** A classifier for a fixed window (feature layers, then "fully
connected" layers) becomes convolutional when its first fully connected layer is a ``k × k``
convolution over the ``k × k`` feature patch of the window and the others are ``1 × 1``
convolutions. On a larger image it outputs a grid: location ``(i, j)`` is the classification of
the window centred at ``(s·j + s/2, s·i + s/2)`` (``s`` the stride), with the computation of
overlapping windows shared. Each location scores ``C + 1`` classes (0: background) and regresses
the distances ``(l, t, r, b)`` from its centre to the four box sides.

**Training.** A location is an example of object ``g`` when its centre lies in ``g`` and at
least half of ``g`` lies inside the location's field of view (a ``window × window`` square
centred on it — the paper trains the regressor only on boxes overlapping the field of view by
50 % or more); of several such objects the smallest. The loss::

    L = 1/M Σ_all locations CE(softmax(c_ij), y_ij)  +  λ · 1/P Σ_positive ‖(l, t, r, b) − (l*, t*, r*, b*)‖² / box_scale²

(M locations, P positives, ``y = 0`` off objects; the regression loss is OverFeat's ℓ2).

**Merging.** OverFeat merges the boxes of one class that overlap, replacing each merged pair by
the mean of its coordinates. Here: greedy NMS picks the kept boxes (score order, IoU >
``merge_iou``), then each kept box becomes the score-weighted mean of all the boxes of its class
and image that it overlaps by more than ``merge_iou`` (itself included), so the boxes the window
grid proposes around an object are averaged rather than thrown away.

Departures: one scale instead of six, a class-agnostic regressor (the paper has one per
class), the backbone is a :class:`TinyResNet` to stride 8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int
from deepnotes.core.registry import MODELS
from deepnotes.detection.iou import box_iou
from deepnotes.detection.models._common import (
    check_images,
    check_in_shape,
    flatten_targets,
    select_detections,
)
from deepnotes.detection.models.backbone import ConvBNAct, TinyResNet
from deepnotes.detection.models.fcos import fcos_locations


def overfeat_targets(points: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, image: torch.Tensor,
                     batch: int, window: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and location: the class target ``(N, P)`` (1..C, 0 background) and the
    distances ``(l*, t*, r*, b*)`` ``(N, P, 4)`` to the assigned box (zeros on background)."""
    x, y = points[:, 0].view(-1, 1), points[:, 1].view(-1, 1)  # (P, 1) against the K boxes
    ltrb = torch.stack([x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y], -1)  # (P, K, 4)
    inside = ltrb.min(-1).values > 0
    half = window / 2
    ow = (torch.minimum(x + half, boxes[:, 2]) - torch.maximum(x - half, boxes[:, 0])).clamp(min=0)
    oh = (torch.minimum(y + half, boxes[:, 3]) - torch.maximum(y - half, boxes[:, 1])).clamp(min=0)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    seen = ow * oh >= 0.5 * area  # at least half of the box inside the field of view
    own = image.view(1, 1, -1) == torch.arange(batch, device=image.device).view(-1, 1, 1)  # (N, 1, K)
    cost = torch.where((inside & seen).unsqueeze(0) & own, area.view(1, 1, -1), torch.inf)  # (N, P, K)
    if cost.shape[-1] == 0:
        return (torch.zeros(batch, len(points), dtype=torch.int64, device=points.device),
                points.new_zeros(batch, len(points), 4))
    best_cost, best = cost.min(-1)  # the smallest fitting box
    hit = torch.isfinite(best_cost)
    cls = torch.where(hit, labels[best] + 1, 0)
    reg = ltrb[torch.arange(len(points), device=points.device).view(1, -1), best] * hit.unsqueeze(-1)
    return cls, reg


def merge_boxes(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, image: torch.Tensor, batch: int,
                merge_iou: float, score_thresh: float, detections_per_img: int) -> list[dict[str, torch.Tensor]]:
    """Greedy NMS picks the kept boxes; each kept box is then replaced by the score-weighted mean
    of the candidates of its image and class overlapping it by more than ``merge_iou``.
    ``labels`` 0..C-1 in, 1..C out."""
    keep = scores > score_thresh
    boxes, scores, labels, image = boxes[keep], scores[keep], labels[keep], image[keep]
    picked = select_detections(boxes, scores, labels, image, batch, score_thresh=-1.0, nms_thresh=merge_iou,
                               detections_per_img=detections_per_img)
    kept = torch.cat([p["boxes"] for p in picked])
    m = int(labels.max()) + 1 if len(labels) else 1  # groups: image × class
    kept_group = torch.cat([i * m + p["labels"] - 1 for i, p in enumerate(picked)])
    same = kept_group.view(-1, 1) == (image * m + labels).view(1, -1)
    weight = (box_iou(kept, boxes) > merge_iou) * same * scores.view(1, -1)
    merged = weight @ boxes / weight.sum(1, keepdim=True).clamp(min=1e-12)
    out, start = [], 0
    for p in picked:  # back to one dict per image (the output format)
        k = len(p["boxes"])
        out.append({"boxes": merged[start:start + k], "scores": p["scores"], "labels": p["labels"]})
        start += k
    return out


@MODELS.register("overfeat", task="detect",
                 description="OverFeat-style: a window classifier run fully convolutionally, boxes per location, merging",
                 zoo=dict(epochs=10, batch_size=16, lr=2e-3, schedule="cosine", data_kw={"n_val": 100}, target_map50=None))
class OverFeat(nn.Module):
    """A window classifier (``TinyResNet`` to stride 8, a ``kernel × kernel`` "fully connected"
    convolution, then ``1 × 1`` ones) applied to the whole image.

    Training mode → ``{"loss_cls", "loss_box"}``; eval mode → one ``{"boxes", "scores",
    "labels"}`` dict per image.
    """

    stride = 8
    loss_names = ("loss_box", "loss_cls")

    def __init__(self, in_shape=(3, 128, 128), num_classes: int = 3, width: int = 32, kernel: int = 3,
                 window: float = 48.0, box_scale: float = 32.0, lambda_box: float = 1.0, score_thresh: float = 0.05,
                 merge_iou: float = 0.5, detections_per_img: int = 100):
        super().__init__()
        self.in_shape = check_in_shape(in_shape, 8)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.window = check_float("window", window, min=0.0, min_inclusive=False)
        self.box_scale = check_float("box_scale", box_scale, min=0.0, min_inclusive=False)
        self.lambda_box = check_float("lambda_box", lambda_box, min=0.0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.merge_iou = check_float("merge_iou", merge_iou, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
        k = check_int("kernel", kernel, min=1)
        if k % 2 == 0:
            raise ValueError(f"kernel must be odd (centred windows), got {k}")
        w = check_int("width", width, min=2)
        self.backbone = TinyResNet(self.in_shape[0], (w // 2, w, 2 * w), stem_width=w // 2)
        self.fc = nn.Sequential(ConvBNAct(2 * w, 4 * w, k), nn.Conv2d(4 * w, 4 * w, 1), nn.ReLU())  # "FC" layers
        self.classifier = nn.Conv2d(4 * w, self.num_classes + 1, 1)
        self.regressor = nn.Conv2d(4 * w, 4, 1)
        size = (self.in_shape[1] // self.stride, self.in_shape[2] // self.stride)
        self.register_buffer("points", fcos_locations([size], (self.stride,))[0], persistent=False)

    def raw(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per location (row-major): class logits ``(N, P, C + 1)`` and distances ``(N, P, 4)`` in pixels."""
        x = self.fc(self.backbone(check_images(images, self.in_shape))[-1])
        cls = self.classifier(x).flatten(2).transpose(1, 2)
        box = self.regressor(x).flatten(2).transpose(1, 2) * self.box_scale
        return cls, box

    def forward(self, images: torch.Tensor, targets=None):
        if self.training and targets is None:
            raise ValueError("targets are required in training mode (call model.eval() to detect)")
        cls, box = self.raw(images)
        if self.training:
            return self.loss(cls, box, targets)
        return self.postprocess(cls, box)

    def loss(self, cls: torch.Tensor, box: torch.Tensor, targets) -> dict[str, torch.Tensor]:
        n, p, c1 = cls.shape
        boxes, labels, image = flatten_targets(targets, n, c1 - 1, cls.device, cls.dtype)
        cls_t, reg_t = overfeat_targets(self.points.to(cls.dtype), boxes, labels, image, n, self.window)
        pos = cls_t > 0
        loss_cls = F.cross_entropy(cls.reshape(-1, c1), cls_t.reshape(-1))
        if pos.any():
            loss_box = ((box[pos] - reg_t[pos]) / self.box_scale).pow(2).sum(1).mean()
        else:
            loss_box = box.sum() * 0
        return {"loss_cls": loss_cls, "loss_box": self.lambda_box * loss_box}

    def postprocess(self, cls: torch.Tensor, box: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        n, p, c1 = cls.shape
        c = c1 - 1
        scores = cls.softmax(-1)[..., 1:]  # (N, P, C)
        pts = self.points.to(box.dtype)
        box = box.clamp(min=0)  # a distance to a side is never negative (regressed values can be)
        boxes = torch.cat([pts - box[..., :2], pts + box[..., 2:]], -1)  # (N, P, 4)
        h, w = self.in_shape[1:]
        boxes = torch.stack([boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h),
                             boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)], -1)
        boxes = boxes.unsqueeze(2).expand(n, p, c, 4).reshape(-1, 4)
        labels = torch.arange(c, device=cls.device).expand(n, p, c).reshape(-1)
        image = torch.arange(n, device=cls.device).view(-1, 1, 1).expand(n, p, c).reshape(-1)
        return merge_boxes(boxes, scores.reshape(-1), labels, image, n, self.merge_iou, self.score_thresh,
                           self.detections_per_img)
