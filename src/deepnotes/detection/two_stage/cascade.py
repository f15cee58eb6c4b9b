"""Cascade R-CNN (Cai & Vasconcelos, 2018): a sequence of box heads trained at rising IoU thresholds.

A detector trained with one IoU threshold ``u`` for its positives is best on proposals of about that
quality: ``u = 0.5`` gives noisy boxes at high IoU, a single head at ``u = 0.7`` has too few
positives and overfits. The cascade chains ``T = 3`` heads at ``u = 0.5, 0.6, 0.7``; head ``t``
regresses the boxes of head ``t − 1``, whose outputs have higher IoU than its inputs, so every head
sees enough positives of its own quality::

    b_1 = proposals,   (p_t, δ_t) = head_t(RoIAlign(F, b_t)),   b_{t+1} = decode(δ_t, b_t)   (detached)

**Training.** Each stage appends the ground truth to its input boxes, labels them with its own
threshold ``u_t`` (foreground at IoU ≥ u_t, background below), samples ``batch_size_per_image``
RoIs and adds ``w_t · (CE + smooth L1)`` with ``w = (1, 0.5, 0.25)``. The box regression is
class-agnostic, its targets encoded with weights ``(10, 10, 5, 5)``, ``(20, 20, 10, 10)`` and
``(30, 30, 15, 15)`` (the refined boxes are closer, so the deltas are normalized by a smaller
spread). **Inference.** The class scores are the mean of the three stages' softmax outputs, the
boxes those of the last stage, then the usual per-class NMS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_tensor, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.coder import BoxCoder
from deepnotes.detection.two_stage.box_head import TwoMLPHead
from deepnotes.detection.two_stage.faster_rcnn import ZOO_BASE, TwoStageDetector
from deepnotes.detection.two_stage.fpn import PyramidDetector
from deepnotes.detection.two_stage.roi_heads import RoIHeads
from deepnotes.detection.two_stage.rpn import check_targets

STAGE_IOUS = (0.5, 0.6, 0.7)
STAGE_WEIGHTS = (1.0, 0.5, 0.25)
STAGE_REG_WEIGHTS = ((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0))


class AgnosticPredictor(nn.Module):
    """``cls_score`` (``num_classes`` logits, background included) and one box ``bbox_pred`` (4 deltas)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


def cascade_stage_loss(class_logits, deltas, labels, targets) -> tuple[torch.Tensor, torch.Tensor]:
    """CE over the sampled RoIs + smooth L1 (β = 1/9) of the agnostic deltas of the foreground,
    divided by the number of RoIs (as :func:`~deepnotes.detection.two_stage.fastrcnn_loss`)."""
    if labels.numel() == 0:
        zero = class_logits.sum() * 0.0 + deltas.sum() * 0.0
        return zero, zero.clone()
    pos = torch.where(labels > 0)[0]
    box = F.smooth_l1_loss(deltas[pos], targets[pos], beta=1 / 9, reduction="sum") / labels.numel()
    return F.cross_entropy(class_logits, labels), box


class CascadeRoIHeads(nn.Module):
    """Three box heads at IoU ``stage_ious``, each on the boxes the previous one refined.

    Same call as :class:`RoIHeads`: ``forward(features, proposals, image_shapes, targets)`` →
    ``(detections, losses)``. Losses: ``loss_classifier_{1,2,3}`` and ``loss_box_reg_{1,2,3}``,
    already multiplied by the stage weights. Each stage is a :class:`RoIHeads` (its matcher, sampler
    and box coder label and sample the RoIs) with a class-agnostic predictor.
    """

    # the last stage's post-processing is Fast R-CNN's (score threshold, NMS per class, top-k)
    postprocess_detections = RoIHeads.postprocess_detections

    def __init__(
        self,
        box_roi_pool: nn.Module,
        in_channels: int,
        representation_size: int,
        num_classes: int,
        *,
        stage_ious: Sequence[float] = STAGE_IOUS,
        stage_weights: Sequence[float] = STAGE_WEIGHTS,
        batch_size_per_image: int,
        positive_fraction: float,
        score_thresh: float,
        nms_thresh: float,
        detections_per_img: int,
    ) -> None:
        super().__init__()
        check_type("stage_ious", stage_ious, (tuple, list))
        check_type("stage_weights", stage_weights, (tuple, list))
        if len(stage_ious) == 0 or len(stage_ious) > len(STAGE_REG_WEIGHTS) or len(stage_weights) != len(stage_ious):
            raise ValueError(
                f"stage_ious must hold 1 to {len(STAGE_REG_WEIGHTS)} thresholds and stage_weights as many weights, "
                f"got {tuple(stage_ious)} and {tuple(stage_weights)}"
            )
        self.stage_ious = tuple(check_float(f"stage_ious[{i}]", u, min=0.0, max=1.0) for i, u in enumerate(stage_ious))
        self.stage_weights = tuple(check_float(f"stage_weights[{i}]", w, min=0.0) for i, w in enumerate(stage_weights))
        self.box_roi_pool = box_roi_pool
        self.stages = nn.ModuleList([
            RoIHeads(
                box_roi_pool,
                TwoMLPHead(in_channels, representation_size),
                AgnosticPredictor(representation_size, num_classes),
                fg_iou_thresh=u,
                bg_iou_thresh=u,
                batch_size_per_image=batch_size_per_image,
                positive_fraction=positive_fraction,
                bbox_reg_weights=w,
                score_thresh=score_thresh,
                nms_thresh=nms_thresh,
                detections_per_img=detections_per_img,
            )
            for u, w in zip(self.stage_ious, STAGE_REG_WEIGHTS)
        ])
        last = self.stages[-1]
        self.box_coder: BoxCoder = last.box_coder
        self.score_thresh, self.nms_thresh = last.score_thresh, last.nms_thresh
        self.detections_per_img = last.detections_per_img

    def run_stage(self, t: int, features, boxes, image_shapes):
        """Class logits, agnostic deltas and the refined (detached) boxes of stage ``t``."""
        stage = self.stages[t]
        logits, deltas = stage.box_predictor(stage.box_head(self.box_roi_pool(features, list(boxes), list(image_shapes))))
        refined = stage.box_coder.decode(deltas.detach(), torch.cat(list(boxes))).reshape(-1, 4)
        return logits, deltas, list(refined.split([b.shape[0] for b in boxes]))

    def forward(
        self,
        features: Mapping[str, torch.Tensor],
        proposals: Sequence[torch.Tensor],
        image_shapes: Sequence[Sequence[int]],
        targets: Sequence[Mapping[str, torch.Tensor]] | None = None,
    ) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        check_type("features", features, Mapping)
        check_type("proposals", proposals, (list, tuple))
        for i, p in enumerate(proposals):
            check_tensor(f"proposals[{i}]", p, ndim=2, floating=True)
        boxes = [p.detach() for p in proposals]
        if self.training:
            if targets is None:
                raise ValueError("targets must be given in training mode")
            targets = check_targets(targets, len(proposals), labels=True)
            losses = {}
            for t, stage in enumerate(self.stages):  # three stages, each needing the previous one's boxes
                boxes, labels, reg_targets = stage.select_training_samples(boxes, targets)
                logits, deltas, boxes = self.run_stage(t, features, boxes, image_shapes)
                cls, box = cascade_stage_loss(logits, deltas, torch.cat(labels), torch.cat(reg_targets))
                losses[f"loss_classifier_{t + 1}"] = self.stage_weights[t] * cls
                losses[f"loss_box_reg_{t + 1}"] = self.stage_weights[t] * box
            return [], losses
        probs = 0.0
        for t in range(len(self.stages)):  # three stages
            inputs = boxes
            logits, deltas, boxes = self.run_stage(t, features, inputs, image_shapes)
            probs = probs + F.softmax(logits, -1) / len(self.stages)
        # the mean of the stages' scores; the last stage's boxes, the same for every class
        num_classes = logits.shape[1]
        return self.postprocess_detections(probs.clamp_min(1e-12).log(), deltas.repeat(1, num_classes),
                                           inputs, image_shapes), {}


#: 64 RoIs per image per stage (ours hold at most 6 objects) almost halve a training step, so 8
#: epochs fit the 15-minute budget (128 RoIs and 9 epochs took 25.7 CPU minutes for mAP@0.5 0.849)
CASCADE_ZOO = dict(ZOO_BASE, epochs=8, model_kw={"box_batch_size_per_image": 64})


@MODELS.register(
    "cascade_rcnn",
    task="detect",
    description="Cascade R-CNN: three box heads at IoU 0.5 / 0.6 / 0.7, each refining the previous boxes",
    zoo=CASCADE_ZOO,
)
class CascadeRCNN(TwoStageDetector):
    """Faster R-CNN whose RoI heads are a three-stage cascade (see the module docstring)."""

    loss_names = (
        "loss_objectness", "loss_rpn_box_reg",
        "loss_classifier_1", "loss_box_reg_1", "loss_classifier_2", "loss_box_reg_2",
        "loss_classifier_3", "loss_box_reg_3",
    )

    def build_roi_heads(self) -> nn.Module:
        kw = {k: v for k, v in self.box_kw.items() if k not in ("fg_iou_thresh", "bg_iou_thresh")}
        return CascadeRoIHeads(
            self.build_box_pool(), self.out_channels * self.pool_size**2, self.representation_size,
            self.num_classes + 1, **kw,
        )


#: the paper's setting: the cascade on an FPN (P2-P4 RoIs by the level formula, P2-P5 for the RPN).
#: 64 RoIs per image per stage (torchvision's 512 is for ~100 objects per image; ours have at most 6) keep
#: the three heads' cost near one head's at 128, and the pyramid converges in fewer epochs
CASCADE_FPN_ZOO = dict(ZOO_BASE, epochs=7, model_kw={"box_batch_size_per_image": 64})


@MODELS.register(
    "cascade_fpn",
    task="detect",
    description="Cascade R-CNN on an FPN (the paper's setting): three box heads at IoU 0.5 / 0.6 / 0.7",
    zoo=CASCADE_FPN_ZOO,
)
class CascadeFPN(CascadeRCNN, PyramidDetector):
    """:class:`CascadeRCNN`'s three-stage heads on :class:`~deepnotes.detection.two_stage.PyramidDetector`'s
    FPN features (arguments: both classes'; ``anchor_sizes`` gives one size per level P2-P5)."""
