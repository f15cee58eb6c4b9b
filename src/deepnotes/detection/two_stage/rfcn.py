"""R-FCN, "Object Detection via Region-based Fully Convolutional Networks" (Dai et al., 2016).

Faster R-CNN runs a per-RoI subnetwork (fc6, fc7) on every proposal; R-FCN moves all the
computation before the RoIs, so the per-RoI work is an average and a vote:

1. a :class:`TinyResNet` (stride 8) and a 1 × 1 conv give the shared feature map;
2. the RPN of :mod:`deepnotes.detection.two_stage.rpn` proposes boxes on it;
3. a 1 × 1 conv produces ``k² · (C + 1)`` **position-sensitive score maps** — for each class, one
   map per cell of a ``k × k`` grid over an object ("top-left part of a cat", …) — and another
   ``k² · 4`` class-agnostic box maps;
4. **position-sensitive RoI pooling** (:func:`ps_roi_pool`) averages, for bin ``(i, j)`` of the
   RoI, only the ``(i, j)``-th map of each class: ``r_c(i, j) = mean_{(x, y) ∈ bin(i, j)} z_{i,j,c}(x, y)``;
5. the bins **vote by averaging**: ``r_c = (1/k²) Σ_{i,j} r_c(i, j)``, softmax over the ``C + 1``
   classes; the box deltas are voted the same way.

Training: the RPN losses plus, on RoIs sampled from the RPN's (detached) proposals with the
ground truth appended, cross-entropy and smooth L1 (β = 1) on foreground RoIs (IoU ≥ 0.5;
background below). With ``ohem=True`` (the paper's online hard example mining, nearly free here
because the per-RoI cost is tiny) the loss of *every* labelled RoI is computed and the
``batch_size_per_image`` RoIs with the highest loss of each image are back-propagated; with
``ohem=False`` a random sample with at most 25 % foreground is used instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.anchors import AnchorGenerator
from deepnotes.detection.coder import BoxCoder
from deepnotes.detection.models._common import check_images, check_in_shape, flatten_targets
from deepnotes.detection.models.backbone import TinyResNet
from deepnotes.detection.two_stage.ps_roi_pool import ps_roi_pool
from deepnotes.detection.two_stage.region_proposals import (
    label_proposals,
    per_class_detections,
    sample_rois,
)
from deepnotes.detection.two_stage.rpn import RegionProposalNetwork
from deepnotes.detection.two_stage.rpn_head import RPNHead


def ohem_select(losses: torch.Tensor, counts: list[int], per_image: int) -> torch.Tensor:
    """Indices of the ``per_image`` highest losses within each image's block of ``counts``."""
    picked, start = [], 0
    for n in counts:  # images hold different numbers of RoIs
        top = losses[start:start + n].detach().topk(min(per_image, n)).indices
        picked.append(top + start)
        start += n
    return torch.cat(picked) if picked else losses.new_zeros(0, dtype=torch.int64)


@MODELS.register(
    "rfcn", task="detect",
    description="R-FCN: RPN proposals, position-sensitive score maps and RoI pooling, vote by averaging",
    zoo={"epochs": 6, "batch_size": 8, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0,
         "model_kw": {}, "data_kw": {"n_train": 600, "n_val": 50}, "schedule": "cosine", "target_map50": 0.50, "budget_minutes": 15.0},
)
class RFCN(nn.Module):
    """R-FCN with ``k × k`` position-sensitive bins on a stride-8 :class:`TinyResNet`.

    Training mode → ``{"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}``;
    eval mode → one ``{"boxes", "scores", "labels"}`` dict per image.
    """

    stride = 8
    loss_names = ("loss_box_reg", "loss_classifier", "loss_objectness", "loss_rpn_box_reg")

    def __init__(self, in_shape=(3, 128, 128), num_classes: int = 3, width: int = 64, k: int = 3,
                 anchor_sizes=(16, 32, 64), aspect_ratios=(0.5, 1.0, 2.0), rpn_pre_nms_top_n=(600, 300),
                 rpn_post_nms_top_n=(300, 100), ohem: bool = True, batch_size_per_image: int = 64,
                 fg_iou_thresh: float = 0.5, score_thresh: float = 0.05, nms_thresh: float = 0.3,
                 detections_per_img: int = 100):
        super().__init__()
        self.in_shape = check_in_shape(in_shape, self.stride)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        w = check_int("width", width, min=4)
        self.k = check_int("k", k, min=1)
        self.ohem = bool(check_type("ohem", ohem, bool))
        self.batch_size_per_image = check_int("batch_size_per_image", batch_size_per_image, min=1)
        self.fg_iou_thresh = check_float("fg_iou_thresh", fg_iou_thresh, min=0.0, max=1.0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.nms_thresh = check_float("nms_thresh", nms_thresh, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
        self.backbone = TinyResNet(self.in_shape[0], (w // 4, w // 2, w), stem_width=w // 4)
        self.conv_new = nn.Sequential(nn.Conv2d(w, w, 1), nn.ReLU())
        anchors = AnchorGenerator((tuple(anchor_sizes),), (tuple(aspect_ratios),))
        pre, post = rpn_pre_nms_top_n, rpn_post_nms_top_n
        self.rpn = RegionProposalNetwork(
            anchors, RPNHead(w, anchors.num_anchors_per_location()[0]), 0.7, 0.3, 256, 0.5,
            {"training": pre[0], "testing": pre[1]}, {"training": post[0], "testing": post[1]}, 0.7,
        )
        self.cls_maps = nn.Conv2d(w, self.k * self.k * (self.num_classes + 1), 1)  # position-sensitive scores
        self.box_maps = nn.Conv2d(w, self.k * self.k * 4, 1)  # class-agnostic box maps
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))

    def vote(self, fmap: torch.Tensor, boxes: list[torch.Tensor]):
        """Class logits ``Tensor[R, C+1]`` and box deltas ``Tensor[R, 4]``: PS-RoI pooling, then the
        average over the ``k²`` bins."""
        scale = 1.0 / self.stride
        logits = ps_roi_pool(self.cls_maps(fmap), boxes, self.k, scale).mean((2, 3))
        deltas = ps_roi_pool(self.box_maps(fmap), boxes, self.k, scale).mean((2, 3))
        return logits, deltas

    def forward(self, images: torch.Tensor, targets=None):
        check_images(images, self.in_shape)
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode (call model.eval() to detect)")
            check_type("targets", targets, (list, tuple))
            flatten_targets(targets, len(images), self.num_classes, images.device)  # validates them
            targets = [{"boxes": t["boxes"].reshape(-1, 4).to(images),
                        "labels": t["labels"].reshape(-1).to(images.device, torch.int64)} for t in targets]
        fmap = self.conv_new(self.backbone(images)[-1])
        proposals, rpn_losses = self.rpn(images, [fmap], targets=targets)
        if not self.training:
            return self.detect(fmap, proposals)
        return {**rpn_losses, **self.head_loss(fmap, proposals, targets)}

    def head_loss(self, fmap, proposals, targets) -> dict[str, torch.Tensor]:
        rois, labels, matched = [], [], []
        for props, t in zip(proposals, targets):
            cand = torch.cat([props.detach(), t["boxes"]])
            lab, m, _ = label_proposals(cand, t["boxes"], t["labels"], self.fg_iou_thresh, 0.0, self.fg_iou_thresh)
            keep = lab >= 0
            rois.append(cand[keep])
            labels.append(lab[keep])
            matched.append(m[keep])
        if not self.ohem:
            picked = sample_rois(labels, self.batch_size_per_image, 0.25)
            rois = [r[i] for r, i in zip(rois, picked)]
            labels = [lab[i] for lab, i in zip(labels, picked)]
            matched = [m[i] for m, i in zip(matched, picked)]
        counts = [len(r) for r in rois]
        rois_all, lab_all, m_all = torch.cat(rois), torch.cat(labels), torch.cat(matched)
        if not len(lab_all):
            zero = fmap.sum() * 0.0
            return {"loss_classifier": zero, "loss_box_reg": zero}
        logits, deltas = self.vote(fmap, rois)
        fg = lab_all > 0
        target = torch.zeros_like(deltas)
        if fg.any():
            target[fg] = self.box_coder.encode(m_all[fg], rois_all[fg])
        cls_each = F.cross_entropy(logits, lab_all, reduction="none")
        box_each = F.smooth_l1_loss(deltas, target, beta=1.0, reduction="none").sum(1) * fg
        if self.ohem:  # back-propagate only the hardest RoIs of each image
            hard = ohem_select(cls_each + box_each, counts, self.batch_size_per_image)
            cls_each, box_each = cls_each[hard], box_each[hard]
        return {"loss_classifier": cls_each.mean(), "loss_box_reg": box_each.sum() / max(len(box_each), 1)}

    def detect(self, fmap: torch.Tensor, proposals: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        counts = [len(p) for p in proposals]
        logits, deltas = self.vote(fmap, proposals)
        scores = F.softmax(logits, -1)[:, 1:]
        boxes = self.box_coder.decode(deltas, torch.cat(proposals)) if sum(counts) else deltas.new_zeros(0, 4)
        boxes = boxes.unsqueeze(1).expand(-1, self.num_classes, 4)
        return per_class_detections(scores, boxes, counts, self.in_shape[1:], score_thresh=self.score_thresh,
                                    nms_thresh=self.nms_thresh, detections_per_img=self.detections_per_img)
