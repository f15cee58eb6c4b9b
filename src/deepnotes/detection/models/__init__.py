"""Detectors that train on a laptop CPU, one file each, with their losses written as in the papers.

Every model is registered with ``task="detect"``; ``forward(images, targets=None)`` returns a
dict of named loss terms in training mode and, in eval mode, one
``{"boxes", "scores", "labels"}`` dict per image (torchvision's and torchmetrics' format).

Input: a float ``Tensor[N, C, H, W]`` of exactly the ``in_shape`` given at construction — another
size is a ``ValueError`` (``deepnotes detect`` converts files to RGB and resizes them, then maps
the boxes back). Targets: ``boxes`` xyxy pixels, ``labels`` 1..C; an image may have no object;
boxes reaching outside the image train (their centres are clamped into it); non-finite boxes or
``x2 < x1`` are a ``ValueError``. Train them with ``deepnotes train --task detect --model NAME``.
"""

from deepnotes.detection.models.backbone import ConvBNAct, ResidualBlock, TinyResNet
from deepnotes.detection.models.centernet import (
    CenterNet,
    centernet_heatmap_loss,
    centernet_targets,
    gaussian_radius,
)
from deepnotes.detection.models.fcos import FCOS, centerness_target, fcos_locations, fcos_targets
from deepnotes.detection.models.overfeat import OverFeat, merge_boxes, overfeat_targets
from deepnotes.detection.models.retinanet import (
    RetinaNet,
    prior_bias,
    retinanet_loss,
    retinanet_match,
)
from deepnotes.detection.models.ssd import (
    SSD,
    hard_negative_mask,
    ssd_default_boxes,
    ssd_loss,
    ssd_match,
)
from deepnotes.detection.models.yolov1 import YOLOv1, yolov1_assign, yolov1_loss

__all__ = [
    "CenterNet",
    "FCOS",
    "ConvBNAct",
    "ResidualBlock",
    "TinyResNet",
    "centernet_heatmap_loss",
    "centernet_targets",
    "centerness_target",
    "fcos_locations",
    "fcos_targets",
    "gaussian_radius",
    "OverFeat",
    "RetinaNet",
    "merge_boxes",
    "overfeat_targets",
    "SSD",
    "prior_bias",
    "retinanet_loss",
    "retinanet_match",
    "hard_negative_mask",
    "ssd_default_boxes",
    "ssd_loss",
    "ssd_match",
    "YOLOv1",
    "yolov1_assign",
    "yolov1_loss",
]
