"""Mask R-CNN and Mask Scoring R-CNN on :class:`TwoStageDetector` (Faster R-CNN with RoI Align).

:class:`MaskRoIHeads` extends the box RoI heads with the mask branch of
:mod:`~deepnotes.detection.two_stage.mask_head` (and optionally the MaskIoU head of
:mod:`~deepnotes.detection.two_stage.mask_scoring`), as torchvision's ``RoIHeads`` does with
``mask_roi_pool``/``mask_head``/``mask_predictor``:

- **training**: the box head's RoIs are sampled once; the *positive* ones (IoU ≥
  ``fg_iou_thresh`` with an object) also train the mask branch, each against the mask of the
  object it was matched to — losses ``loss_mask`` (and ``loss_maskiou``);
- **inference**: the mask branch runs on the final detections (after NMS), so only kept boxes
  pay for a mask; each gets the ``M × M`` probability mask of its predicted class.

:class:`MaskRCNN` pastes those masks into the image: eval output per image
``{"boxes", "scores", "labels", "masks"}`` with ``masks`` ``Tensor[D, 1, H, W]`` float
probabilities (torchvision's format; threshold at 0.5 for binary masks). :class:`MSRCNN` adds
``mask_scores`` = ``scores`` × predicted mask IoU, the score the masks are ranked by (the boxes
keep ``scores``).

**Our adaptation to 128 × 128 images.** The box branch pools from the stride-16 map (as the
paper's C4 model); objects are 8–64 px, i.e. 0.5–4 cells of that map, too coarse for their
outlines. The mask branch therefore pools from a finer backbone stage (``mask_stride``, 8 by
default: 1–8 cells per object), as the paper's FPN model pools small RoIs from its fine levels.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_int, check_tensor, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.iou import box_iou
from deepnotes.detection.two_stage.faster_rcnn import ZOO_BASE, TwoStageDetector
from deepnotes.detection.two_stage.fpn import PyramidDetector
from deepnotes.detection.two_stage.mask_head import (
    MaskRCNNHeads,
    MaskRCNNPredictor,
    maskrcnn_inference,
    maskrcnn_loss,
)
from deepnotes.detection.two_stage.mask_scoring import (
    MaskIoUHead,
    maskiou_loss,
    maskiou_targets,
    rescore,
)
from deepnotes.detection.two_stage.paste_masks import paste_masks_in_image
from deepnotes.detection.two_stage.poolers import MultiScaleRoIAlign
from deepnotes.detection.two_stage.roi_heads import RoIHeads, fastrcnn_loss
from deepnotes.detection.two_stage.rpn import check_targets


def check_mask_targets(targets, n: int) -> list:
    """Targets with ``boxes``, ``labels`` and ``masks`` ``Tensor[M, H, W]`` (0/1, one per box)."""
    targets = check_targets(targets, n, labels=True)
    for i, t in enumerate(targets):
        if "masks" not in t:
            raise ValueError(f"targets[{i}] must have a 'masks' entry to train a mask head")
        check_tensor(f"targets[{i}]['masks']", t["masks"], ndim=3)
        if t["masks"].shape[0] != t["boxes"].shape[0]:
            raise ValueError(
                f"targets[{i}]['masks'] must hold one mask per box ({t['boxes'].shape[0]}), "
                f"got {t['masks'].shape[0]}"
            )
    return targets


class MaskRoIHeads(RoIHeads):
    """Box RoI heads plus a mask branch (and an optional MaskIoU head); see the module docstring.

    ``mask_roi_pool``, ``mask_head``, ``mask_predictor`` as torchvision's; ``maskiou_head`` a
    :class:`MaskIoUHead` reading the mask RoI features (``None``: plain Mask R-CNN). The other
    arguments are :class:`RoIHeads`'.
    """

    def __init__(
        self,
        box_roi_pool: nn.Module,
        box_head: nn.Module,
        box_predictor: nn.Module,
        *,
        mask_roi_pool: nn.Module,
        mask_head: nn.Module,
        mask_predictor: nn.Module,
        maskiou_head: nn.Module | None = None,
        **box_kw,
    ) -> None:
        super().__init__(box_roi_pool, box_head, box_predictor, **box_kw)
        self.mask_roi_pool = check_type("mask_roi_pool", mask_roi_pool, nn.Module)
        self.mask_head = check_type("mask_head", mask_head, nn.Module)
        self.mask_predictor = check_type("mask_predictor", mask_predictor, nn.Module)
        self.maskiou_head = maskiou_head

    def _mask_logits(self, features, boxes, image_shapes):
        pooled = self.mask_roi_pool(features, list(boxes), list(image_shapes))
        return pooled, self.mask_predictor(self.mask_head(pooled))

    def forward(self, features, proposals, image_shapes, targets=None):
        """Detections with ``masks`` (``Tensor[D, 1, M, M]`` in the box frame; ``mask_scores`` with
        a MaskIoU head) in eval mode, or the box losses plus ``loss_mask`` (``loss_maskiou``)."""
        if not self.training:
            result, _ = super().forward(features, proposals, image_shapes)
            boxes = [r["boxes"] for r in result]
            labels = [r["labels"] for r in result]
            pooled, logits = self._mask_logits(features, boxes, image_shapes)
            probs = maskrcnn_inference(logits, labels)
            for r, p in zip(result, probs):
                r["masks"] = p
            if self.maskiou_head is not None:
                pred_iou = self.maskiou_head(pooled, torch.cat(probs))
                for r, s in zip(result, rescore([r["scores"] for r in result], pred_iou, labels)):
                    r["mask_scores"] = s
            return result, {}

        if targets is None:
            raise ValueError("targets must be given in training mode")
        targets = check_mask_targets(targets, len(proposals))
        proposals, labels, regression_targets = self.select_training_samples(
            list(proposals), targets
        )
        box_features = self.box_head(self.box_roi_pool(features, proposals, list(image_shapes)))
        class_logits, box_regression = self.box_predictor(box_features)
        loss_cls, loss_box = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
        losses = {"loss_classifier": loss_cls, "loss_box_reg": loss_box}

        # the positive RoIs of the sample, and the object each one was matched to
        pos_boxes, pos_idx = [], []
        for props, lab, t in zip(proposals, labels, targets):  # per image
            pos = props[lab > 0]
            gt = t["boxes"].to(pos.dtype)
            idx = (
                self.proposal_matcher(box_iou(gt, pos)).clamp(min=0)
                if len(gt) and len(pos)
                else torch.zeros(len(pos), dtype=torch.int64, device=pos.device)
            )
            pos_boxes.append(pos)
            pos_idx.append(idx)
        gt_masks = [t["masks"] for t in targets]
        gt_labels = [t["labels"] for t in targets]
        pooled, logits = self._mask_logits(features, pos_boxes, image_shapes)
        losses["loss_mask"] = maskrcnn_loss(logits, pos_boxes, gt_masks, gt_labels, pos_idx)
        if self.maskiou_head is not None:
            own = torch.cat([lab[i] for lab, i in zip(gt_labels, pos_idx)])
            probs = logits[torch.arange(len(own)), own].sigmoid()[:, None].detach()
            pred_iou = self.maskiou_head(pooled, probs)
            real = maskiou_targets(
                probs,
                torch.cat(pos_boxes),
                torch.cat([m[i] for m, i in zip(gt_masks, pos_idx)]),
            )
            losses["loss_maskiou"] = maskiou_loss(pred_iou, own, real)
        return [], losses


class MaskRCNN(TwoStageDetector):
    """Faster R-CNN plus a mask branch; see the module docstring.

    Parameters (besides :class:`TwoStageDetector`'s)
    ----------------------------------------------
    mask_stride : the backbone stage the mask branch pools from (4, 8 or 16)
    mask_pool_size : RoI Align output ``S`` of the mask branch (masks are ``2S × 2S``)
    mask_layers : widths of the mask head's 3 × 3 convs
    mask_dim_reduced : channels of the transposed conv
    """

    loss_names = TwoStageDetector.loss_names + ("loss_mask",)

    def __init__(
        self,
        *args,
        mask_stride: int = 8,
        mask_pool_size: int = 14,
        mask_layers=(32, 32),
        mask_dim_reduced: int = 32,
        **kwargs,
    ) -> None:
        # read by build_features / build_roi_heads, which the base class calls in its __init__
        self._mask_cfg = {
            "stride": check_choice("mask_stride", mask_stride, (4, 8, 16)),
            "pool": check_int("mask_pool_size", mask_pool_size, min=2),
            "layers": tuple(check_type("mask_layers", mask_layers, (list, tuple))),
            "dim": check_int("mask_dim_reduced", mask_dim_reduced, min=1),
        }
        super().__init__(*args, **kwargs)

    def _mask_stage(self) -> int:
        return {4: 1, 8: 2, 16: 3}[self._mask_cfg["stride"]]

    def features(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        stages = self.backbone(images)
        out = OrderedDict([("0", stages[-1])])
        if self._mask_cfg["stride"] != 16:
            out["mask"] = stages[self._mask_stage()]
        return out

    def proposals(self, images, features, targets=None):
        """The RPN reads only the box maps (not the mask branch's finer map)."""
        return super().proposals(
            images, OrderedDict((k, features[k]) for k in self.featmap_names), targets
        )

    def _mask_channels(self) -> int:
        """Channels of the feature map the mask branch pools from."""
        return self.backbone.out_channels[self._mask_stage()]

    def build_mask_branch(self) -> dict[str, nn.Module]:
        cfg = self._mask_cfg
        name = "mask" if cfg["stride"] != 16 else "0"
        head = MaskRCNNHeads(self._mask_channels(), cfg["layers"])
        return {
            "mask_roi_pool": MultiScaleRoIAlign([name], cfg["pool"], self.sampling_ratio),
            "mask_head": head,
            "mask_predictor": MaskRCNNPredictor(head.out_channels, cfg["dim"], self.num_classes + 1),
        }

    def build_roi_heads(self) -> nn.Module:
        base = super().build_roi_heads()  # the box head of Faster R-CNN
        return MaskRoIHeads(
            base.box_roi_pool,
            base.box_head,
            base.box_predictor,
            bbox_reg_weights=None,
            **self.box_kw,
            **self.build_mask_branch(),
        )

    def forward(self, images: torch.Tensor, targets=None):
        """Training: the loss dict (with ``loss_mask``); eval: detections with ``masks``
        ``Tensor[D, 1, H, W]`` (probabilities pasted into the image)."""
        out = super().forward(images, targets)
        if self.training:
            return out
        size = tuple(images.shape[-2:])
        for r in out:
            r["masks"] = paste_masks_in_image(r["masks"], r["boxes"], size)
        return out


class MSRCNN(MaskRCNN):
    """Mask Scoring R-CNN: :class:`MaskRCNN` plus a MaskIoU head; eval adds ``mask_scores``.

    ``maskiou_width`` / ``maskiou_representation``: conv channels and fc width of the MaskIoU head.
    """

    loss_names = MaskRCNN.loss_names + ("loss_maskiou",)

    def __init__(self, *args, maskiou_width: int = 32, maskiou_representation: int = 128, **kwargs):
        self._maskiou_cfg = (
            check_int("maskiou_width", maskiou_width, min=1),
            check_int("maskiou_representation", maskiou_representation, min=1),
        )
        super().__init__(*args, **kwargs)

    def build_mask_branch(self) -> dict[str, nn.Module]:
        parts = super().build_mask_branch()
        parts["maskiou_head"] = MaskIoUHead(
            self._mask_channels(), self.num_classes + 1, self._mask_cfg["pool"], *self._maskiou_cfg
        )
        return parts


class MaskRCNNFPN(MaskRCNN, PyramidDetector):
    """Mask R-CNN on an FPN, the paper's best setting: the box *and* the mask branch pool each RoI
    from the pyramid level P2-P4 the level formula gives it (as torchvision's
    ``maskrcnn_resnet50_fpn``), so no ``mask_stride``. Arguments: :class:`MaskRCNN`'s mask settings
    and :class:`~deepnotes.detection.two_stage.PyramidDetector`'s (one anchor size per level P2-P5)."""

    def __init__(self, *args, **kwargs) -> None:
        if "mask_stride" in kwargs:
            raise ValueError("mask_stride: the FPN model pools masks from the pyramid levels P2-P4 and takes no mask_stride")
        super().__init__(*args, **kwargs)

    def features(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return PyramidDetector.features(self, images)

    def _mask_channels(self) -> int:
        return self.fpn_channels

    def build_mask_branch(self) -> dict[str, nn.Module]:
        cfg = self._mask_cfg
        head = MaskRCNNHeads(self._mask_channels(), cfg["layers"])
        return {
            "mask_roi_pool": MultiScaleRoIAlign(
                list(self.level_names), cfg["pool"], self.sampling_ratio,
                canonical_scale=self.canonical_scale, canonical_level=4,
            ),
            "mask_head": head,
            "mask_predictor": MaskRCNNPredictor(head.out_channels, cfg["dim"], self.num_classes + 1),
        }


class MSRCNNFPN(MSRCNN, MaskRCNNFPN):
    """Mask Scoring R-CNN on an FPN (the paper's setting): :class:`MaskRCNNFPN`'s box and mask
    branches, and the MaskIoU head reading the same P2-P4 RoI features as the mask head."""


#: recorded zoo settings (the issue's targets: box mAP@0.5 ≥ 0.85, mask mAP@0.5 ≥ 0.80, within
#: 15 CPU minutes): Faster R-CNN's with torchvision's score threshold 0.05 (fewer low-score masks to
#: compute and paste). Mask R-CNN samples 64 RoIs per image (ours hold at most 6 objects), which
#: makes a step about a sixth cheaper, and trains 8 epochs (5 epochs at 128 RoIs: box mAP@0.5
#: 0.739); MS R-CNN keeps 128 RoIs and 4 epochs
MASK_RCNN_ZOO = dict(
    ZOO_BASE, epochs=8, model_kw={"box_score_thresh": 0.05, "box_batch_size_per_image": 64}, target_map50=0.85
)
MS_RCNN_ZOO = dict(ZOO_BASE, epochs=4, model_kw={"box_score_thresh": 0.05}, target_map50=0.85)

MODELS.register(
    "mask_rcnn",
    task="detect",
    description="Mask R-CNN: Faster R-CNN (RoI Align) plus a per-class binary mask head",
    zoo=MASK_RCNN_ZOO,
)(MaskRCNN)
MODELS.register(
    "ms_rcnn",
    task="detect",
    description="Mask Scoring R-CNN: Mask R-CNN plus a MaskIoU head that re-scores the masks",
    zoo=MS_RCNN_ZOO,
)(MSRCNN)


#: Mask R-CNN on the FPN: the pyramid reaches FPN's box mAP in fewer epochs than the single-scale
#: model, and 64 RoIs per image (ours hold at most 6 objects) halve the box head's cost
MASK_RCNN_FPN_ZOO = dict(ZOO_BASE, epochs=6, model_kw={"box_score_thresh": 0.05, "box_batch_size_per_image": 64})
MODELS.register(
    "mask_rcnn_fpn",
    task="detect",
    description="Mask R-CNN on an FPN (the paper's best setting): boxes and masks pooled from P2-P4",
    zoo=MASK_RCNN_FPN_ZOO,
)(MaskRCNNFPN)

#: MS R-CNN on the FPN: Mask R-CNN FPN's setting (the MaskIoU head adds about 6 % to a training step)
MS_RCNN_FPN_ZOO = dict(MASK_RCNN_FPN_ZOO)
MODELS.register(
    "ms_rcnn_fpn",
    task="detect",
    description="Mask Scoring R-CNN on an FPN: Mask R-CNN FPN plus a MaskIoU head that re-scores the masks",
    zoo=MS_RCNN_FPN_ZOO,
)(MSRCNNFPN)
