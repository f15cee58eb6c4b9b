"""Faster R-CNN (Ren et al., 2015): a backbone, a Region Proposal Network and Fast R-CNN's RoI heads
sharing one set of convolutional features, trained end to end.

:class:`TwoStageDetector` is the skeleton every model of this package builds on::

    images ─► backbone (+ neck) ─► feature maps ─┬─► RPN ─► proposals (detached) ─┐
                                                 └───────────────► RoI heads ◄─────┘─► detections

Subclasses override :meth:`TwoStageDetector.build_features` (which maps; FPN, PANet) and
:meth:`TwoStageDetector.build_roi_heads` (what runs on each RoI; Cascade R-CNN, a mask branch).
``forward(images, targets=None)`` follows the detect-task protocol: training mode returns the dict
``{"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}`` (plus whatever the
RoI heads add), eval mode one ``{"boxes", "scores", "labels"}`` dict per image.

**Approximate joint training** (the default): the four losses are summed and minimised together;
the proposals are treated as constants, so the RoI heads' loss reaches the backbone through the
pooled features but not through the box coordinates. **4-step alternating training** (the paper's
main recipe) is :func:`deepnotes.detection.two_stage.alternating.train_alternating`.

Our sizes, for 128 × 128 images of 8-64 px objects on a laptop CPU: a :class:`TinyResNet` backbone
(the stride-16 stage, as VGG's conv5 in the paper), anchors of 8-64 px at three aspect ratios,
RoI Align to 7 × 7 and a two-layer MLP head of width ``representation_size``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_type
from deepnotes.core.registry import MODELS
from deepnotes.detection.anchors import AnchorGenerator
from deepnotes.detection.models._common import check_images, flatten_targets
from deepnotes.detection.models.backbone import TinyResNet
from deepnotes.detection.two_stage.box_head import FastRCNNPredictor, TwoMLPHead
from deepnotes.detection.two_stage.poolers import MultiScaleRoIAlign
from deepnotes.detection.two_stage.roi_heads import RoIHeads
from deepnotes.detection.two_stage.rpn import RegionProposalNetwork
from deepnotes.detection.two_stage.rpn_head import RPNHead

# the shared recorded settings of the zoo; each model copies and adjusts them
ZOO_BASE = {
    "epochs": 9,
    "batch_size": 16,
    "lr": 2e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "model_kw": {},
    "data_kw": {"n_train": 2000},
    "schedule": "cosine",
    "target_map50": 0.85,
    "budget_minutes": 15.0,
}


class TwoStageDetector(nn.Module):
    """Backbone → RPN → RoI heads with the detect-task protocol; see the module docstring.

    Parameters
    ----------
    in_shape : (C, H, W), H and W multiples of 16
    num_classes : object classes (labels 1..C; the heads add the background class 0)
    width : backbone width; stages have ``width/2, width, 2·width, 4·width`` channels
    anchor_sizes : anchor sides in pixels (all on one map for the single-scale model; one per
        pyramid level for FPN / PANet)
    aspect_ratios : anchor ``h / w`` ratios
    rpn_* : the RPN's settings (torchvision's names); ``rpn_pre_nms_top_n`` and
        ``rpn_post_nms_top_n`` are ``(training, testing)`` pairs
    box_* : the RoI heads' settings (torchvision's names)
    representation_size : width of the two fully connected layers of the box head
    """

    loss_names = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg")

    def __init__(
        self,
        in_shape=(3, 128, 128),
        num_classes: int = 3,
        width: int = 32,
        anchor_sizes: Sequence[float] = (8, 16, 32, 64),
        aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
        rpn_fg_iou_thresh: float = 0.7,
        rpn_bg_iou_thresh: float = 0.3,
        rpn_batch_size_per_image: int = 256,
        rpn_positive_fraction: float = 0.5,
        rpn_pre_nms_top_n: Sequence[int] = (300, 300),
        rpn_post_nms_top_n: Sequence[int] = (150, 100),
        rpn_nms_thresh: float = 0.7,
        box_fg_iou_thresh: float = 0.5,
        box_bg_iou_thresh: float = 0.5,
        box_batch_size_per_image: int = 128,
        box_positive_fraction: float = 0.25,
        box_score_thresh: float = 0.01,
        box_nms_thresh: float = 0.5,
        box_detections_per_img: int = 100,
        representation_size: int = 256,
        pool_size: int = 7,
        sampling_ratio: int = 2,
    ) -> None:
        super().__init__()
        check_type("in_shape", in_shape, (tuple, list))
        if len(in_shape) != 3 or int(in_shape[1]) % 16 or int(in_shape[2]) % 16 or min(in_shape) < 1:
            raise ValueError(f"in_shape must be (C, H, W) with H and W multiples of 16, got {tuple(in_shape)}")
        self.in_shape = tuple(int(v) for v in in_shape)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.width = check_int("width", width, min=2)
        check_type("anchor_sizes", anchor_sizes, (tuple, list))
        check_type("aspect_ratios", aspect_ratios, (tuple, list))
        if not anchor_sizes or not aspect_ratios:
            raise ValueError("anchor_sizes and aspect_ratios must not be empty")
        self.anchor_sizes = tuple(check_float(f"anchor_sizes[{i}]", s, min=0.0, min_inclusive=False)
                                  for i, s in enumerate(anchor_sizes))
        self.aspect_ratios = tuple(check_float(f"aspect_ratios[{i}]", r, min=0.0, min_inclusive=False)
                                   for i, r in enumerate(aspect_ratios))
        self.pool_size = check_int("pool_size", pool_size, min=1)
        self.sampling_ratio = check_int("sampling_ratio", sampling_ratio)
        self.representation_size = check_int("representation_size", representation_size, min=1)
        self.box_kw = dict(
            fg_iou_thresh=box_fg_iou_thresh,
            bg_iou_thresh=box_bg_iou_thresh,
            batch_size_per_image=box_batch_size_per_image,
            positive_fraction=box_positive_fraction,
            score_thresh=box_score_thresh,
            nms_thresh=box_nms_thresh,
            detections_per_img=box_detections_per_img,
        )
        self.backbone = TinyResNet(self.in_shape[0], (width // 2, width, 2 * width, 4 * width), stem_width=width // 2)
        self.featmap_names, self.out_channels, anchor_levels = self.build_features()
        generator = AnchorGenerator(anchor_levels, (self.aspect_ratios,) * len(anchor_levels))
        per_location = generator.num_anchors_per_location()
        if len(set(per_location)) != 1:
            raise ValueError(f"every pyramid level must have as many anchors per location, got {per_location}")
        pre, post = (tuple(rpn_pre_nms_top_n), tuple(rpn_post_nms_top_n))
        if len(pre) != 2 or len(post) != 2:
            raise ValueError("rpn_pre_nms_top_n and rpn_post_nms_top_n must be (training, testing) pairs")
        self.rpn = RegionProposalNetwork(
            generator,
            RPNHead(self.out_channels, per_location[0]),
            rpn_fg_iou_thresh,
            rpn_bg_iou_thresh,
            rpn_batch_size_per_image,
            rpn_positive_fraction,
            {"training": pre[0], "testing": pre[1]},
            {"training": post[0], "testing": post[1]},
            rpn_nms_thresh,
        )
        self.roi_heads = self.build_roi_heads()

    # --- the parts a subclass changes ------------------------------------------------------------
    def build_features(self) -> tuple[list[str], int, tuple[tuple[float, ...], ...]]:
        """Modules on top of ``self.backbone``; returns the feature map names (finest first), their
        channels and the anchor sizes of each map. Single scale: the stride-16 stage, all sizes."""
        return ["0"], self.backbone.out_channels[-1], (self.anchor_sizes,)

    def features(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """The feature maps the RPN and the RoI heads read, by name, finest first."""
        return OrderedDict([("0", self.backbone(images)[-1])])

    def build_box_pool(self) -> nn.Module:
        return MultiScaleRoIAlign(self.featmap_names, self.pool_size, self.sampling_ratio)

    def build_roi_heads(self) -> nn.Module:
        """Fast R-CNN's head: RoI Align → two fc layers → class logits and class-specific deltas."""
        return RoIHeads(
            self.build_box_pool(),
            TwoMLPHead(self.out_channels * self.pool_size**2, self.representation_size),
            FastRCNNPredictor(self.representation_size, self.num_classes + 1),
            bbox_reg_weights=None,
            **self.box_kw,
        )

    # --- the protocol ------------------------------------------------------------------------------
    def prepare_targets(self, targets, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Checked targets with float boxes of the images' dtype and int64 labels (other keys kept)."""
        flatten_targets(targets, images.shape[0], self.num_classes, images.device, images.dtype)
        out = []
        for t in targets:
            t = dict(t)
            t["boxes"] = t["boxes"].reshape(-1, 4).to(images.device, images.dtype)
            t["labels"] = t["labels"].reshape(-1).to(images.device, torch.int64)
            out.append(t)
        return out

    def proposals(self, images, features, targets=None):
        """The RPN's proposals (one ``Tensor[K_i, 4]`` per image) and its losses (training mode)."""
        sizes = [tuple(images.shape[-2:])] * images.shape[0]
        return self.rpn(images, features, sizes, targets)

    def forward(self, images: torch.Tensor, targets=None):
        check_images(images, self.in_shape)
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode (call model.eval() to detect)")
            targets = self.prepare_targets(targets, images)
        features = self.features(images)
        proposals, rpn_losses = self.proposals(images, features, targets)
        sizes = [tuple(images.shape[-2:])] * images.shape[0]
        detections, roi_losses = self.roi_heads(features, proposals, sizes, targets)
        if self.training:
            return {**rpn_losses, **roi_losses}
        return detections


FASTER_RCNN_ZOO = dict(ZOO_BASE)


@MODELS.register(
    "faster_rcnn",
    task="detect",
    description="Faster R-CNN: RPN + RoI Align heads on one stride-16 map, approximate joint training",
    zoo=FASTER_RCNN_ZOO,
)
class FasterRCNN(TwoStageDetector):
    """Single-scale Faster R-CNN (:class:`TwoStageDetector` with its defaults)."""
