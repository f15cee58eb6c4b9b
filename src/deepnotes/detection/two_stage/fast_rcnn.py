"""Fast R-CNN (Girshick, 2015): one network, trained in one stage, on external proposals.

Per image: the convolutions run once (a :class:`TinyResNet`, stride 8); every Selective Search
proposal is max-pooled from the feature map into ``7 × 7`` bins (RoI pooling,
:func:`deepnotes.detection.roi_pool` — SPP with a single level); two fully connected layers
(fc6, fc7) feed two siblings: a softmax over ``C + 1`` classes and ``4·(C + 1)`` class-specific
box deltas. The SVMs and separate regressors of R-CNN/SPPNet are gone: both outputs are learned
together with the multi-task loss

    L = −log p_u + λ·[u ≥ 1]·Σ_{i ∈ x,y,w,h} smoothL1_β(t^u_i − v_i),  λ = 1, β = 1,

averaged over the sampled RoIs, with ``v`` the targets encoded by ``BoxCoder((10, 10, 5, 5))``
(the fixed scaling stands in for the paper's normalisation of the targets to unit variance).

RoI sampling, per image: the ground-truth boxes are appended to the proposals (as torchvision
does, so that every object has a foreground RoI); ``batch_size_per_image`` (64) RoIs are drawn,
at most ``positive_fraction`` (25 %) foreground (IoU ≥ 0.5), background from IoU in
``[bg_iou_lo, 0.5)`` = ``[0.1, 0.5)`` (the paper's heuristic hard-example mining); the paper's
mini-batch is 2 images × 64 RoIs. In an image without objects every proposal is background.
The zoo trains with ``bg_iou_lo=0``: on ``shapes`` most of the ~70 proposals of an image touch no
object, and the paper's lower bound keeps every one of them out of training, so the classifier
never sees plain background — which it must reject at test time. (Not an ablation, one run each:
with 0.1, 120 steps of 8 images reached mAP@0.5 0.21; the zoo run with 0 was at 0.45 after 150.)

Inference: softmax scores, per-class decoding, clipping, score > ``score_thresh``, per-class NMS
(0.3, as the paper), the ``detections_per_img`` best.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.coder import BoxCoder
from deepnotes.detection.models._common import check_images, flatten_targets
from deepnotes.detection.models.backbone import TinyResNet
from deepnotes.detection.roi_pool import roi_pool
from deepnotes.detection.two_stage.box_head import FastRCNNPredictor, TwoMLPHead
from deepnotes.detection.two_stage.region_proposals import (
    SelectiveSearchProposals,
    label_proposals,
    per_class_detections,
    sample_rois,
)


def fast_rcnn_loss(class_logits: torch.Tensor, box_regression: torch.Tensor, labels: torch.Tensor,
                   regression_targets: torch.Tensor, beta: float = 1.0, box_weight: float = 1.0):
    """``(L_cls, λ·L_loc)`` of the paper's multi-task loss over ``R`` sampled RoIs.

    class_logits Tensor[R, C+1]; box_regression Tensor[R, 4(C+1)]; labels LongTensor[R] (0 =
    background); regression_targets Tensor[R, 4] (read for foreground RoIs only). Both terms are
    means over the ``R`` RoIs; with no foreground the box term is 0.
    """
    loss_cls = F.cross_entropy(class_logits, labels)
    fg = torch.where(labels > 0)[0]
    deltas = box_regression.view(len(labels), -1, 4)[fg, labels[fg]]
    loss_box = F.smooth_l1_loss(deltas, regression_targets[fg], beta=beta, reduction="sum") / max(len(labels), 1)
    return loss_cls, box_weight * loss_box


@MODELS.register(
    "fast_rcnn", task="detect",
    description="Fast R-CNN: Selective Search proposals, RoI pooling, joint softmax + smooth-L1 training",
    zoo={"epochs": 6, "batch_size": 8, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0,
         "model_kw": {"bg_iou_lo": 0.0}, "data_kw": {"n_train": 600, "n_val": 50}, "schedule": "cosine",
         "target_map50": 0.50, "budget_minutes": 15.0},
)
class FastRCNN(nn.Module):
    """Fast R-CNN on a three-stage :class:`TinyResNet` (stride 8, ``width`` channels).

    Training mode → ``{"loss_classifier", "loss_box_reg"}``; eval mode → detections per image.
    """

    stride = 8
    loss_names = ("loss_box_reg", "loss_classifier")

    def __init__(self, in_shape=(3, 128, 128), num_classes: int = 3, width: int = 64, pool_size: int = 7,
                 representation_size: int = 256, proposal_mode: str = "single", max_proposals: int = 200,
                 batch_size_per_image: int = 64, positive_fraction: float = 0.25, fg_iou_thresh: float = 0.5,
                 bg_iou_lo: float = 0.1, box_weight: float = 1.0, score_thresh: float = 0.05,
                 nms_thresh: float = 0.3, detections_per_img: int = 100):
        super().__init__()
        check_type("in_shape", in_shape, (tuple, list))
        if len(in_shape) != 3 or in_shape[0] != 3:
            raise ValueError(f"in_shape must be (3, H, W) (RGB images for Selective Search), got {tuple(in_shape)}")
        self.in_shape = tuple(int(v) for v in in_shape)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        w = check_int("width", width, min=4)
        self.pool_size = check_int("pool_size", pool_size, min=1)
        self.proposer = SelectiveSearchProposals(proposal_mode, max_proposals)
        self.batch_size_per_image = check_int("batch_size_per_image", batch_size_per_image, min=1)
        self.positive_fraction = check_float("positive_fraction", positive_fraction, min=0.0, max=1.0)
        self.fg_iou_thresh = check_float("fg_iou_thresh", fg_iou_thresh, min=0.0, max=1.0)
        self.bg_iou_lo = check_float("bg_iou_lo", bg_iou_lo, min=0.0, max=self.fg_iou_thresh)
        self.box_weight = check_float("box_weight", box_weight, min=0.0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.nms_thresh = check_float("nms_thresh", nms_thresh, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
        self.backbone = TinyResNet(3, (w // 4, w // 2, w), stem_width=w // 4)
        self.box_head = TwoMLPHead(w * self.pool_size ** 2, check_int("representation_size", representation_size, min=1))
        self.box_predictor = FastRCNNPredictor(representation_size, self.num_classes + 1)
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))

    def heads(self, fmap: torch.Tensor, boxes: list[torch.Tensor]):
        """Class logits ``Tensor[R, C+1]`` and deltas ``Tensor[R, 4(C+1)]`` of every box."""
        pooled = roi_pool(fmap, boxes, self.pool_size, spatial_scale=1.0 / self.stride)
        return self.box_predictor(self.box_head(pooled))

    def sample(self, proposals, targets):
        """Per image the sampled RoIs, and over the batch their labels and regression targets."""
        rois, labels, reg = [], [], []
        per_image = []
        for props, t in zip(proposals, targets):
            gt, lab = t["boxes"].reshape(-1, 4).to(props), t["labels"].reshape(-1).to(props.device, torch.int64)
            cand = torch.cat([props, gt])
            lab_i, matched, _ = label_proposals(cand, gt, lab, self.fg_iou_thresh, self.bg_iou_lo, self.fg_iou_thresh)
            per_image.append((cand, lab_i, matched))
        picked = sample_rois([p[1] for p in per_image], self.batch_size_per_image, self.positive_fraction)
        for (cand, lab_i, matched), idx in zip(per_image, picked):
            fg = lab_i[idx] > 0
            target = cand.new_zeros(len(idx), 4)
            if fg.any():
                target[fg] = self.box_coder.encode(matched[idx][fg], cand[idx][fg])
            rois.append(cand[idx])
            labels.append(lab_i[idx])
            reg.append(target)
        return rois, torch.cat(labels), torch.cat(reg)

    def forward(self, images: torch.Tensor, targets=None):
        check_images(images, self.in_shape)
        proposals = self.proposer(images, cache=self.training)
        if self.training and targets is None:
            raise ValueError("targets are required in training mode (call model.eval() to detect)")
        if self.training:
            check_type("targets", targets, (list, tuple))
            flatten_targets(targets, len(images), self.num_classes, images.device)  # validates them
        fmap = self.backbone(images)[-1]
        if not self.training:
            return self.detect(fmap, proposals)
        rois, labels, reg = self.sample([p.to(images) for p in proposals], targets)
        if not len(labels):
            zero = fmap.sum() * 0.0
            return {"loss_classifier": zero, "loss_box_reg": zero}
        logits, deltas = self.heads(fmap, rois)
        loss_cls, loss_box = fast_rcnn_loss(logits, deltas, labels, reg, beta=1.0, box_weight=self.box_weight)
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box}

    def detect(self, fmap: torch.Tensor, proposals: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        counts = [len(p) for p in proposals]
        rois = [p.to(fmap) for p in proposals]
        logits, deltas = self.heads(fmap, rois)
        scores = F.softmax(logits, -1)[:, 1:]
        boxes = self.box_coder.decode(deltas, torch.cat(rois)).view(-1, self.num_classes + 1, 4)[:, 1:]
        return per_class_detections(scores, boxes, counts, self.in_shape[1:], score_thresh=self.score_thresh,
                                    nms_thresh=self.nms_thresh, detections_per_img=self.detections_per_img)
