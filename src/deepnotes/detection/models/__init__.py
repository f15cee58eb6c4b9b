"""Detectors that train on a laptop CPU, one file each, with their losses written as in the papers.

Every model is registered with ``task="detect"``; ``forward(images, targets=None)`` returns a
dict of named loss terms in training mode and, in eval mode, one
``{"boxes", "scores", "labels"}`` dict per image (torchvision's and torchmetrics' format).
"""

from deepnotes.detection.models.backbone import ConvBNAct, ResidualBlock, TinyResNet
from deepnotes.detection.models.centernet import (
    CenterNet,
    centernet_heatmap_loss,
    centernet_targets,
    gaussian_radius,
)
from deepnotes.detection.models.fcos import FCOS, centerness_target, fcos_locations, fcos_targets
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
    "YOLOv1",
    "yolov1_assign",
    "yolov1_loss",
]
