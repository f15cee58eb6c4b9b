"""Faster R-CNN's Region Proposal Network (torchvision's ``RegionProposalNetwork``).

Forward, for a batch of images and their feature maps:

1. the :class:`RPNHead` scores every anchor (objectness logit) and predicts its deltas;
2. the deltas are decoded against the anchors with ``BoxCoder(weights=(1, 1, 1, 1))``;
3. :func:`~deepnotes.detection.two_stage.proposals.filter_proposals` turns them into proposals
   (top-N per level, clip, remove small, score threshold, NMS per level, top-N).

In training the anchors are also labelled — an anchor is positive if its IoU with some ground
truth is ≥ 0.7 or it is that object's best anchor, negative below 0.3, ignored between — 256 of
them are sampled per image (at most half positive), and the loss is

    L = BCE(objectness of the sampled anchors, labels)
      + Σ_{sampled positives} smoothL1_{β=1/9}(deltas − encoded targets) / #sampled.

The proposals themselves are detached: no gradient flows from the second stage into the RPN
through the boxes (approximate joint training).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor, check_type
from deepnotes.detection._validate import check_boxes
from deepnotes.detection.anchors import AnchorGenerator
from deepnotes.detection.coder import BoxCoder
from deepnotes.detection.iou import box_iou
from deepnotes.detection.matcher import BalancedPositiveNegativeSampler, Matcher
from deepnotes.detection.two_stage.proposals import filter_proposals
from deepnotes.detection.two_stage.rpn_head import RPNHead, flatten_predictions


def _phase_dict(name: str, value: Mapping[str, int]) -> dict[str, int]:
    check_type(name, value, Mapping)
    if set(value) != {"training", "testing"}:
        raise ValueError(f"{name} must have the keys 'training' and 'testing', got {sorted(value)}")
    return {k: check_int(f"{name}[{k!r}]", v, min=1) for k, v in value.items()}


def check_image_sizes(image_sizes, batch_shape: Sequence[int], n: int) -> list[tuple[int, int]]:
    """One ``(height, width)`` per image, each within the padded batch."""
    check_type("image_sizes", image_sizes, (list, tuple))
    if len(image_sizes) != n:
        raise ValueError(
            f"image_sizes must hold one (height, width) per image ({n}), got {len(image_sizes)}"
        )
    out = []
    for i, s in enumerate(image_sizes):
        check_type(f"image_sizes[{i}]", s, (list, tuple, torch.Size))
        if len(s) != 2:
            raise ValueError(f"image_sizes[{i}] must be (height, width), got {s!r}")
        h, w = (
            check_int(f"image_sizes[{i}][0]", s[0], min=1),
            check_int(f"image_sizes[{i}][1]", s[1], min=1),
        )
        if h > batch_shape[0] or w > batch_shape[1]:
            raise ValueError(
                f"image_sizes[{i}] = {(h, w)} exceeds the batch's {tuple(batch_shape)}"
            )
        out.append((h, w))
    return out


def check_targets(targets, n: int, *, labels: bool) -> list[dict[str, torch.Tensor]]:
    """One dict per image with ``boxes (Tensor[M, 4])`` (and ``labels (LongTensor[M])``)."""
    check_type("targets", targets, (list, tuple))
    if len(targets) != n:
        raise ValueError(f"targets must hold one dict per image ({n}), got {len(targets)}")
    for i, t in enumerate(targets):
        check_type(f"targets[{i}]", t, Mapping)
        if "boxes" not in t:
            raise ValueError(f"targets[{i}] must have a 'boxes' entry")
        check_boxes(f"targets[{i}]['boxes']", t["boxes"])
        if not t["boxes"].is_floating_point():
            raise TypeError(f"targets[{i}]['boxes'] must be floating point, got {t['boxes'].dtype}")
        if labels:
            if "labels" not in t:
                raise ValueError(f"targets[{i}] must have a 'labels' entry")
            check_tensor(f"targets[{i}]['labels']", t["labels"], ndim=1)
            if t["labels"].is_floating_point() or t["labels"].shape[0] != t["boxes"].shape[0]:
                raise ValueError(
                    f"targets[{i}]['labels'] must be an integer tensor with one label per box "
                    f"({t['boxes'].shape[0]}), got {t['labels'].dtype} of shape {tuple(t['labels'].shape)}"
                )
    return list(targets)


class RegionProposalNetwork(nn.Module):
    """Proposals (and in training the RPN losses) from feature maps; torchvision's arguments."""

    def __init__(
        self,
        anchor_generator: AnchorGenerator,
        head: RPNHead,
        fg_iou_thresh: float,
        bg_iou_thresh: float,
        batch_size_per_image: int,
        positive_fraction: float,
        pre_nms_top_n: Mapping[str, int],
        post_nms_top_n: Mapping[str, int],
        nms_thresh: float,
        score_thresh: float = 0.0,
    ) -> None:
        super().__init__()
        self.anchor_generator = check_type("anchor_generator", anchor_generator, AnchorGenerator)
        self.head = check_type("head", head, RPNHead)
        per_level = set(anchor_generator.num_anchors_per_location())
        if per_level != {head.num_anchors}:
            raise ValueError(
                f"head predicts {head.num_anchors} anchors per location but anchor_generator "
                f"places {sorted(per_level)}"
            )
        self.box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.proposal_matcher = Matcher(
            fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True
        )
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(
            batch_size_per_image, positive_fraction
        )
        self._pre_nms_top_n = _phase_dict("pre_nms_top_n", pre_nms_top_n)
        self._post_nms_top_n = _phase_dict("post_nms_top_n", post_nms_top_n)
        self.nms_thresh = check_float("nms_thresh", nms_thresh, min=0.0, max=1.0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.min_size = 1e-3

    def pre_nms_top_n(self) -> int:
        return self._pre_nms_top_n["training" if self.training else "testing"]

    def post_nms_top_n(self) -> int:
        return self._post_nms_top_n["training" if self.training else "testing"]

    def assign_targets_to_anchors(
        self, anchors: torch.Tensor, targets: Sequence[Mapping[str, torch.Tensor]]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per image: labels ``Tensor[R]`` (1 object, 0 background, −1 ignored) and the matched
        ground-truth box of every anchor ``Tensor[R, 4]`` (zeros where there is none)."""
        labels, matched_boxes = [], []
        for t in targets:
            gt = t["boxes"].to(anchors.dtype)
            if gt.numel() == 0:  # an image without objects: every anchor is background
                labels.append(anchors.new_zeros(anchors.shape[0]))
                matched_boxes.append(torch.zeros_like(anchors))
                continue
            matched = self.proposal_matcher(box_iou(gt, anchors))
            matched_boxes.append(gt[matched.clamp(min=0)])
            lab = (matched >= 0).to(anchors.dtype)
            lab[matched == Matcher.BELOW_LOW_THRESHOLD] = 0.0
            lab[matched == Matcher.BETWEEN_THRESHOLDS] = -1.0
            labels.append(lab)
        return labels, matched_boxes

    def compute_loss(
        self,
        objectness: torch.Tensor,
        pred_bbox_deltas: torch.Tensor,
        labels: list[torch.Tensor],
        regression_targets: list[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(objectness loss, box loss)`` over the sampled anchors of all images.

        With no positive anchor (no objects in the batch) the box loss is 0, not NaN.
        """
        pos, neg = self.fg_bg_sampler(labels)
        pos_idx = torch.where(torch.cat(pos))[0]
        sampled = torch.where(torch.cat(pos) | torch.cat(neg))[0]
        labels_all, targets_all = torch.cat(labels), torch.cat(regression_targets)
        box_loss = F.smooth_l1_loss(
            pred_bbox_deltas[pos_idx], targets_all[pos_idx], beta=1 / 9, reduction="sum"
        ) / max(sampled.numel(), 1)
        objectness_loss = F.binary_cross_entropy_with_logits(
            objectness.flatten()[sampled], labels_all[sampled]
        )
        return objectness_loss, box_loss

    def forward(
        self,
        images: torch.Tensor,
        features: Mapping[str, torch.Tensor] | Sequence[torch.Tensor],
        image_sizes: Sequence[Sequence[int]] | None = None,
        targets: Sequence[Mapping[str, torch.Tensor]] | None = None,
    ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """``images (Tensor[N, C, H, W])`` the padded batch (only its shape is read), ``features``
        one ``Tensor[N, C', H_l, W_l]`` per level (a dict in level order or a list),
        ``image_sizes`` the true ``(height, width)`` per image (default: the batch's).

        Returns the proposals (one ``Tensor[K_i, 4]`` per image) and the losses
        ``{"loss_objectness", "loss_rpn_box_reg"}`` (empty in eval mode).
        """
        check_tensor("images", images, ndim=4)
        n, batch_shape = images.shape[0], tuple(images.shape[-2:])
        if image_sizes is None:
            image_sizes = [batch_shape] * n
        image_sizes = check_image_sizes(image_sizes, batch_shape, n)
        if isinstance(features, Mapping):
            features = list(features.values())
        check_type("features", features, (list, tuple))
        levels = len(self.anchor_generator.sizes)
        if len(features) != levels:
            raise ValueError(
                f"features must hold one map per anchor level ({levels}), got {len(features)}"
            )
        for i, f in enumerate(features):
            check_tensor(f"features[{i}]", f, ndim=4, floating=True)
            if f.shape[0] != n:
                raise ValueError(f"features[{i}] has batch size {f.shape[0]}, images has {n}")
            if f.shape[-2] > batch_shape[0] or f.shape[-1] > batch_shape[1]:
                raise ValueError(
                    f"features[{i}] is {tuple(f.shape[-2:])}, larger than the image {batch_shape}: "
                    "more anchor locations than the image has pixels"
                )
        if self.training:
            if targets is None:
                raise ValueError("targets must be given in training mode")
            targets = check_targets(targets, n, labels=False)

        logits, deltas = self.head(features)
        anchors = self.anchor_generator(
            batch_shape, [f.shape[-2:] for f in features], features[0].dtype
        )
        num_anchors_per_level = [lg[0].numel() for lg in logits]
        objectness, pred_bbox_deltas = flatten_predictions(logits, deltas)
        anchors_rep = anchors.repeat(n, 1)
        proposals = self.box_coder.decode(pred_bbox_deltas.detach(), anchors_rep).view(n, -1, 4)
        boxes, _scores = filter_proposals(
            proposals,
            objectness,
            image_sizes,
            num_anchors_per_level,
            pre_nms_top_n=self.pre_nms_top_n(),
            post_nms_top_n=self.post_nms_top_n(),
            nms_thresh=self.nms_thresh,
            score_thresh=self.score_thresh,
            min_size=self.min_size,
        )
        losses: dict[str, torch.Tensor] = {}
        if self.training:
            labels, matched = self.assign_targets_to_anchors(anchors, targets)
            regression_targets = [self.box_coder.encode(m, anchors) for m in matched]
            loss_obj, loss_box = self.compute_loss(
                objectness, pred_bbox_deltas, labels, regression_targets
            )
            losses = {"loss_objectness": loss_obj, "loss_rpn_box_reg": loss_box}
        return boxes, losses
