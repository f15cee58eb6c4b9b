"""Mask R-CNN's mask branch (He et al., 2017): a small fully convolutional head on every RoI that
predicts one binary mask per class (torchvision's ``MaskRCNNHeads``, ``MaskRCNNPredictor``,
``project_masks_on_boxes``, ``maskrcnn_loss`` and ``maskrcnn_inference``).

**Head.** RoI Align pools an ``S × S`` feature patch per RoI; ``layers`` 3 × 3 conv + ReLU
layers keep its size, a stride-2 2 × 2 transposed conv doubles it, and a 1 × 1 conv gives
``num_classes`` mask logits of ``2S × 2S`` (class 0, the background, has a channel too, unused).

**Targets.** The ground-truth mask of the object a positive RoI is matched to is cut out of the
full-image mask by RoI Align on the RoI's box (adaptive sampling, ``aligned=False``), giving an
``M × M`` soft target in ``[0, 1]`` in the RoI's own frame.

**Loss.** Per-pixel binary cross-entropy on the logits of the RoI's *ground-truth* class only,

    L_mask = mean_{RoI k, pixel p} BCE(σ(z_{k, c_k, p}), t_{k, p})

so the classes do not compete for a pixel (a per-pixel softmax over classes would); the box
branch decides the class. Without positive RoIs the loss is 0 (connected to the graph).

**Inference.** The mask of each detection is ``σ`` of the channel of its *predicted* class.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_int, check_tensor, check_type
from deepnotes.detection.roi_align import roi_align


class MaskRCNNHeads(nn.Sequential):
    """``len(layers)`` blocks of 3 × 3 conv (``dilation``) + ReLU: ``Tensor[K, C, S, S]`` → ``Tensor[K, layers[-1], S, S]``.

    Submodules are named as torchvision's (``"0.0"`` conv of block 0), so a state dict of one
    loads into the other.
    """

    def __init__(self, in_channels: int, layers: Sequence[int], dilation: int = 1) -> None:
        check_type("layers", layers, (list, tuple))
        if not layers:
            raise ValueError("layers must name at least one conv layer")
        dilation = check_int("dilation", dilation, min=1)
        blocks, c = [], check_int("in_channels", in_channels, min=1)
        for i, width in enumerate(layers):
            width = check_int(f"layers[{i}]", width, min=1)
            conv = nn.Conv2d(c, width, 3, padding=dilation, dilation=dilation)
            blocks.append(nn.Sequential(conv, nn.ReLU(inplace=True)))
            c = width
        super().__init__(*blocks)
        self.out_channels = c
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # torchvision's initialization
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)


class MaskRCNNPredictor(nn.Sequential):
    """``conv5_mask`` (2 × 2 transposed conv, stride 2) → ReLU → ``mask_fcn_logits`` (1 × 1 conv):
    ``Tensor[K, C, S, S]`` → ``Tensor[K, num_classes, 2S, 2S]`` logits."""

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int) -> None:
        in_channels = check_int("in_channels", in_channels, min=1)
        dim_reduced = check_int("dim_reduced", dim_reduced, min=1)
        num_classes = check_int("num_classes", num_classes, min=2)
        super().__init__(
            OrderedDict(
                [
                    ("conv5_mask", nn.ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("mask_fcn_logits", nn.Conv2d(dim_reduced, num_classes, 1, 1, 0)),
                ]
            )
        )
        for name, p in self.named_parameters():
            if "weight" in name:
                nn.init.kaiming_normal_(p, mode="fan_out", nonlinearity="relu")


def project_masks_on_boxes(
    gt_masks: Sequence[torch.Tensor],
    boxes: Sequence[torch.Tensor],
    matched_idxs: Sequence[torch.Tensor],
    size: int,
) -> torch.Tensor:
    """Mask targets ``Tensor[Σ K_i, size, size]``: for RoI ``k`` of image ``i``, RoI Align of the
    mask ``gt_masks[i][matched_idxs[i][k]]`` (``Tensor[M_i, H, W]``, 0/1) on ``boxes[i][k]``.

    All images in one RoI Align call: the masks of every image are stacked as the "batch", and a
    RoI's batch index is its image's offset plus its matched index.
    """
    check_type("gt_masks", gt_masks, (list, tuple))
    size = check_int("size", size, min=1)
    if not len(gt_masks) == len(boxes) == len(matched_idxs):
        raise ValueError(
            f"gt_masks, boxes and matched_idxs must have one entry per image, got "
            f"{len(gt_masks)}, {len(boxes)} and {len(matched_idxs)}"
        )
    dtype = boxes[0].dtype if len(boxes) else torch.float32
    rois = torch.cat([b for b in boxes]) if len(boxes) else torch.zeros(0, 4, dtype=dtype)
    if rois.shape[0] == 0:
        return rois.new_zeros(0, size, size)
    for i, (m, idx) in enumerate(zip(gt_masks, matched_idxs)):
        check_tensor(f"gt_masks[{i}]", m, ndim=3)
        if len(idx) and (int(idx.max()) >= len(m) or int(idx.min()) < 0):
            raise ValueError(f"matched_idxs[{i}] must index the {len(m)} masks of image {i}")
    shapes = {tuple(m.shape[1:]) for m in gt_masks}
    if len(shapes) > 1:
        raise ValueError(f"gt_masks of one batch must share one size, got {sorted(shapes)}")
    offsets = torch.tensor([0] + [len(m) for m in gt_masks[:-1]]).cumsum(0)
    index = torch.cat([idx + off for idx, off in zip(matched_idxs, offsets.tolist())])
    masks = torch.cat(list(gt_masks))[:, None].to(dtype)  # (Σ M_i, 1, H, W)
    rois = torch.cat([index[:, None].to(dtype), rois.detach()], 1)
    return roi_align(masks, rois, (size, size), 1.0)[:, 0]


def maskrcnn_loss(
    mask_logits: torch.Tensor,
    proposals: Sequence[torch.Tensor],
    gt_masks: Sequence[torch.Tensor],
    gt_labels: Sequence[torch.Tensor],
    mask_matched_idxs: Sequence[torch.Tensor],
) -> torch.Tensor:
    """Mean binary cross-entropy (on logits) of each positive RoI's ground-truth-class channel.

    ``mask_logits`` ``Tensor[Σ K_i, num_classes, M, M]``; ``proposals[i]`` the positive RoIs of
    image ``i`` (``Tensor[K_i, 4]``), ``mask_matched_idxs[i]`` the object each is matched to.
    """
    check_tensor("mask_logits", mask_logits, ndim=4, floating=True)
    if mask_logits.shape[-1] != mask_logits.shape[-2]:
        raise ValueError(f"mask_logits must be square masks, got {tuple(mask_logits.shape)}")
    labels = [lab[idx] for lab, idx in zip(gt_labels, mask_matched_idxs)]
    targets = project_masks_on_boxes(gt_masks, proposals, mask_matched_idxs, mask_logits.shape[-1])
    labels = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64)
    if targets.numel() == 0:
        return mask_logits.sum() * 0.0
    if len(labels) != mask_logits.shape[0]:
        raise ValueError(
            f"mask_logits must have one row per positive RoI ({len(labels)}), got {mask_logits.shape[0]}"
        )
    own = mask_logits[torch.arange(len(labels), device=labels.device), labels]
    return F.binary_cross_entropy_with_logits(own, targets.to(own.dtype))


def maskrcnn_inference(
    mask_logits: torch.Tensor, labels: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """Per image ``Tensor[D_i, 1, M, M]``: the sigmoid of each detection's predicted-class channel."""
    check_tensor("mask_logits", mask_logits, ndim=4, floating=True)
    counts = [len(lab) for lab in labels]
    if sum(counts) != mask_logits.shape[0]:
        raise ValueError(
            f"mask_logits must have one row per detection ({sum(counts)}), got {mask_logits.shape[0]}"
        )
    flat = torch.cat(list(labels)) if labels else torch.zeros(0, dtype=torch.int64)
    prob = mask_logits.sigmoid()[torch.arange(len(flat), device=flat.device), flat][:, None]
    return list(prob.split(counts, dim=0))
