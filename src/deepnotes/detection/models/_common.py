"""What every detector here shares: input checks, targets flattened over the batch, and the
post-processing that turns scored boxes into torchmetrics-style detections."""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_tensor, check_type
from deepnotes.detection.nms import batched_nms


def check_in_shape(in_shape, multiple: int) -> tuple[int, int, int]:
    """A detector's ``in_shape``: ``(C, H, W)`` with ``H`` and ``W`` multiples of ``multiple`` (the
    coarsest stride its heads divide the image by), as a tuple of ints."""
    check_type("in_shape", in_shape, (tuple, list))
    if len(in_shape) != 3 or in_shape[1] % multiple or in_shape[2] % multiple:
        raise ValueError(f"in_shape must be (C, H, W) with H and W multiples of {multiple}, got {tuple(in_shape)}")
    return tuple(int(v) for v in in_shape)


def check_images(images: torch.Tensor, in_shape) -> torch.Tensor:
    """``images`` must be a float ``Tensor[N, C, H, W]`` of the model's input shape."""
    check_tensor("images", images, ndim=4, floating=True)
    if tuple(images.shape[1:]) != tuple(in_shape):
        raise ValueError(
            f"images must have shape (N, {', '.join(map(str, in_shape))}) (the model's in_shape); "
            f"got {tuple(images.shape)} — resize them first (deepnotes.data.resize_detection)"
        )
    return images


def flatten_targets(targets, batch: int, num_classes: int, device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets (a list of ``{"boxes": Tensor[Ki, 4] xyxy, "labels": Tensor[Ki]}``, labels 1..C) →
    ``boxes (K, 4)``, ``labels (K,)`` in 0..C-1 and the image index ``(K,)`` of each box.

    Boxes reaching outside the image are allowed (each detector clamps the centre it assigns);
    non-finite boxes or ``x2 < x1`` are a ``ValueError``."""
    check_type("targets", targets, (list, tuple))
    if len(targets) != batch:
        raise ValueError(f"targets must hold one dict per image ({batch}), got {len(targets)}")
    boxes, labels, image = [], [], []
    for i, t in enumerate(targets):
        if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"targets[{i}] must be a dict with 'boxes' and 'labels'")
        b = t["boxes"].reshape(-1, 4).to(device, dtype)
        lab = t["labels"].reshape(-1).to(device, torch.int64)
        if not bool(torch.isfinite(b).all()) or bool((b[:, 2:] < b[:, :2]).any()):
            raise ValueError(f"targets[{i}]['boxes'] must be finite xyxy boxes with x2 >= x1 and y2 >= y1")
        if len(b) != len(lab):
            raise ValueError(f"targets[{i}]: {len(b)} boxes but {len(lab)} labels")
        if len(lab) and (int(lab.min()) < 1 or int(lab.max()) > num_classes):
            raise ValueError(f"targets[{i}]['labels'] must lie in 1..{num_classes} (0 is the background)")
        boxes.append(b)
        labels.append(lab - 1)
        image.append(torch.full((len(lab),), i, dtype=torch.int64, device=device))
    return torch.cat(boxes), torch.cat(labels), torch.cat(image)


def select_detections(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    image: torch.Tensor,
    batch: int,
    *,
    score_thresh: float,
    nms_thresh: float | None,
    detections_per_img: int,
) -> list[dict[str, torch.Tensor]]:
    """Scored boxes of a whole batch → one ``{"boxes", "scores", "labels"}`` dict per image.

    Keeps scores above ``score_thresh``, runs NMS per image and class (one ``batched_nms`` call
    over the batch, the groups being image × class) unless ``nms_thresh`` is None, and keeps the
    ``detections_per_img`` best of each image. ``labels`` are returned as 1..C.
    """
    keep = scores > score_thresh
    boxes, scores, labels, image = boxes[keep], scores[keep], labels[keep], image[keep]
    if nms_thresh is not None:
        order = batched_nms(boxes, scores, image * (int(labels.max()) + 1 if len(labels) else 1) + labels, nms_thresh)
    else:
        order = torch.argsort(scores, descending=True, stable=True)
    boxes, scores, labels, image = boxes[order], scores[order], labels[order], image[order]
    out = []
    for i in range(batch):  # one dict per image: the output format itself is per image
        mine = (image == i).nonzero().flatten()[:detections_per_img]
        out.append({"boxes": boxes[mine], "scores": scores[mine], "labels": labels[mine] + 1})
    return out
