"""Multi-scale testing: run a detector on several resized copies of each image and merge.

Multi-scale *training* (YOLOv2/v3's ``multi_scale=True``, :func:`rescale_batch`) shows the
network objects at many sizes; multi-scale *testing* looks at each test image at several sizes
and keeps the best of every view. A small object that falls under the detector's smallest
anchor or stride becomes detectable when the image is enlarged; a large one that overflows the
receptive field is seen whole when the image is shrunk. Larger test scales cost more forward
passes and usually find more small objects; smaller ones are cheaper and coarser (the notes,
lines 1545–1547 on multi-scale training and testing, 1466–1472 on small objects).

How a scale works with a fixed-input detector
---------------------------------------------
Every detector in :mod:`deepnotes.detection.models` takes images of exactly its ``in_shape``
``(C, H_in, W_in)``. For an image of ``H × W`` pixels (any size; usually ``in_shape`` itself)
and a scale ``s``:

1. **Resize** the image to ``h_s × w_s = round(s·H) × round(s·W)`` (bilinear, antialiased when
   shrinking; ``s`` giving the original size is no resize at all).
2. **Pad** it on the bottom and right with ``fill`` up to at least ``H_in × W_in``. With
   ``s < 1`` on an ``in_shape`` image this is the whole story: one view, objects smaller.
3. **Tile** it with ``H_in × W_in`` windows when it is larger than ``in_shape`` (``s > 1``):
   along each side, ``n = ceil((L − T) / (T − overlap·T)) + 1`` windows spread evenly from 0 to
   ``L − T``, so neighbours overlap by at least ``tile_overlap`` of a window (see
   :func:`tile_starts`). Objects are larger; the tiles together cover the whole image.
4. **Detect** on every view, ``batch_size`` images at a time (under ``torch.no_grad``).
5. **Map back.** A box ``(x1, y1, x2, y2)`` found in the window at ``(x0, y0)`` lies at
   ``(x1 + x0, y1 + y0, x2 + x0, y2 + y0)`` in the resized image; a box whose centre lies in the
   padding (outside ``[0, w_s] × [0, h_s]``) is dropped, the rest are divided by the exact
   factors ``(w_s / W, h_s / H)`` (the sizes' ratios, not ``s``) and clipped to ``[0, W] × [0, H]``.
6. **Merge** all views of one image, class by class (:func:`merge_detections`):
   ``method="nms"`` is greedy NMS per image and class (torchvision's ``batched_nms``);
   ``method="vote"`` is NMS followed by *box voting*: each kept box is replaced by the
   score-weighted mean of every box of its image and class with IoU above ``iou_threshold`` with
   it (itself included), its score unchanged. The ``detections_per_img`` best of each image are
   kept, sorted by score.

With ``scales=(1.0,)`` on ``in_shape`` images there is one view, nothing is moved, and with
``iou_threshold`` at or above the model's own NMS threshold (1.0 for a detector without NMS)
and ``detections_per_img`` at least the model's, the result is the model's own output.

Window borders get no special treatment: an object cut by one is usually also seen whole in the
neighbouring window (they overlap by ``tile_overlap``) or at another scale, and NMS keeps the
higher-scored box; a partial box overlapping the whole one by IoU ``<= iou_threshold`` survives
as a duplicate. The padding is filled with ``fill`` (0 by default: the mean of normalized
images, black for images in ``[0, 1]``).

Example
-------
>>> import torch
>>> from deepnotes.detection import multi_scale_detect
>>> from deepnotes.core.registry import MODELS
>>> model = MODELS.create("yolov1", (3, 64, 64), 3, width=4).eval()
>>> out = multi_scale_detect(model, torch.rand(2, 3, 64, 64), scales=(0.5, 1.0, 1.5))
>>> len(out), sorted(out[0])
(2, ['boxes', 'labels', 'scores'])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from deepnotes.core.checks import check_choice, check_float, check_int, check_tensor, check_type
from deepnotes.detection._validate import check_boxes
from deepnotes.detection.iou import box_iou
from deepnotes.detection.nms import batched_nms

#: merge methods of :func:`merge_detections`
METHODS = ("nms", "vote")
#: most IoU entries held at once by box voting (kept boxes × the boxes of their groups)
VOTE_CHUNK = 1 << 22


def tile_starts(length: int, tile: int, overlap: float = 0.25) -> list[int]:
    """Left (or top) edges of the windows of side ``tile`` that cover ``[0, length)``.

    One window at 0 when ``length <= tile`` (the image is padded up to ``tile``); otherwise
    ``n = ceil((length − tile) / (tile − overlap·tile)) + 1`` windows whose edges are spread
    evenly (rounded) from 0 to ``length − tile``, so the first starts at 0, the last ends at
    ``length`` and neighbours share at least ``overlap · tile`` pixels (less at most one
    rounding pixel), but never two windows at the same place (at most ``length − tile + 1``).

    >>> tile_starts(64, 64), tile_starts(96, 64), tile_starts(160, 64, overlap=0.5)
    ([0], [0, 32], [0, 32, 64, 96])
    """
    length = check_int("length", length, min=1)
    tile = check_int("tile", tile, min=1)
    overlap = check_float("overlap", overlap, min=0.0, max=1.0, max_inclusive=False)
    if length <= tile:
        return [0]
    n = min(math.ceil((length - tile) / (tile - overlap * tile)) + 1, length - tile + 1)  # steps >= 1 px
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def _check_scales(scales) -> tuple[float, ...]:
    check_type("scales", scales, (tuple, list))
    if len(scales) == 0:
        raise ValueError("scales must hold at least one scale, got an empty sequence")
    return tuple(check_float(f"scales[{i}]", s, min=0.0, min_inclusive=False) for i, s in enumerate(scales))


def _check_model(model) -> tuple[int, int, int]:
    check_type("model", model, torch.nn.Module)
    in_shape = getattr(model, "in_shape", None)
    if not isinstance(in_shape, (tuple, list)) or len(in_shape) != 3:
        raise TypeError(f"model must be a detector with an in_shape (C, H, W) attribute, got {type(model).__name__}")
    if model.training:
        raise ValueError("model must be in eval mode (call model.eval()): in training mode a detector returns losses")
    return tuple(int(v) for v in in_shape)


def _split_per_image(boxes, scores, labels, image, batch: int, detections_per_img: int) -> list[dict[str, torch.Tensor]]:
    """Detections sorted by score → one dict per image holding its ``detections_per_img`` best."""
    order = torch.argsort(image, stable=True)  # by image, score order kept within each
    counts = torch.bincount(image, minlength=batch).tolist()
    parts = zip(*(torch.split(t[order], counts) for t in (boxes, scores, labels)))
    return [{"boxes": b[:detections_per_img], "scores": s[:detections_per_img], "labels": c[:detections_per_img]}
            for b, s, c in parts]


def box_voting(
    boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, keep: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Refine kept boxes by voting: ``b'_k = Σ_j s_j b_j / Σ_j s_j`` over the boxes ``j`` of the
    same group with ``IoU(b_k, b_j) > iou_threshold`` (and ``j = k``).

    ``boxes (Tensor[M, 4])``, ``scores (Tensor[M])``, ``groups (Tensor[M])`` (int), ``keep``:
    indices of the kept boxes → ``Tensor[len(keep), 4]``. A kept box whose voters all score 0
    stays as it is.

    Only boxes of one group vote, so the boxes are sorted by group and each kept box is compared
    with its group's run only: a chunk of kept boxes (in group order) meets the contiguous run
    of the groups it spans, chunks sized so that at most :data:`VOTE_CHUNK` IoUs are held.
    """
    check_boxes("boxes", boxes)
    check_tensor("scores", scores, ndim=1, floating=True)
    for name, t in (("groups", groups), ("keep", keep)):
        check_tensor(name, t, ndim=1)
        if t.is_floating_point() or t.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer tensor, got dtype {t.dtype}")
    if not len(boxes) == len(scores) == len(groups):
        raise ValueError(f"boxes, scores and groups must describe the same boxes; got {len(boxes)}, "
                         f"{len(scores)} and {len(groups)}")
    if len(keep) and (int(keep.min()) < 0 or int(keep.max()) >= len(boxes)):
        raise ValueError(f"keep must hold indices into boxes (0..{len(boxes) - 1})")
    iou_threshold = check_float("iou_threshold", iou_threshold, min=0.0, max=1.0)
    out = boxes[keep].clone()
    if len(keep) == 0:
        return out
    order = torch.argsort(groups, stable=True)  # boxes by group: each group is one run
    sorted_groups = groups[order]
    position = torch.empty_like(order)
    position[order] = torch.arange(len(order), device=order.device)  # where box j sits in `order`
    rows = torch.argsort(groups[keep], stable=True)  # kept boxes by group
    kept = keep[rows]
    lo = torch.searchsorted(sorted_groups, groups[kept], right=False)
    hi = torch.searchsorted(sorted_groups, groups[kept], right=True)
    start = 0
    while start < len(kept):  # one iteration per chunk of kept boxes
        # rows × columns of the chunk [start, end) grows with end; no more rows than fit beside
        # the first row's columns, so finding the end costs no more than the chunk itself
        span = min(len(kept) - start, max(1, VOTE_CHUNK // int(hi[start] - lo[start])))
        cost = torch.arange(1, span + 1, device=kept.device) * (hi[start:start + span] - lo[start])
        end = start + max(1, int((cost <= VOTE_CHUNK).sum()))  # cost grows with the chunk's end
        k, c0, c1 = kept[start:end], int(lo[start]), int(hi[end - 1])
        cand = order[c0:c1]
        votes = (box_iou(boxes[k], boxes[cand]) > iou_threshold) & (groups[k, None] == groups[cand][None, :])
        votes[torch.arange(len(k), device=k.device), position[k] - c0] = True  # a kept box votes for itself
        weight = votes * scores[cand][None, :]
        total = weight.sum(1, keepdim=True)
        fused = weight @ boxes[cand] / total
        out[rows[start:end]] = torch.where(total > 0, fused, boxes[k])
        start = end
    return out


def merge_detections(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    image: torch.Tensor,
    batch: int,
    iou_threshold: float = 0.5,
    method: str = "nms",
    detections_per_img: int = 100,
) -> list[dict[str, torch.Tensor]]:
    """Merge the detections of a batch (from any number of views) per image and class.

    ``boxes (Tensor[M, 4])`` xyxy, ``scores (Tensor[M])``, ``labels (Tensor[M])`` int,
    ``image (Tensor[M])`` the image index in ``0..batch-1`` of each box. NMS runs once over the
    batch with the groups ``image · (max label + 1) + label`` (torchvision's ``batched_nms``);
    ``method="vote"`` then replaces each kept box by its vote (:func:`box_voting`). Returns one
    ``{"boxes", "scores", "labels"}`` dict per image, score descending, at most
    ``detections_per_img`` each; an image without boxes gets empty tensors of the inputs' dtypes.
    """
    check_tensor("boxes", boxes, ndim=2, floating=True)
    check_tensor("scores", scores, ndim=1, floating=True)
    check_tensor("labels", labels, ndim=1)
    check_tensor("image", image, ndim=1)
    if boxes.shape[1] != 4 or not (len(boxes) == len(scores) == len(labels) == len(image)):
        raise ValueError(
            f"boxes (M, 4), scores, labels and image (M,) must describe the same boxes; got shapes "
            f"{tuple(boxes.shape)}, {tuple(scores.shape)}, {tuple(labels.shape)}, {tuple(image.shape)}"
        )
    batch = check_int("batch", batch, min=0)
    iou_threshold = check_float("iou_threshold", iou_threshold, min=0.0, max=1.0)
    method = check_choice("method", method, METHODS)
    detections_per_img = check_int("detections_per_img", detections_per_img, min=1)
    labels, image = labels.long(), image.long()
    groups = image * (int(labels.max()) + 1 if len(labels) else 1) + labels
    keep = batched_nms(boxes, scores, groups, iou_threshold)
    kept = box_voting(boxes, scores, groups, keep, iou_threshold) if method == "vote" else boxes[keep]
    return _split_per_image(kept, scores[keep], labels[keep], image[keep], batch, detections_per_img)


def _views(images: torch.Tensor, in_hw: tuple[int, int], scale: float, overlap: float, fill: float):
    """The windows of one scale: yields ``(crops (N, C, H_in, W_in), x0, y0)`` and, first, the
    resized size ``(h_s, w_s)``."""
    h, w = images.shape[-2:]
    hs, ws = max(1, round(scale * h)), max(1, round(scale * w))
    yield hs, ws
    x = images
    if (hs, ws) != (h, w):
        x = F.interpolate(images, size=(hs, ws), mode="bilinear", align_corners=False, antialias=hs < h or ws < w)
    ph, pw = max(hs, in_hw[0]), max(ws, in_hw[1])
    if (ph, pw) != (hs, ws):
        x = F.pad(x, (0, pw - ws, 0, ph - hs), value=fill)
    for y0 in tile_starts(hs, in_hw[0], overlap):
        for x0 in tile_starts(ws, in_hw[1], overlap):  # a few windows per scale, not pixels
            yield x[:, :, y0:y0 + in_hw[0], x0:x0 + in_hw[1]], x0, y0


def _map_back(dets: list[dict], first: int, offset: tuple[int, int], resized: tuple[int, int],
              size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """One window's detections (images ``first, first + 1, …``) → ``(boxes, scores, labels,
    image)`` in the original images: shift by the window's ``offset (x0, y0)``, drop centres
    outside the ``resized (h_s, w_s)`` image (in the padding), divide by the resize factors,
    clip to ``size (H, W)``."""
    (x0, y0), (hs, ws), (h, w) = offset, resized, size
    boxes = torch.cat([d["boxes"] for d in dets])
    count = torch.tensor([len(d["boxes"]) for d in dets], device=boxes.device)
    image = torch.arange(first, first + len(dets), device=boxes.device).repeat_interleave(count)
    boxes = boxes + boxes.new_tensor([x0, y0, x0, y0])
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = ((centre >= 0) & (centre <= centre.new_tensor([ws, hs]))).all(1)
    factor = torch.tensor([ws / w, hs / h, ws / w, hs / h], dtype=torch.float64)  # the sizes' ratios, not s
    boxes = boxes[inside] / factor.to(boxes)
    boxes = torch.stack((boxes[:, 0::2].clamp(0, w), boxes[:, 1::2].clamp(0, h)), 2).reshape(-1, 4)
    scores = torch.cat([d["scores"] for d in dets])[inside]
    labels = torch.cat([d["labels"] for d in dets]).long()[inside]
    return boxes, scores, labels, image[inside]


@torch.no_grad()
def multi_scale_detect(
    model: torch.nn.Module,
    images: torch.Tensor,
    scales: Sequence[float] = (0.75, 1.0, 1.25),
    iou_threshold: float = 0.5,
    method: str = "nms",
    detections_per_img: int = 100,
    *,
    tile_overlap: float = 0.25,
    batch_size: int = 16,
    fill: float = 0.0,
) -> list[dict[str, torch.Tensor]]:
    """Detect at every scale in ``scales`` and merge the detections in original coordinates.

    Parameters
    ----------
    model : an eval-mode detector with an ``in_shape (C, H_in, W_in)`` whose
        ``model(images)`` returns one ``{"boxes", "scores", "labels"}`` dict per image.
    images : ``Tensor[N, C, H, W]`` float; any ``H × W`` (usually ``in_shape``).
    scales : resize factors, each > 0 (see the module docstring for padding and tiling).
    iou_threshold, method, detections_per_img : how the views are merged (:func:`merge_detections`).
    tile_overlap : least overlap of neighbouring windows, as a fraction of a window, in ``[0, 1)``.
    batch_size : images processed at once; each model call gets at most this many windows
        (bounds the memory).
    fill : value of the padding.

    Returns one ``{"boxes" (Tensor[K, 4]) xyxy in the input images' pixels, "scores" (Tensor[K]),
    "labels" (Tensor[K]) int64}`` per image, score descending.
    """
    c, h_in, w_in = _check_model(model)
    check_tensor("images", images, ndim=4, floating=True)
    if images.shape[1] != c or images.shape[2] < 1 or images.shape[3] < 1:
        raise ValueError(f"images must have shape (N, {c}, H, W) with H, W >= 1 (the model's channels), "
                         f"got {tuple(images.shape)}")
    scales = _check_scales(scales)
    tile_overlap = check_float("tile_overlap", tile_overlap, min=0.0, max=1.0, max_inclusive=False)
    batch_size = check_int("batch_size", batch_size, min=1)
    fill = check_float("fill", fill)
    iou_threshold = check_float("iou_threshold", iou_threshold, min=0.0, max=1.0)
    method = check_choice("method", method, METHODS)
    detections_per_img = check_int("detections_per_img", detections_per_img, min=1)

    n, (h, w) = len(images), images.shape[-2:]
    if n == 0:
        return []
    found: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, n, batch_size):  # a batch of images at a time: memory grows with batch_size only
        chunk = images[start:start + batch_size]
        for scale in scales:
            views = _views(chunk, (h_in, w_in), scale, tile_overlap, fill)
            resized = next(views)
            for crops, x0, y0 in views:
                found.append(_map_back(model(crops), start, (x0, y0), resized, (h, w)))
    boxes, scores, labels, image = (torch.cat(parts) for parts in zip(*found))
    return merge_detections(boxes, scores, labels, image, n, iou_threshold, method, detections_per_img)
