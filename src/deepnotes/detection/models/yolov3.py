"""YOLOv3 (Redmon & Farhadi, 2018) with the YOLOv4/v5 techniques as switches.

YOLOv3 predicts on three grids (strides 8, 16, 32) fed by an FPN-like neck over a residual
Darknet backbone; each grid has three of the nine k-means anchors (the smallest on the finest
grid). Every prediction has an objectness logit and one *independent logistic classifier per
class* trained with binary cross-entropy (no softmax: labels need not exclude each other). The
loss and the assignment are :mod:`.yolo_loss`'s; the score of a class is σ(t_o) · σ(t_c).

The YOLOv4 / v5 techniques, each a keyword (``deepnotes train --model yolov3 --model-kw KEY=VALUE``):

=================  ==========================================================================
``csp=True``       CSPDarknet stages (:class:`~.yolo_parts.CSPStage`)
``spp=True``       SPP block (max pools 5, 9, 13) on the stride-32 map (:class:`~.yolo_parts.SPP`)
``pan=True``       PANet's bottom-up path in the neck (:class:`~.yolo_neck.YOLONeck`)
``fusion="asff"``  ASFF (learnt per-pixel level weights) or ``"se"`` (SE-gated non-linear fusion)
``act="mish"``     Mish instead of leaky ReLU everywhere
``dropblock=p``    DropBlock (3 × 3 blocks) on the neck's maps
``mosaic=p``       Mosaic on a share ``p`` of the training batches (:func:`~.yolo_batch.mosaic_batch`)
``cutmix=p``       CutMix on a share ``p`` of the training batches (:func:`~.yolo_batch.cutmix_batch`)
``label_smoothing=ε``  binary class targets ε/2 and 1 − ε/2
``box_loss="ciou"``  1 − CIoU of the decoded box instead of the squared errors on t_x … t_h
``nms="diou"``     DIoU-NMS at inference
``multi_scale=True``  each training batch resized to a random multiple of 32 (YOLOv2's trick)
cosine schedule    a Trainer setting: ``deepnotes train --schedule cosine``
=================  ==========================================================================

Mosaic, CutMix and multi-scale act on the batch inside the training forward, because the detect
task hands the model fixed-size images (module :mod:`.yolo_batch`). Sizes are scaled down from
Darknet-53 (widths ``w … 16w``, 7 residual units instead of 23) to train on a CPU in minutes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepnotes.core.checks import check_int
from deepnotes.core.registry import MODELS
from deepnotes.detection.models.yolo_base import SHAPES_ANCHORS_9, YOLOBase
from deepnotes.detection.models.yolo_neck import DarknetBackbone, YOLONeck
from deepnotes.detection.models.yolo_parts import ConvBNAct

#: recorded zoo settings: width 16 without augmentation overfit (validation mAP@0.5 flat at 0.77
#: while the training loss kept falling) and needed 10.5 CPU minutes; width 12 with Mosaic on half
#: the batches (a training-time augmentation, like the cosine schedule) generalizes better in half the time
YOLOV3_ZOO = {
    "epochs": 12, "batch_size": 16, "lr": 2e-3, "optimizer": "adam", "weight_decay": 0.0,
    "model_kw": {"width": 12, "mosaic": 0.5}, "data_kw": {}, "schedule": "cosine", "target_map50": 0.80,
}


def prior_bias(p: float) -> float:
    """The logit whose sigmoid is ``p``: objectness and class outputs start at a low prior so the
    many empty cells do not dominate the first steps (as RetinaNet's prior init)."""
    return -math.log((1 - p) / p)


@MODELS.register("yolov3", task="detect", zoo=YOLOV3_ZOO,
                 description="YOLOv3: three scales, 9 k-means anchors, logistic classes; YOLOv4/v5 switches")
class YOLOv3(YOLOBase):
    """YOLOv3 for ``in_shape`` images (sides multiples of 32).

    ``forward(images, targets=None)``: training mode → the loss terms (``loss_xy, loss_wh`` or
    ``loss_box``, ``loss_obj, loss_class``); eval mode → one ``{"boxes", "scores", "labels"}`` dict
    per image. Keywords: the switches in the module docstring, ``width`` (backbone base width),
    ``anchors`` (nine ``(w, h)``, default :data:`~.yolo_base.SHAPES_ANCHORS_9`).
    """

    strides = (8, 16, 32)
    anchors_per_level = (3, 3, 3)
    class_loss = "bce"

    def __init__(
        self,
        in_shape=(3, 128, 128),
        num_classes: int = 3,
        width: int = 8,
        anchors=SHAPES_ANCHORS_9,
        csp: bool = False,
        spp: bool = False,
        pan: bool = False,
        fusion: str | None = None,
        act: str = "leaky",
        dropblock: float = 0.0,
        mosaic: float = 0.0,
        cutmix: float = 0.0,
        label_smoothing: float = 0.0,
        box_loss: str = "mse",
        nms: str = "nms",
        multi_scale: bool = False,
        scales=(0.75, 1.0, 1.25),
        ignore_thresh: float = 0.5,
        score_thresh: float = 0.01,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        pre_nms_top_n: int = 300,
    ):
        super().__init__()
        self._setup(in_shape, num_classes, anchors, multiple=32, multi_scale=multi_scale, scales=scales,
                    mosaic=mosaic, cutmix=cutmix, box_loss=box_loss, nms=nms, label_smoothing=label_smoothing,
                    ignore_thresh=ignore_thresh, score_thresh=score_thresh, nms_thresh=nms_thresh,
                    detections_per_img=detections_per_img, pre_nms_top_n=pre_nms_top_n)
        w = check_int("width", width, min=2)
        self.backbone = DarknetBackbone(self.in_shape[0], w, csp=bool(csp), act=act)
        self.neck = YOLONeck(self.backbone.out_channels, 4 * w, spp=bool(spp), pan=bool(pan), fusion=fusion,
                             act=act, dropblock=dropblock)
        out = 5 + self.num_classes
        self.heads = nn.ModuleList(
            nn.Sequential(ConvBNAct(4 * w, 8 * w, 3, act=act), nn.Conv2d(8 * w, a * out, 1)) for a in self.anchors_per_level
        )
        for head, a in zip(self.heads, self.anchors_per_level):
            bias = head[-1].bias.view(a, out)
            nn.init.constant_(bias[:, 4], prior_bias(0.01))
            nn.init.constant_(bias[:, 5:], prior_bias(0.01))

    def raw_levels(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Raw ``(N, 3, H/s, W/s, 5 + C)`` for s = 8, 16, 32."""
        feats = self.neck(self.backbone(images))
        out = []
        for head, f, a in zip(self.heads, feats, self.anchors_per_level):
            x = head(f)
            n, _, h, w = x.shape
            out.append(x.view(n, a, 5 + self.num_classes, h, w).permute(0, 1, 3, 4, 2))
        return out
