"""What YOLOv2 and YOLOv3 share: anchors (k-means on the training boxes), the training forward
(batch augmentations, multi-scale resize, :func:`~.yolo_loss.yolo_loss`) and the decoding of
the grids into detections (NMS or DIoU-NMS).

Anchors are ``(w, h)`` in pixels of the ``in_shape`` images, kept in a buffer (so a checkpoint
carries them). As in Darknet's configuration files they are computed once, offline, on the
training set — :func:`dataset_anchors` runs the toolkit's 1 − IoU k-means — and recorded:
:data:`SHAPES_ANCHORS_5` and :data:`SHAPES_ANCHORS_9` are its result on the ``shapes`` training
boxes (first 500 images of seed 0; ``tests/detection/test_yolov2.py`` recomputes them). Pass
``anchors=[[w, h], …]`` for another dataset.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_float, check_int, check_type
from deepnotes.detection.anchors import kmeans_anchors
from deepnotes.detection.models._common import (
    check_images,
    check_in_shape,
    flatten_targets,
    select_detections,
)
from deepnotes.detection.models.yolo_batch import (
    cutmix_batch,
    mosaic_batch,
    random_size,
    rescale_batch,
)
from deepnotes.detection.models.yolo_loss import decode, yolo_loss
from deepnotes.detection.nms import batched_nms, diou_nms

# dataset_anchors(shapes(seed=0, n_train=500).train, k) rounded to 0.1 px, sorted by area
SHAPES_ANCHORS_5 = ((13.9, 29.5), (39.7, 13.9), (25.3, 47.1), (46.9, 27.8), (50.3, 51.1))
SHAPES_ANCHORS_9 = ((16.6, 14.0), (12.2, 30.5), (44.9, 12.5), (27.5, 25.9), (16.4, 49.8),
                    (52.3, 23.3), (29.6, 49.9), (48.7, 38.2), (51.3, 55.4))


def dataset_anchors(dataset, k: int, seed: int = 0) -> torch.Tensor:
    """YOLOv2's anchors: the ``k`` centres of the 1 − IoU k-means of every box ``(w, h)`` in
    ``dataset`` (items ``(image, {"boxes": xyxy, …})``), sorted by area, rounded to 0.1 px."""
    boxes = torch.cat([torch.as_tensor(dataset[i][1]["boxes"]).reshape(-1, 4) for i in range(len(dataset))])
    wh = (boxes[:, 2:] - boxes[:, :2]).double()
    wh = wh[(wh > 0).all(1)]
    if len(wh) < k:
        raise ValueError(f"dataset has {len(wh)} non-empty boxes, fewer than k = {k} anchors")
    centres, _ = kmeans_anchors(wh, k, seed=seed)
    return (centres * 10).round() / 10


def _check_anchors(anchors, count: int) -> torch.Tensor:
    check_type("anchors", anchors, (tuple, list, torch.Tensor))
    a = torch.as_tensor(anchors, dtype=torch.float32)
    if a.shape != (count, 2) or not bool(torch.isfinite(a).all()) or bool((a <= 0).any()):
        raise ValueError(f"anchors must be {count} positive (w, h) pairs, got shape {tuple(a.shape)}")
    return a[torch.argsort(a[:, 0] * a[:, 1], stable=True)]


class YOLOBase(nn.Module):
    """Subclasses set ``strides``, ``anchors_per_level`` and ``class_loss`` and define
    :meth:`raw_levels` (raw ``(N, A, H, W, 5 + C)`` per level for any input size)."""

    strides: tuple[int, ...] = ()
    anchors_per_level: tuple[int, ...] = ()
    class_loss = "bce"

    def _setup(self, in_shape, num_classes, anchors, *, multiple: int, multi_scale, scales, mosaic, cutmix,
               box_loss, nms, label_smoothing, ignore_thresh, score_thresh, nms_thresh, detections_per_img,
               pre_nms_top_n) -> None:
        self.in_shape = check_in_shape(in_shape, multiple)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.register_buffer("anchors", _check_anchors(anchors, sum(self.anchors_per_level)))
        self.multiple = multiple
        self.multi_scale = bool(check_type("multi_scale", multi_scale, (bool, int)))
        check_type("scales", scales, (tuple, list))
        self.scales = tuple(check_float(f"scales[{i}]", s, min=0.0, min_inclusive=False) for i, s in enumerate(scales))
        if not self.scales:
            raise ValueError("scales must name at least one scale")
        self.mosaic = check_float("mosaic", mosaic, min=0.0, max=1.0)
        self.cutmix = check_float("cutmix", cutmix, min=0.0, max=1.0)
        self.box_loss = check_choice("box_loss", box_loss, ("mse", "ciou"))
        self.nms = check_choice("nms", nms, ("nms", "diou"))
        self.label_smoothing = check_float("label_smoothing", label_smoothing, min=0.0, max=1.0)
        self.ignore_thresh = check_float("ignore_thresh", ignore_thresh, min=0.0, max=1.0)
        self.score_thresh = check_float("score_thresh", score_thresh, min=0.0, max=1.0)
        self.nms_thresh = check_float("nms_thresh", nms_thresh, min=0.0, max=1.0)
        self.detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
        self.pre_nms_top_n = check_int("pre_nms_top_n", pre_nms_top_n, min=1)
        box_terms = ("loss_box",) if self.box_loss == "ciou" else ("loss_xy", "loss_wh")
        self.loss_names = (*box_terms, "loss_obj", "loss_class")

    def level_anchors(self) -> list[torch.Tensor]:
        """The anchors of each level, smallest on the finest level."""
        return list(torch.split(self.anchors, list(self.anchors_per_level)))

    def raw_levels(self, images: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward(self, images: torch.Tensor, targets=None):
        check_images(images, self.in_shape)
        if not self.training:
            return self.postprocess(self.raw_levels(images))
        if targets is None:
            raise ValueError("targets are required in training mode (call model.eval() to detect)")
        flatten_targets(targets, len(images), self.num_classes, images.device)  # validate before augmenting
        images, targets = mosaic_batch(images, targets, self.mosaic)
        images, targets = cutmix_batch(images, targets, self.cutmix)
        if self.multi_scale:
            images, targets = rescale_batch(images, targets, random_size(self.in_shape[1], self.scales, self.multiple))
        gt, labels, image = flatten_targets(targets, len(images), self.num_classes, images.device, images.dtype)
        return yolo_loss(self.raw_levels(images), self.level_anchors(), self.strides, gt, labels, image,
                         class_loss=self.class_loss, box_loss=self.box_loss, ignore_thresh=self.ignore_thresh,
                         label_smoothing=self.label_smoothing)

    def scores(self, raw: torch.Tensor) -> torch.Tensor:
        """Class scores ``(N, A, H, W, C)``: objectness × class probability."""
        cls = raw[..., 5:].softmax(-1) if self.class_loss == "softmax" else raw[..., 5:].sigmoid()
        return raw[..., 4:5].sigmoid() * cls

    @torch.no_grad()
    def postprocess(self, levels: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Every (prediction, class) pair is a candidate (YOLOv3's classes are independent); the
        ``pre_nms_top_n`` best per image above ``score_thresh`` go through per-class NMS (or
        DIoU-NMS) and the ``detections_per_img`` best are kept."""
        n, c = levels[0].shape[0], self.num_classes
        h, w = self.in_shape[1:]
        boxes = torch.cat([decode(r, a, s).reshape(n, -1, 4) for r, a, s in
                           zip(levels, self.level_anchors(), self.strides)], 1)
        scores = torch.cat([self.scores(r).reshape(n, -1, c) for r in levels], 1)  # (N, P, C)
        k = min(self.pre_nms_top_n, scores.shape[1] * c)
        top, index = scores.flatten(1).topk(k, dim=1)  # (N, k) over predictions × classes
        pred, label = index // c, index % c
        box = boxes.gather(1, pred.unsqueeze(-1).expand(-1, -1, 4))
        box = torch.stack([box[..., 0].clamp(0, w), box[..., 1].clamp(0, h), box[..., 2].clamp(0, w),
                           box[..., 3].clamp(0, h)], -1).reshape(-1, 4)
        top, label = top.reshape(-1), label.reshape(-1)
        image = torch.arange(n, device=box.device).repeat_interleave(k)
        keep = top > self.score_thresh
        box, top, label, image = box[keep], top[keep], label[keep], image[keep]
        group = image * c + label
        if self.nms == "diou":
            # one DIoU-NMS over all groups: each group is shifted far from the others, where DIoU < 0
            shift = (group.to(box.dtype) * (max(h, w) * 4 + 1)).unsqueeze(1)
            order = diou_nms(box + shift, top, self.nms_thresh)
        else:
            order = batched_nms(box, top, group, self.nms_thresh)
        return select_detections(box[order], top[order], label[order], image[order], n, score_thresh=-1.0,
                                 nms_thresh=None, detections_per_img=self.detections_per_img)
