"""Mask Scoring R-CNN (Huang et al., 2019): learn how good each predicted mask is, and rank masks by it.

Mask R-CNN ranks its masks by the box classifier's score, which says how sure the model is of
the *class*, not how well the mask covers the object. A **MaskIoU head** regresses the IoU of
each predicted mask with its object:

    input  = [RoI features (C × S × S), max-pool₂(predicted mask of the class) (1 × S × S)]
    layers = 4 × (3 × 3 conv + ReLU), the last with stride 2 → 2 × (fc + ReLU) → fc → num_classes

(one IoU output per class; the channel of the RoI's class is read). The mask fed in is the
sigmoid probability, detached: the head learns to *judge* the mask, not to change it.

**Target.** The real mask IoU: the predicted mask is pasted into the image
(:func:`~deepnotes.detection.two_stage.paste_masks.paste_masks_in_image`), binarized at 0.5 and
compared with the full ground-truth mask of the matched object — so an object cut off by the
RoI's box counts as missed pixels (the paper corrects the RoI-frame IoU by the ratio of the
object's area inside the box to its total area; comparing in the image does that exactly).

**Loss.** ``L_maskiou = mean_k (ŝ_{k, c_k} − IoU_k)²`` over the positive RoIs (ℓ2, weight 1).

**Re-scoring.** At test time ``s_mask = s_cls · clamp(ŝ_iou, 0, 1)`` ranks the masks (the
boxes keep ``s_cls``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_int, check_tensor
from deepnotes.detection.two_stage.paste_masks import paste_masks_in_image


class MaskIoUHead(nn.Module):
    """``(features Tensor[K, C, S, S], mask Tensor[K, 1, 2S, 2S]) → Tensor[K, num_classes]``
    predicted mask IoUs (``S`` is ``pool_size``)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        pool_size: int = 14,
        conv_width: int = 64,
        representation_size: int = 256,
    ) -> None:
        super().__init__()
        c = check_int("in_channels", in_channels, min=1)
        self.num_classes = check_int("num_classes", num_classes, min=2)
        self.pool_size = check_int("pool_size", pool_size, min=1)
        width = check_int("conv_width", conv_width, min=1)
        rep = check_int("representation_size", representation_size, min=1)
        layers, c_in = [], c + 1
        for i in range(4):
            layers += [nn.Conv2d(c_in, width, 3, stride=2 if i == 3 else 1, padding=1), nn.ReLU()]
            c_in = width
        self.convs = nn.Sequential(*layers)
        side = (self.pool_size - 1) // 2 + 1  # after the stride-2 conv (kernel 3, padding 1)
        self.fc = nn.Sequential(
            nn.Linear(width * side * side, rep), nn.ReLU(), nn.Linear(rep, rep), nn.ReLU()
        )
        self.iou = nn.Linear(rep, self.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.iou.weight, std=0.01)
        nn.init.zeros_(self.iou.bias)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        check_tensor("features", features, ndim=4, floating=True)
        check_tensor("mask", mask, ndim=4, floating=True)
        s = self.pool_size
        if features.shape[-2:] != (s, s) or mask.shape[1:] != (1, 2 * s, 2 * s):
            raise ValueError(
                f"features must be (K, C, {s}, {s}) and mask (K, 1, {2 * s}, {2 * s}), got "
                f"{tuple(features.shape)} and {tuple(mask.shape)}"
            )
        if features.shape[0] != mask.shape[0]:
            raise ValueError(f"features and mask must have one row per RoI, got {features.shape[0]} and {mask.shape[0]}")
        x = torch.cat([features, F.max_pool2d(mask, 2, 2)], 1)
        return self.iou(self.fc(self.convs(x).flatten(1)))


def maskiou_targets(
    mask_probs: torch.Tensor,
    boxes: torch.Tensor,
    gt_masks: torch.Tensor,
    threshold: float = 0.5,
) -> torch.Tensor:
    """``Tensor[K]``: IoU of each predicted mask (``Tensor[K, 1, M, M]`` probabilities in the frame
    of ``boxes`` ``Tensor[K, 4]``), pasted and binarized at ``threshold``, with its object's
    ground-truth mask ``gt_masks`` ``Tensor[K, H, W]`` (0/1). An empty union gives 0."""
    check_tensor("gt_masks", gt_masks, ndim=3)
    if len(gt_masks) != len(mask_probs):
        raise ValueError(f"gt_masks must have one mask per RoI ({len(mask_probs)}), got {len(gt_masks)}")
    pred = paste_masks_in_image(mask_probs.detach(), boxes.detach(), gt_masks.shape[-2:])[:, 0]
    pred = (pred > threshold).flatten(1)
    gt = (gt_masks != 0).flatten(1)
    inter = (pred & gt).sum(1)
    union = (pred | gt).sum(1)
    iou = inter.to(mask_probs.dtype) / union.clamp(min=1).to(mask_probs.dtype)
    return torch.where(union > 0, iou, torch.zeros_like(iou))


def maskiou_loss(
    pred_iou: torch.Tensor, labels: torch.Tensor, target_iou: torch.Tensor
) -> torch.Tensor:
    """``mean_k (pred_iou[k, labels[k]] − target_iou[k])²``; 0 (connected to the graph) without RoIs."""
    check_tensor("pred_iou", pred_iou, ndim=2, floating=True)
    if not len(pred_iou) == len(labels) == len(target_iou):
        raise ValueError(
            f"pred_iou, labels and target_iou must have one entry per RoI, got "
            f"{len(pred_iou)}, {len(labels)} and {len(target_iou)}"
        )
    if len(labels) == 0:
        return pred_iou.sum() * 0.0
    own = pred_iou[torch.arange(len(labels), device=labels.device), labels]
    return F.mse_loss(own, target_iou.to(own.dtype))


def rescore(
    scores: Sequence[torch.Tensor], pred_iou: torch.Tensor, labels: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """Mask scores per image: ``scores[i] · clamp(pred_iou[k, labels[k]], 0, 1)`` (``pred_iou``
    holds every image's detections in order)."""
    flat_labels = torch.cat(list(labels)) if labels else torch.zeros(0, dtype=torch.int64)
    if len(flat_labels) != len(pred_iou):
        raise ValueError(f"pred_iou must have one row per detection ({len(flat_labels)}), got {len(pred_iou)}")
    own = pred_iou[torch.arange(len(flat_labels), device=pred_iou.device), flat_labels].clamp(0, 1)
    counts = [len(s) for s in scores]
    return [s * q.to(s.dtype) for s, q in zip(scores, own.split(counts))]
