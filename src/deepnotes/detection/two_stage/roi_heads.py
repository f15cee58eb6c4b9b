"""Fast R-CNN's second stage on proposals (torchvision's ``RoIHeads``, boxes only).

Every proposal is pooled from the feature maps (:class:`MultiScaleRoIAlign`), passed through the
box head and scored over ``num_classes`` classes (0 = background) with one box per class.

**Training.** The ground-truth boxes are appended to each image's proposals; a proposal takes the
label of the object it overlaps with IoU ≥ ``fg_iou_thresh``, background below
``bg_iou_thresh``, and is ignored between. ``batch_size_per_image`` RoIs are sampled (at most
``positive_fraction`` foreground). The multi-task loss is

    L = CE(class logits, labels) + Σ_{foreground} smoothL1_{β=1/9}(deltas of the true class − targets) / #RoIs

with targets encoded by ``BoxCoder(weights=(10, 10, 5, 5))`` (the default ``bbox_reg_weights``).

**Inference** (:meth:`RoIHeads.postprocess_detections`): softmax scores; each proposal decoded
into one box per class; boxes clipped to the image; background dropped; then score > ``score_thresh``,
sides ≥ 0.01, NMS per class, and the ``detections_per_img`` best.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor, check_type
from deepnotes.detection._validate import check_boxes
from deepnotes.detection.boxes import clip_boxes_to_image, remove_small_boxes
from deepnotes.detection.coder import BoxCoder
from deepnotes.detection.iou import box_iou
from deepnotes.detection.matcher import BalancedPositiveNegativeSampler, Matcher
from deepnotes.detection.nms import batched_nms
from deepnotes.detection.two_stage.rpn import check_targets


def fastrcnn_loss(
    class_logits: torch.Tensor,
    box_regression: torch.Tensor,
    labels: Sequence[torch.Tensor],
    regression_targets: Sequence[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(classification loss, box loss)``; only the true class's deltas of foreground RoIs are regressed.

    Without foreground RoIs the box loss is 0. Training always has RoIs to classify as long as some
    image has a proposal or an object (the ground truth is appended to the proposals); with none at
    all both losses are 0 (not NaN), still connected to the graph.
    """
    labels = torch.cat(list(labels))
    targets = torch.cat(list(regression_targets))
    if labels.numel() == 0:  # no RoI at all (no proposal survived and no object): nothing to learn
        zero = class_logits.sum() * 0.0 + box_regression.sum() * 0.0
        return zero, zero.clone()
    classification_loss = F.cross_entropy(class_logits, labels)
    pos = torch.where(labels > 0)[0]
    per_class = box_regression.reshape(class_logits.shape[0], -1, 4)
    box_loss = F.smooth_l1_loss(
        per_class[pos, labels[pos]], targets[pos], beta=1 / 9, reduction="sum"
    ) / max(labels.numel(), 1)
    return classification_loss, box_loss


class RoIHeads(nn.Module):
    """Box classification and class-specific regression on RoIs; torchvision's arguments (boxes only)."""

    def __init__(
        self,
        box_roi_pool: nn.Module,
        box_head: nn.Module,
        box_predictor: nn.Module,
        fg_iou_thresh: float,
        bg_iou_thresh: float,
        batch_size_per_image: int,
        positive_fraction: float,
        bbox_reg_weights: Sequence[float] | None,
        score_thresh: float,
        nms_thresh: float,
        detections_per_img: int,
    ) -> None:
        super().__init__()
        self.box_roi_pool = check_type("box_roi_pool", box_roi_pool, nn.Module)
        self.box_head = check_type("box_head", box_head, nn.Module)
        self.box_predictor = check_type("box_predictor", box_predictor, nn.Module)
        self.proposal_matcher = Matcher(
            fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=False
        )
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(
            batch_size_per_image, positive_fraction
        )
        self.box_coder = BoxCoder(
            bbox_reg_weights if bbox_reg_weights is not None else (10.0, 10.0, 5.0, 5.0)
        )
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.nms_thresh = check_float("nms_thresh", nms_thresh, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)

    # --- training: which RoIs to learn from -------------------------------------------------
    def assign_targets_to_proposals(self, proposals, gt_boxes, gt_labels):
        """Per image: the matched ground-truth index (clamped to ≥ 0) and the label of each proposal
        (the object's class, 0 background, −1 ignored)."""
        matched_idxs, labels = [], []
        for props, boxes, lab in zip(proposals, gt_boxes, gt_labels):
            if boxes.numel() == 0:  # no objects: every proposal is background
                matched_idxs.append(torch.zeros(props.shape[0], dtype=torch.int64))
                labels.append(torch.zeros(props.shape[0], dtype=torch.int64))
                continue
            matched = self.proposal_matcher(box_iou(boxes, props))
            clamped = matched.clamp(min=0)
            lab = lab[clamped].to(torch.int64)
            lab[matched == Matcher.BELOW_LOW_THRESHOLD] = 0
            lab[matched == Matcher.BETWEEN_THRESHOLDS] = -1
            matched_idxs.append(clamped)
            labels.append(lab)
        return matched_idxs, labels

    def select_training_samples(self, proposals, targets):
        """Append the ground truth to the proposals, label and sample them; returns the sampled
        proposals, their labels and regression targets (per image)."""
        dtype = proposals[0].dtype
        gt_boxes = [t["boxes"].to(dtype) for t in targets]
        gt_labels = [t["labels"] for t in targets]
        proposals = [torch.cat((p, g)) for p, g in zip(proposals, gt_boxes)]
        matched_idxs, labels = self.assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        pos, neg = self.fg_bg_sampler(labels)
        out_props, out_labels, out_targets = [], [], []
        for i in range(len(proposals)):  # per image
            keep = torch.where(pos[i] | neg[i])[0]
            gt = gt_boxes[i] if gt_boxes[i].numel() else gt_boxes[i].new_zeros((1, 4))
            out_props.append(proposals[i][keep])
            out_labels.append(labels[i][keep])
            out_targets.append(self.box_coder.encode(gt[matched_idxs[i][keep]], proposals[i][keep]))
        return out_props, out_labels, out_targets

    # --- inference: from scores and deltas to detections ------------------------------------
    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        """Per image a dict ``{"boxes": Tensor[D, 4], "scores": Tensor[D], "labels": LongTensor[D]}``."""
        num_classes = class_logits.shape[-1]
        counts = [p.shape[0] for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression, torch.cat(proposals)).reshape(
            -1, num_classes, 4
        )
        pred_scores = F.softmax(class_logits, -1)
        results = []
        for boxes, scores, shape in zip(
            pred_boxes.split(counts), pred_scores.split(counts), image_shapes
        ):
            boxes = clip_boxes_to_image(boxes.reshape(-1, 4), tuple(shape)).reshape(
                -1, num_classes, 4
            )
            labels = torch.arange(num_classes).view(1, -1).expand_as(scores)
            # drop the background column, then treat every (proposal, class) pair as one candidate
            boxes, scores, labels = (
                boxes[:, 1:].reshape(-1, 4),
                scores[:, 1:].reshape(-1),
                labels[:, 1:].reshape(-1),
            )
            keep = torch.where(scores > self.score_thresh)[0]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = remove_small_boxes(boxes, min_size=1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = batched_nms(boxes.detach(), scores.detach(), labels, self.nms_thresh)
            keep = keep[: self.detections_per_img]
            results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return results

    def forward(
        self,
        features: Mapping[str, torch.Tensor],
        proposals: Sequence[torch.Tensor],
        image_shapes: Sequence[Sequence[int]],
        targets: Sequence[Mapping[str, torch.Tensor]] | None = None,
    ) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        """Detections per image (eval) or the losses ``{"loss_classifier", "loss_box_reg"}`` (training)."""
        check_type("features", features, Mapping)
        check_type("proposals", proposals, (list, tuple))
        check_type("image_shapes", image_shapes, (list, tuple))
        if len(proposals) != len(image_shapes):
            raise ValueError(
                f"proposals and image_shapes must have one entry per image, got {len(proposals)} and {len(image_shapes)}"
            )
        for i, p in enumerate(proposals):
            check_boxes(f"proposals[{i}]", p)
            if not p.is_floating_point():
                raise TypeError(f"proposals[{i}] must be floating point, got {p.dtype}")
        labels = regression_targets = None
        if self.training:
            if targets is None:
                raise ValueError("targets must be given in training mode")
            targets = check_targets(targets, len(proposals), labels=True)
            proposals, labels, regression_targets = self.select_training_samples(
                list(proposals), targets
            )
        box_features = self.box_head(
            self.box_roi_pool(features, list(proposals), list(image_shapes))
        )
        class_logits, box_regression = self.box_predictor(box_features)
        check_tensor("class_logits", class_logits, ndim=2)
        if box_regression.shape != (class_logits.shape[0], 4 * class_logits.shape[1]):
            raise ValueError(
                f"box_predictor must return deltas of shape (K, 4 × {class_logits.shape[1]}), got {tuple(box_regression.shape)}"
            )
        if self.training:
            loss_cls, loss_box = fastrcnn_loss(
                class_logits, box_regression, labels, regression_targets
            )
            return [], {"loss_classifier": loss_cls, "loss_box_reg": loss_box}
        return self.postprocess_detections(
            class_logits, box_regression, list(proposals), image_shapes
        ), {}
