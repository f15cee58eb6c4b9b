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
from deepnotes.detection.models.cornernet import CornerNet, corner_pool, pull_push_loss
from deepnotes.detection.models.extremenet import ExtremeNet, extreme_points, group_extreme_points
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
from deepnotes.detection.models.yolo_base import SHAPES_ANCHORS_5, SHAPES_ANCHORS_9, dataset_anchors
from deepnotes.detection.models.yolo_batch import cutmix_batch, mosaic_batch, rescale_batch
from deepnotes.detection.models.yolo_loss import yolo_assign, yolo_loss
from deepnotes.detection.models.yolo_neck import ASFF, DarknetBackbone, SEFusion, YOLONeck
from deepnotes.detection.models.yolo_parts import (
    SPP,
    CSPStage,
    DropBlock2d,
    drop_block,
    reorg,
    smooth_labels,
)
from deepnotes.detection.models.yolov1 import YOLOv1, yolov1_assign, yolov1_loss
from deepnotes.detection.models.yolov2 import YOLOv2
from deepnotes.detection.models.yolov3 import YOLOv3

__all__ = [
    "CenterNet",
    "CornerNet",
    "corner_pool",
    "pull_push_loss",
    "ExtremeNet",
    "extreme_points",
    "group_extreme_points",
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
    "YOLOv2",
    "YOLOv3",
    "ASFF",
    "CSPStage",
    "DarknetBackbone",
    "DropBlock2d",
    "SEFusion",
    "SHAPES_ANCHORS_5",
    "SHAPES_ANCHORS_9",
    "SPP",
    "YOLONeck",
    "cutmix_batch",
    "dataset_anchors",
    "drop_block",
    "mosaic_batch",
    "reorg",
    "rescale_batch",
    "smooth_labels",
    "yolo_assign",
    "yolo_loss",
    "yolov1_assign",
    "yolov1_loss",
]
