"""Semantic segmentation: FCN, SegNet, U-Net, DeepLab v1–v3+, and the per-pixel loss.

Importing this package registers the models (``task="segment"``) in ``MODELS``. The metrics
(pixel accuracy, mIoU, boundary F-score) live in :mod:`deepnotes.metrics`.
"""

from deepnotes.segmentation.blocks import (
    Encoder,
    SegmentationModel,
    SeparableConv2d,
    bilinear_kernel,
    conv_bn_relu,
)
from deepnotes.segmentation.data import (
    SEGMENT_CLASSES,
    SemanticMasks,
    pixel_classes,
    semantic_target,
    shapes_segmentation,
)
from deepnotes.segmentation.deeplab import (
    ASPP,
    DeepLabV1,
    DeepLabV2,
    DeepLabV3,
    DeepLabV3Plus,
    deeplabv1,
    deeplabv2,
    deeplabv3,
    deeplabv3plus,
)
from deepnotes.segmentation.fcn import FCN, fcn8s, fcn16s, fcn32s
from deepnotes.segmentation.loss import PixelCrossEntropy, pixel_cross_entropy
from deepnotes.segmentation.segnet import SegNet, segnet
from deepnotes.segmentation.unet import UNet, unet

__all__ = [
    "ASPP",
    "FCN",
    "DeepLabV1",
    "DeepLabV2",
    "DeepLabV3",
    "DeepLabV3Plus",
    "Encoder",
    "PixelCrossEntropy",
    "SegNet",
    "SEGMENT_CLASSES",
    "SegmentationModel",
    "SemanticMasks",
    "SeparableConv2d",
    "UNet",
    "bilinear_kernel",
    "conv_bn_relu",
    "deeplabv1",
    "deeplabv2",
    "deeplabv3",
    "deeplabv3plus",
    "fcn8s",
    "fcn16s",
    "fcn32s",
    "pixel_classes",
    "pixel_cross_entropy",
    "segnet",
    "semantic_target",
    "shapes_segmentation",
    "unet",
]
