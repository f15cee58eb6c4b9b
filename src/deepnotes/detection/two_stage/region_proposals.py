"""What R-CNN, SPPNet and Fast R-CNN share: external proposals, their labels and a RoI sample.

- :class:`SelectiveSearchProposals` runs the toolkit's Selective Search on each image of a batch
  and keeps the boxes in a bounded least-recently-used cache keyed by the image's bytes, so that a
  training image pays for its proposals once (these detectors take their proposals from outside
  the network; the paper computed them once, offline, for the whole data set). The detectors use
  the cache in training mode only: at test time the proposals are computed for every image, so
  that speed measurements include them — they are these detectors' largest cost.
- :func:`label_proposals` gives each proposal the class of the object it overlaps most when that
  IoU is ≥ ``fg_iou_thresh``, background (0) when the IoU lies in ``[bg_iou_lo, bg_iou_hi)``, and
  ``-1`` (ignored) otherwise.
- :func:`sample_rois` draws a mini-batch of RoIs per image with at most ``positive_fraction``
  foreground (the toolkit's :class:`BalancedPositiveNegativeSampler`).
- :func:`per_class_detections` turns per-class scores and boxes into torchmetrics-style detections.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import torch

from deepnotes.core.checks import check_choice, check_float, check_int, check_tensor
from deepnotes.detection.boxes import clip_boxes_to_image
from deepnotes.detection.iou import box_iou
from deepnotes.detection.matcher import BalancedPositiveNegativeSampler
from deepnotes.detection.models._common import select_detections
from deepnotes.detection.selective_search import STRATEGIES, selective_search


class SelectiveSearchProposals:
    """Selective Search boxes for a batch of images, at most ``max_proposals`` each (best-ranked
    first), boxes with a side under ``min_side`` pixels dropped, cached per image.

    The cache is not part of the model's state (it is rebuilt on demand) and holds at most
    ``max_cached`` images: with 200 boxes an image that is ``max_cached × 3.2`` kB.
    """

    def __init__(self, mode: str = "single", max_proposals: int = 200, min_side: float = 2.0,
                 max_cached: int = 10000, seed: int = 0):
        self.mode = check_choice("mode", mode, tuple(STRATEGIES))
        self.max_proposals = check_int("max_proposals", max_proposals, min=1)
        self.min_side = check_float("min_side", min_side, min=0.0)
        self.max_cached = check_int("max_cached", max_cached, min=0)
        self.seed = check_int("seed", seed, min=0)
        self._cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def one(self, image: torch.Tensor, cache: bool = True) -> torch.Tensor:
        """Proposals ``Tensor[K, 4]`` (float32, xyxy pixels) of one ``image`` Tensor[3, H, W]."""
        pixels = image.detach().to("cpu", torch.float32).contiguous()
        key = hashlib.blake2b(pixels.numpy().tobytes(), digest_size=16).digest() + bytes(str(tuple(pixels.shape)), "ascii")
        if cache and key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        boxes = selective_search(pixels, mode=self.mode, seed=self.seed)
        big = ((boxes[:, 2] - boxes[:, 0]) >= self.min_side) & ((boxes[:, 3] - boxes[:, 1]) >= self.min_side)
        boxes = boxes[big][: self.max_proposals]
        if cache and self.max_cached:
            self._cache[key] = boxes
            if len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)  # the least recently used image
        return boxes

    def __call__(self, images: torch.Tensor, cache: bool = True) -> list[torch.Tensor]:
        """One ``Tensor[K_i, 4]`` per image of ``images`` Tensor[N, 3, H, W], on the images' device;
        ``cache=False`` computes them afresh and stores nothing."""
        check_tensor("images", images, ndim=4, floating=True, finite=True)
        return [self.one(x, cache).to(images.device) for x in images]


def label_proposals(proposals: torch.Tensor, gt_boxes: torch.Tensor, gt_labels: torch.Tensor,
                    fg_iou_thresh: float = 0.5, bg_iou_lo: float = 0.0, bg_iou_hi: float = 0.5):
    """Labels of one image's ``proposals`` Tensor[K, 4] against its objects.

    Returns ``labels`` LongTensor[K] (the class ≥ 1 for foreground, 0 background, −1 ignored),
    the matched object's box ``Tensor[K, 4]`` and the best IoU ``Tensor[K]``. In an image without
    objects every proposal is background, whatever ``bg_iou_lo`` (that lower bound is a heuristic
    for hard negatives near objects; with no object there is nothing near).
    """
    k = len(proposals)
    if gt_boxes.numel() == 0:
        return (torch.zeros(k, dtype=torch.int64, device=proposals.device), torch.zeros_like(proposals),
                proposals.new_zeros(k))
    iou, idx = box_iou(gt_boxes.to(proposals.dtype), proposals).max(0)
    labels = gt_labels.to(torch.int64)[idx]
    labels = torch.where(iou >= fg_iou_thresh, labels, torch.full_like(labels, -1))
    labels = torch.where((iou >= bg_iou_lo) & (iou < bg_iou_hi), torch.zeros_like(labels), labels)
    return labels, gt_boxes.to(proposals.dtype)[idx], iou


def sample_rois(labels: list[torch.Tensor], batch_size_per_image: int, positive_fraction: float,
                generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Indices of the sampled RoIs of each image: at most ``batch_size_per_image ·
    positive_fraction`` foreground, the rest background (fewer when an image has fewer)."""
    pos, neg = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)(labels, generator)
    return [torch.where(p.bool() | n.bool())[0] for p, n in zip(pos, neg)]


def per_class_detections(scores: torch.Tensor, boxes: torch.Tensor, counts: list[int], image_size,
                         *, score_thresh: float, nms_thresh: float, detections_per_img: int):
    """``scores`` Tensor[R, C] (objects only, no background column) and ``boxes`` Tensor[R, C, 4]
    of the proposals of a batch (``counts`` per image) → one ``{"boxes", "scores", "labels"}``
    dict per image: clipped to the image, score > ``score_thresh``, NMS per image and class."""
    r, c = scores.shape
    boxes = clip_boxes_to_image(boxes.reshape(-1, 4), tuple(image_size))
    image = torch.repeat_interleave(torch.arange(len(counts), device=scores.device),
                                    torch.as_tensor(counts, device=scores.device))
    labels = torch.arange(c, device=scores.device).expand(r, c).reshape(-1)
    return select_detections(boxes, scores.reshape(-1), labels, image.view(-1, 1).expand(r, c).reshape(-1),
                             len(counts), score_thresh=score_thresh, nms_thresh=nms_thresh,
                             detections_per_img=detections_per_img)
