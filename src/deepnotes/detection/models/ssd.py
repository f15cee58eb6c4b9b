"""SSD, "Single Shot MultiBox Detector" (Liu et al., 2016): class scores and box offsets for a set
of default boxes on several feature maps at once, one 3 × 3 convolution per map.

**Default boxes.** Map ``k`` of ``m`` (an ``f_k × f_k`` grid) has the scale
``s_k = s_min + (s_max − s_min)(k − 1)/(m − 1)`` (a fraction of the image side) and at every cell
centre ``((j + ½)/f_k, (i + ½)/f_k)`` the boxes ``w = s_k √a, h = s_k / √a`` for the aspect ratios
``a ∈ {1, r, 1/r, …}`` plus one extra square of side ``s'_k = √(s_k s_{k+1})`` (``s_{m+1} = 1``).

**Matching.** Each ground-truth box takes the default box with which it has the highest IoU;
then every default box with IoU ≥ 0.5 with some ground truth is matched to the best of them. The
rest are background (class 0).

**Loss.** With ``N`` matched boxes::

    L = 1/N ( L_conf + α L_loc ),   α = 1
    L_loc  = Σ_{i ∈ Pos} Σ_{m ∈ cx,cy,w,h} smoothL1(l_i^m − ĝ_j^m)
    ĝ^cx = (g^cx − d^cx) / d^w / 0.1,  ĝ^w = log(g^w / d^w) / 0.2   (the "variances")
    L_conf = − Σ_{i ∈ Pos} log softmax(c_i)_{class_j} − Σ_{i ∈ Neg} log softmax(c_i)_0

where ``Neg`` is hard-negative mining: per image, the background boxes with the highest
background loss, at most three times as many as the image's positives (``L = 0`` when N = 0).
At test time: softmax scores of the C object classes per default box, the 1000 best (box, class)
pairs per image, per-class NMS at 0.45.

Here: the maps are the stride 8, 16, 32 and 64 stages of a :class:`TinyResNet` (the paper
adds extra layers after VGG-16; here they are further residual stages), for 128 × 128 images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.coder import BoxCoder
from deepnotes.detection.iou import box_iou
from deepnotes.detection.models._common import (
    check_images,
    check_in_shape,
    flatten_targets,
    select_detections,
)
from deepnotes.detection.models.backbone import TinyResNet


def ssd_default_boxes(feature_sizes, image_size, aspect_ratios, min_ratio: float = 0.1, max_ratio: float = 0.5,
                      clip: bool = True) -> torch.Tensor:
    """SSD's default boxes, xyxy pixels ``(Σ_k f_k,h · f_k,w · (2 + 2·len(ratios_k)), 4)``; order:
    level, row, column, then ``s_k, s'_k`` and each ratio ``r`` as ``(r, 1/r)``. ``clip`` clamps
    the widths and heights to the image (not the boxes) as torchvision does."""
    m = len(feature_sizes)
    scales = [min_ratio + (max_ratio - min_ratio) * k / (m - 1) for k in range(m)] if m > 1 else [min_ratio]
    scales = scales + [1.0] if m > 1 else [min_ratio, max_ratio]
    img_h, img_w = image_size
    out = []
    for k, (fh, fw) in enumerate(feature_sizes):
        s, s_next = scales[k], scales[k + 1]
        r = torch.tensor(list(aspect_ratios[k]), dtype=torch.float64).sqrt()
        w = torch.cat([torch.tensor([s, math.sqrt(s * s_next)], dtype=torch.float64), torch.stack([s * r, s / r], 1).flatten()])
        h = torch.cat([torch.tensor([s, math.sqrt(s * s_next)], dtype=torch.float64), torch.stack([s / r, s * r], 1).flatten()])
        if clip:
            w, h = w.clamp(0, 1), h.clamp(0, 1)
        cy, cx = torch.meshgrid((torch.arange(fh, dtype=torch.float64) + 0.5) / fh,
                                (torch.arange(fw, dtype=torch.float64) + 0.5) / fw, indexing="ij")
        cx, cy = cx.reshape(-1, 1), cy.reshape(-1, 1)  # (cells, 1) against (1, boxes per cell)
        out.append(torch.stack([(cx - w / 2) * img_w, (cy - h / 2) * img_h, (cx + w / 2) * img_w, (cy + h / 2) * img_h], -1).reshape(-1, 4))
    return torch.cat(out).float()


def ssd_match(iou: torch.Tensor, threshold: float = 0.5, image: torch.Tensor | None = None, batch: int = 1) -> torch.Tensor:
    """Match default boxes to ground truth, SSD's way.

    ``iou (Tensor[M, A])``: IoU of M ground-truth boxes with A default boxes. Each ground truth
    first gets its best default box; every other default box takes the ground truth of highest
    IoU if it is ≥ ``threshold``. Returns ``LongTensor[A]`` (a ground-truth index, −1 background)
    or, with ``image (LongTensor[M])`` naming each box's image among ``batch`` images sharing the
    default boxes, ``LongTensor[batch, A]`` (indices into the M boxes; a box matches only
    default boxes of its own image).
    """
    single = image is None
    if single:
        image = torch.zeros(iou.shape[0], dtype=torch.int64, device=iou.device)
    if iou.shape[0] == 0:
        matches = torch.full((batch, iou.shape[1]), -1, dtype=torch.int64, device=iou.device)
        return matches[0] if single else matches
    own = image.view(1, -1, 1) == torch.arange(batch, device=iou.device).view(-1, 1, 1)  # (N, M, 1)
    best, matches = torch.where(own, iou.unsqueeze(0), -1.0).max(1)  # (N, A)
    matches = torch.where(best >= threshold, matches, torch.full_like(matches, -1))
    matches[image, iou.argmax(1)] = torch.arange(iou.shape[0], device=iou.device)  # each box's best default box
    return matches[0] if single else matches


def hard_negative_mask(cls_loss: torch.Tensor, positive: torch.Tensor, neg_pos_ratio: int = 3) -> torch.Tensor:
    """Per image (row), the ``neg_pos_ratio × #positives`` background boxes of highest
    ``cls_loss`` (ties by position): ``BoolTensor`` of ``cls_loss``'s shape ``(N, A)``."""
    negative_loss = cls_loss.detach().masked_fill(positive, -math.inf)
    order = torch.argsort(negative_loss, dim=1, descending=True, stable=True)
    rank = torch.argsort(order, dim=1)  # each box's rank by background loss within its image
    return (rank < neg_pos_ratio * positive.sum(1, keepdim=True)) & ~positive


def ssd_loss(cls_logits: torch.Tensor, box_deltas: torch.Tensor, anchors: torch.Tensor, targets, coder: BoxCoder,
             iou_threshold: float = 0.5, neg_pos_ratio: int = 3) -> dict[str, torch.Tensor]:
    """SSD's two terms (module docstring), each divided by the number of matched boxes (min 1).

    ``cls_logits (N, A, C + 1)`` with column 0 the background; ``box_deltas (N, A, 4)`` encoded by
    ``coder``; ``anchors (A, 4)`` xyxy; ``targets`` with labels 1..C."""
    n, a, c1 = cls_logits.shape
    boxes, labels, image = flatten_targets(targets, n, c1 - 1, cls_logits.device, anchors.dtype)
    matched = ssd_match(box_iou(boxes, anchors), iou_threshold, image, n)  # (N, A) into the K boxes
    positive = matched >= 0
    gt = matched.clamp(min=0)
    cls_target = torch.zeros_like(matched)
    cls_target[positive] = labels[gt[positive]] + 1
    num_pos = max(int(positive.sum()), 1)
    cls_loss = F.cross_entropy(cls_logits.reshape(-1, c1), cls_target.reshape(-1), reduction="none").view(n, a)
    hard = hard_negative_mask(cls_loss, positive, neg_pos_ratio)
    if positive.any():
        pos_img, pos_anchor = positive.nonzero(as_tuple=True)
        target = coder.encode(boxes[gt[positive]], anchors[pos_anchor])
        loc = F.smooth_l1_loss(box_deltas[pos_img, pos_anchor], target, reduction="sum")
    else:
        loc = box_deltas.sum() * 0
    return {"loss_box": loc / num_pos, "loss_cls": (cls_loss[positive].sum() + cls_loss[hard].sum()) / num_pos}


@MODELS.register("ssd", task="detect", description="SSD: multi-scale default boxes, matching, hard-negative mining 3:1",
                 zoo=dict(epochs=12, batch_size=16, lr=2e-3, schedule="cosine", data_kw={"n_val": 100}, target_map50=0.80))
class SSD(nn.Module):
    """SSD on four stages (strides 8–64) of a :class:`TinyResNet`.

    Training mode → ``{"loss_cls", "loss_box"}``; eval mode → one ``{"boxes", "scores", "labels"}``
    dict per image.
    """

    strides = (8, 16, 32, 64)
    loss_names = ("loss_box", "loss_cls")

    def __init__(self, in_shape=(3, 128, 128), num_classes: int = 3, width: int = 32, aspect_ratios=(2, 3),
                 min_ratio: float = 0.1, max_ratio: float = 0.5, iou_threshold: float = 0.5, neg_pos_ratio: int = 3,
                 score_thresh: float = 0.01, nms_thresh: float = 0.45, detections_per_img: int = 100,
                 topk_candidates: int = 1000):
        super().__init__()
        self.in_shape = check_in_shape(in_shape, 64)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        check_type("aspect_ratios", aspect_ratios, (tuple, list))
        self.aspect_ratios = tuple(check_float(f"aspect_ratios[{i}]", r, min=0.0, min_inclusive=False)
                                   for i, r in enumerate(aspect_ratios))
        self.min_ratio = check_float("min_ratio", min_ratio, min=0.0, min_inclusive=False)
        self.max_ratio = check_float("max_ratio", max_ratio, min=self.min_ratio, max=1.0)
        self.iou_threshold = check_float("iou_threshold", iou_threshold, min=0.0, max=1.0)
        self.neg_pos_ratio = check_int("neg_pos_ratio", neg_pos_ratio, min=0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.nms_thresh = check_float("nms_thresh", nms_thresh, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
        self.topk_candidates = check_int("topk_candidates", topk_candidates, min=1)
        w = check_int("width", width, min=2)
        widths = (w // 2, w, 2 * w, 4 * w, 4 * w, 4 * w)  # strides 2 … 64
        self.backbone = TinyResNet(self.in_shape[0], widths, stem_width=w // 2)
        per_cell = 2 + 2 * len(self.aspect_ratios)
        self.cls_heads = nn.ModuleList([nn.Conv2d(c, per_cell * (self.num_classes + 1), 3, padding=1) for c in widths[2:]])
        self.box_heads = nn.ModuleList([nn.Conv2d(c, per_cell * 4, 3, padding=1) for c in widths[2:]])
        self.coder = BoxCoder((10.0, 10.0, 5.0, 5.0))  # SSD's variances 0.1, 0.2
        sizes = [(self.in_shape[1] // s, self.in_shape[2] // s) for s in self.strides]
        self.register_buffer("anchors", ssd_default_boxes(sizes, self.in_shape[1:], [self.aspect_ratios] * 4,
                                                          self.min_ratio, self.max_ratio), persistent=False)

    def raw(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits ``(N, A, C + 1)`` (column 0: background) and box deltas ``(N, A, 4)``."""
        feats = self.backbone(check_images(images, self.in_shape))[2:]
        n = images.shape[0]
        cls = [h(f).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes + 1) for h, f in zip(self.cls_heads, feats)]
        box = [h(f).permute(0, 2, 3, 1).reshape(n, -1, 4) for h, f in zip(self.box_heads, feats)]
        return torch.cat(cls, 1), torch.cat(box, 1)

    def forward(self, images: torch.Tensor, targets=None):
        if self.training and targets is None:
            raise ValueError("targets are required in training mode (call model.eval() to detect)")
        cls, box = self.raw(images)
        if self.training:
            return ssd_loss(cls, box, self.anchors.to(cls.dtype), targets, self.coder, self.iou_threshold, self.neg_pos_ratio)
        return self.postprocess(cls, box)

    def postprocess(self, cls: torch.Tensor, box: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        n, a, c1 = cls.shape
        c = c1 - 1
        k = min(self.topk_candidates, a * c)
        scores, index = cls.softmax(-1)[..., 1:].flatten(1).topk(k, dim=1)  # best (box, class) pairs per image
        anchor, labels = index // c, index % c
        deltas = box.gather(1, anchor.unsqueeze(-1).expand(-1, -1, 4))
        boxes = self.coder.decode(deltas.reshape(-1, 4), self.anchors.to(box.dtype)[anchor.reshape(-1)])
        h, w = self.in_shape[1:]
        boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                             boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], -1)
        image = torch.arange(n, device=cls.device).view(-1, 1).expand(-1, k)
        return select_detections(boxes, scores.reshape(-1), labels.reshape(-1), image.reshape(-1), n,
                                 score_thresh=self.score_thresh, nms_thresh=self.nms_thresh,
                                 detections_per_img=self.detections_per_img)
