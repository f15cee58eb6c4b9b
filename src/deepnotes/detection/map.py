"""Mean average precision of a detector, in torchmetrics' input and output format.

``preds``: one dict per image with ``boxes`` (``Tensor[N, 4]`` xyxy), ``scores`` (``Tensor[N]``)
and ``labels`` (``Tensor[N]`` integer); ``targets``: one dict per image with ``boxes``,
``labels`` and optionally ``iscrowd`` (``Tensor[M]``, 0/1) and ``area`` (``Tensor[M]``; the box
area when absent). Three definitions of AP (they give different numbers on the same data):

- ``"coco"``: AP averaged over IoU thresholds 0.50:0.05:0.95 and 101 recall points, with crowd
  regions, area ranges and 1/10/100 detections per image — equal to ``pycocotools``' COCOeval
  on all 12 summary numbers (:mod:`deepnotes.detection.coco_eval`);
- ``"voc07"``: 11-point interpolated AP at IoU 0.5; ``"voc12"``: all-point AP at IoU 0.5
  (:mod:`deepnotes.detection.voc_eval`); ``iscrowd`` marks VOC's "difficult" boxes there.

Segmentation AP (``iou_type="segm"``, COCO style): each dict also holds ``masks``
(``Tensor[N, H, W]`` bool, or integer 0/1 — threshold probabilities first), predictions and
targets of one image sharing ``H, W``; pairs are matched by mask IoU
(:func:`~deepnotes.detection.mask_iou.mask_iou`), a detection's area is its pixel count, a
target's default ``area`` too, and ``boxes`` become optional — equal to pycocotools'
``COCOeval(iouType="segm")`` on the masks' run-length codes.

A class without (non-ignored) ground truth has no AP and is left out of the mean; a mean over
nothing is ``-1``, as in pycocotools and torchmetrics. Non-finite boxes or scores raise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from deepnotes.core.checks import check_choice, check_float, check_int, check_tensor, check_type
from deepnotes.detection._validate import check_boxes
from deepnotes.detection.coco_eval import COCO_IOU_THRESHOLDS, coco_evaluate, coco_summary
from deepnotes.detection.mask_iou import check_masks, mask_iou_table
from deepnotes.detection.voc_eval import voc_average_precision

STYLES = ("coco", "voc07", "voc12")
IOU_TYPES = ("bbox", "segm")
COCO_KEYS = (
    "map", "map_50", "map_75", "map_small", "map_medium", "map_large",
    "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large",
)  # fmt: skip


def _column(
    kind: str, items: Sequence[dict], key: str, ndim: int, required: bool = True
) -> list[Any]:
    """The ``key`` entry of every dict (``None`` where absent and optional), checked for type and rank."""
    out = []
    for i, item in enumerate(items):
        check_type(f"{kind}[{i}]", item, dict)
        if key not in item:
            if required:
                raise ValueError(f"{kind}[{i}] has no {key!r}")
            out.append(None)
            continue
        check_tensor(f"{kind}[{i}]['{key}']", item[key], ndim=ndim)
        out.append(item[key])
    return out


def _same_lengths(kind: str, key: str, values: list, n: list[int]) -> None:
    for i, (v, m) in enumerate(zip(values, n)):
        if v is not None and v.shape[0] != m:
            raise ValueError(
                f"{kind}[{i}]['{key}'] must have one entry per box ({m}), got {v.shape[0]}"
            )


def _integers(name: str, t: torch.Tensor) -> np.ndarray:
    if t.is_floating_point() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got dtype {t.dtype}")
    return t.detach().cpu().numpy().astype(np.int64)


def _flatten(items: Sequence[dict], is_pred: bool, segm: bool = False) -> dict[str, Any]:
    """All images' boxes in flat arrays (image index, box, label, …), validated once.

    With ``segm``: ``masks`` are required and kept per image (``"masks"``, a list of bool
    tensors), ``boxes`` are optional (zeros where absent: mask IoU does not use them) and the
    default area is the mask's pixel count.
    """
    kind = "preds" if is_pred else "targets"
    masks = None
    if segm:
        masks = [
            check_masks(f"{kind}[{i}]['masks']", m)
            for i, m in enumerate(_column(kind, items, "masks", 3))
        ]
    boxes = _column(kind, items, "boxes", 2, required=not segm)
    n = [b.shape[0] for b in boxes] if masks is None else [m.shape[0] for m in masks]
    for i, b in enumerate(boxes):
        if b is not None and b.shape[1] != 4:
            raise ValueError(f"{kind}[{i}]['boxes'] must have shape (N, 4), got {tuple(b.shape)}")
    _same_lengths(kind, "boxes", boxes, n)
    boxes = [b if b is not None else torch.zeros(m, 4) for b, m in zip(boxes, n)]

    def cat(parts: list[torch.Tensor], dtype: torch.dtype | None) -> torch.Tensor:
        """All images' tensors in one (``dtype`` or the first one's; int64 when there are none)."""
        if not parts:
            return torch.zeros(0, dtype=dtype or torch.int64)
        return torch.cat(parts).detach().cpu().to(dtype or parts[0].dtype)

    all_boxes = check_boxes(f"{kind}[*]['boxes']", cat(boxes, torch.float64).reshape(-1, 4))
    labels = _column(kind, items, "labels", 1)
    _same_lengths(kind, "labels", labels, n)
    out = {
        "image": np.repeat(np.arange(len(items)), n),
        "box": all_boxes.numpy(),
        "labels": _integers(f"{kind}[*]['labels']", cat(labels, None)),
    }
    if masks is not None:
        out["masks"] = masks
        pixels = [m.flatten(1).sum(1).to(torch.float64) for m in masks]
        mask_area = cat(pixels, torch.float64).numpy()
    if is_pred:
        scores = _column(kind, items, "scores", 1)
        _same_lengths(kind, "scores", scores, n)
        if any(not s.is_floating_point() for s in scores):
            raise TypeError("preds[*]['scores'] must be floating-point tensors")
        s = cat(scores, torch.float64)
        if not bool(torch.isfinite(s).all()):
            raise ValueError("preds[*]['scores'] must be finite (found NaN or inf)")
        out["score"] = s.numpy()
        if masks is not None:
            # pycocotools' loadRes: a segmentation's area is its pixel count
            out["area"] = mask_area
        return out
    crowd = _column(kind, items, "iscrowd", 1, required=False)
    _same_lengths(kind, "iscrowd", crowd, n)
    crowd = [c if c is not None else torch.zeros(m, dtype=torch.int64) for c, m in zip(crowd, n)]
    out["crowd"] = _integers(f"{kind}[*]['iscrowd']", cat(crowd, None)) != 0
    area = _column(kind, items, "area", 1, required=False)
    _same_lengths(kind, "area", area, n)
    b = out["box"]
    box_area = mask_area if masks is not None else (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    given = np.repeat([a is not None for a in area], n)
    a = cat([x if x is not None else torch.zeros(m) for x, m in zip(area, n)], torch.float64)
    if not bool(torch.isfinite(a).all()):
        raise ValueError("targets[*]['area'] must be finite (found NaN or inf)")
    out["area"] = np.where(given, a.numpy(), box_area)
    return out


def mean_average_precision(
    preds: Sequence[dict],
    targets: Sequence[dict],
    style: str = "coco",
    iou_thresholds: Sequence[float] | None = None,
    class_metrics: bool = False,
    iou_type: str = "bbox",
) -> dict[str, torch.Tensor]:
    """mAP of ``preds`` against ``targets`` (one dict per image; see the module docstring).

    Returns torchmetrics' keys as float64 scalars: for ``"coco"`` the 12 COCOeval numbers
    (``map``, ``map_50``, ``map_75``, ``map_small|medium|large``, ``mar_1|10|100``,
    ``mar_small|medium|large``); for the VOC styles ``map`` (mean over classes and thresholds),
    ``map_50``/``map_75`` where those thresholds are evaluated, the others ``-1``. With
    ``class_metrics``: ``classes``, ``map_per_class`` and (COCO) ``mar_100_per_class``.

    ``iou_type="segm"`` (COCO style only) matches by mask IoU instead of box IoU, as pycocotools'
    ``COCOeval(iouType="segm")``: see the module docstring for the ``masks`` entries.
    """
    check_type("preds", preds, (list, tuple))
    check_type("targets", targets, (list, tuple))
    if len(preds) != len(targets):
        raise ValueError(
            f"preds and targets must have one entry per image, got {len(preds)} and {len(targets)}"
        )
    check_choice("style", style, STYLES)
    check_type("class_metrics", class_metrics, bool)
    check_choice("iou_type", iou_type, IOU_TYPES)
    segm = iou_type == "segm"
    if segm and style != "coco":
        raise ValueError(f"iou_type='segm' needs style='coco', got style={style!r}")
    if iou_thresholds is None:
        thresholds = COCO_IOU_THRESHOLDS if style == "coco" else np.array([0.5])
    else:
        check_type("iou_thresholds", iou_thresholds, (list, tuple, np.ndarray))
        if len(iou_thresholds) == 0:
            raise ValueError("iou_thresholds must not be empty")
        thresholds = np.array(
            [
                check_float(f"iou_thresholds[{i}]", t, min=0.0, max=1.0)
                for i, t in enumerate(iou_thresholds)
            ]
        )
    det, gt = _flatten(preds, True, segm), _flatten(targets, False, segm)
    iou_table = None
    if segm:
        p_masks, g_masks = det.pop("masks"), gt.pop("masks")
        for i, (pm, gm) in enumerate(zip(p_masks, g_masks)):
            if pm.shape[1:] != gm.shape[1:]:
                raise ValueError(
                    f"preds[{i}]['masks'] and targets[{i}]['masks'] must share one image size, "
                    f"got {tuple(pm.shape[1:])} and {tuple(gm.shape[1:])}"
                )
        crowd = np.split(gt["crowd"], np.cumsum([len(m) for m in g_masks])[:-1])
        iou_table = mask_iou_table(p_masks, g_masks, [torch.from_numpy(c) for c in crowd])
        det["row"] = _rows(det["image"])
        gt["row"] = _rows(gt["image"])
    classes = np.unique(np.concatenate([det["labels"], gt["labels"]]))
    det["cls"] = np.searchsorted(classes, det["labels"])
    gt["cls"] = np.searchsorted(classes, gt["labels"])
    k = len(classes)
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    if style == "coco":
        res = coco_evaluate(det, gt, k, thresholds, iou_table)
        out = {
            key: f64(v)
            for key, v in coco_summary(res["precision"], res["recall"], thresholds).items()
        }
        if class_metrics:
            p, r = res["precision"][..., 0], res["recall"][:, :, 0, -1]
            out["map_per_class"] = f64([_mean(p[:, :, c]) for c in range(k)])
            out["mar_100_per_class"] = f64([_mean(r[:, c]) for c in range(k)])
    else:
        ap = np.stack(
            [voc_average_precision(det, gt, k, float(t), style) for t in thresholds]
        )  # (T, K)
        out = {key: f64(-1.0) for key in COCO_KEYS}
        out["map"] = f64(_mean(ap))
        for name, t in (("map_50", 0.5), ("map_75", 0.75)):
            hit = np.flatnonzero(np.isclose(thresholds, t, rtol=0, atol=1e-12))
            if hit.size:
                out[name] = f64(_mean(ap[hit]))
        if class_metrics:
            out["map_per_class"] = f64([_mean(ap[:, c]) for c in range(k)])
    if class_metrics:
        out["classes"] = torch.as_tensor(classes, dtype=torch.int64)
    return out


def _rows(image: np.ndarray) -> np.ndarray:
    """Position of each entry within its image (``image`` is sorted, as built by ``_flatten``)."""
    return np.arange(len(image)) - np.searchsorted(image, image, side="left")


def _mean(values: np.ndarray) -> float:
    v = values[values > -1]
    return float(v.mean()) if v.size else -1.0


def measure_fps(
    model: Callable[[Any], Any],
    inputs: Any,
    warmup: int = 2,
    repeats: int = 10,
    batch_size: int = 1,
) -> float:
    """Images per second of ``model(inputs)``: the median of ``repeats`` timed calls after ``warmup``
    untimed ones, under ``torch.no_grad()``; ``batch_size`` is the number of images per call."""
    check_type("model", model, Callable)  # type: ignore[arg-type]
    warmup = check_int("warmup", warmup, min=0)
    repeats = check_int("repeats", repeats, min=1)
    batch_size = check_int("batch_size", batch_size, min=1)
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            model(inputs)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return batch_size / float(np.median(times))
