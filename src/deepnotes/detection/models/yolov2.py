"""YOLOv2 (Redmon & Farhadi, 2017): anchors from k-means, sigmoid-bounded offsets, passthrough.

What changes from YOLOv1, each visible here:

- **batch norm** after every convolution (:class:`~.yolo_parts.ConvBNAct`), no dropout;
- **anchors**: five priors ``(p_w, p_h)`` from the 1 − IoU k-means of the training boxes
  (:func:`~.yolo_base.dataset_anchors`; default :data:`~.yolo_base.SHAPES_ANCHORS_5`), each
  anchor of each cell with its own box, objectness and class distribution (softmax);
- **sigmoid-bounded offsets**: ``b_x = σ(t_x) + c_x`` keeps a predicted centre inside its cell,
  which stabilizes early training (an unbounded offset may move any anchor anywhere);
- **passthrough**: the stride-8 map, reduced by a 1 × 1 conv, is rearranged 2 × 2 → channels
  (:func:`~.yolo_parts.reorg`) and concatenated with the stride-16 map, giving the detector the
  finer features that small objects need;
- **multi-scale training** (``multi_scale=True``): every training batch is resized to a random
  multiple of 32 among ``scales × 128`` (the network is fully convolutional, so the grid follows
  the input); the paper switches every 10 batches, here every batch.

The loss is :func:`~.yolo_loss.yolo_loss` with softmax classes (squared errors on σ(t_x), σ(t_y)
and on t_w, t_h against log(g/p), BCE objectness with YOLO's ignore rule). Departures, to train
on a CPU in minutes: a Darknet-19 in miniature (3 × 3 / 1 × 1 convs and max pools at widths
``w … 16w``) and an output stride of 16 instead of 32 (the images are 128 px, so 8 × 8 cells).
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_int
from deepnotes.core.registry import MODELS
from deepnotes.detection.models.yolo_base import SHAPES_ANCHORS_5, YOLOBase
from deepnotes.detection.models.yolo_parts import ConvBNAct, reorg
from deepnotes.detection.models.yolov3 import prior_bias

# the issue sets no YOLOv2 target: the table holds it to YOLOv1's 0.50, the version it improves on
YOLOV2_ZOO = {
    "epochs": 12, "batch_size": 16, "lr": 2e-3, "optimizer": "adam", "weight_decay": 0.0,
    "model_kw": {"width": 8}, "data_kw": {}, "schedule": "cosine", "target_map50": 0.50,
}


def _darknet19(w: int, c_in: int) -> tuple[nn.Sequential, nn.Sequential]:
    """The trunk up to stride 8 (the passthrough source) and from there to stride 16."""
    pool = nn.MaxPool2d(2, 2)
    to8 = nn.Sequential(
        ConvBNAct(c_in, w), pool,
        ConvBNAct(w, 2 * w), pool,
        ConvBNAct(2 * w, 4 * w), ConvBNAct(4 * w, 2 * w, 1), ConvBNAct(2 * w, 4 * w), pool,
        ConvBNAct(4 * w, 8 * w), ConvBNAct(8 * w, 4 * w, 1), ConvBNAct(4 * w, 8 * w),
    )
    to16 = nn.Sequential(
        pool, ConvBNAct(8 * w, 16 * w), ConvBNAct(16 * w, 8 * w, 1), ConvBNAct(8 * w, 16 * w),
    )
    return to8, to16


@MODELS.register("yolov2", task="detect", zoo=YOLOV2_ZOO,
                 description="YOLOv2: batch norm, k-means anchors, sigmoid offsets, passthrough, multi-scale")
class YOLOv2(YOLOBase):
    """YOLOv2 for ``in_shape`` images (sides multiples of 32).

    ``forward(images, targets=None)``: training mode → ``{"loss_xy", "loss_wh", "loss_obj",
    "loss_class"}``; eval mode → one ``{"boxes", "scores", "labels"}`` dict per image (scores
    σ(t_o) · softmax class probability, per-class NMS).
    """

    strides = (16,)
    anchors_per_level = (5,)
    class_loss = "softmax"

    def __init__(
        self,
        in_shape=(3, 128, 128),
        num_classes: int = 3,
        width: int = 8,
        anchors=SHAPES_ANCHORS_5,
        multi_scale: bool = False,
        scales=(0.75, 1.0, 1.25),
        ignore_thresh: float = 0.6,
        score_thresh: float = 0.01,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        pre_nms_top_n: int = 300,
    ):
        super().__init__()
        self._setup(in_shape, num_classes, anchors, multiple=32, multi_scale=multi_scale, scales=scales,
                    mosaic=0.0, cutmix=0.0, box_loss="mse", nms="nms", label_smoothing=0.0,
                    ignore_thresh=ignore_thresh, score_thresh=score_thresh, nms_thresh=nms_thresh,
                    detections_per_img=detections_per_img, pre_nms_top_n=pre_nms_top_n)
        w = check_int("width", width, min=2)
        self.to8, self.to16 = _darknet19(w, self.in_shape[0])
        self.passthrough = ConvBNAct(8 * w, w, 1)  # reduce before reorg, as Darknet's 64-channel 1×1
        self.head = nn.Sequential(ConvBNAct(16 * w + 4 * w, 16 * w), nn.Conv2d(16 * w, 5 * (5 + self.num_classes), 1))
        bias = self.head[-1].bias.view(5, 5 + self.num_classes)
        nn.init.constant_(bias[:, 4], prior_bias(0.01))

    def raw_levels(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Raw ``(N, 5, H/16, W/16, 5 + C)``."""
        fine = self.to8(images)
        coarse = self.to16(fine)
        x = self.head(torch.cat([coarse, reorg(self.passthrough(fine), 2)], 1))
        n, _, h, w = x.shape
        return [x.view(n, 5, 5 + self.num_classes, h, w).permute(0, 1, 3, 4, 2)]
