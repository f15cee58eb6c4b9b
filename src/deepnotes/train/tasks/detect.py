"""Detection: images with a list of target boxes each, the detector's own loss, COCO-style mAP.

A detector (registered with ``task="detect"``) takes ``(images, targets)`` in training mode and
returns a dict of named loss terms; the task optimizes their sum and logs each term as a
``train_<term>`` column. Evaluation runs the detector in eval mode (one
``{"boxes", "scores", "labels"}`` dict per image), gathers every image's predictions and targets
over the ranks with ``ctx.all_gather_object``, and measures them once with
:func:`deepnotes.detection.mean_average_precision` — so ``metrics.csv`` has ``val_map``,
``val_map_50``, … and ``summary.json`` ``test_map``, ``test_map_50``, … under torchmetrics' names.
The best epoch is picked by ``map_50`` (higher is better).

A batch is ``(images Tensor[B, C, H, W], targets list of dicts)``; targets keep only ``boxes``
(float32 xyxy), ``labels`` (int64, 1..C) and, when the dataset gives them, instance ``masks``
(uint8 ``[K, H, W]``, 0/1, one per box — for mask heads). An image without objects has empty ones
and trains (it teaches "background") and evaluates (it can only add false positives).

**Masks.** When a detector's predictions carry ``masks`` (``[D, 1, H, W]`` probabilities as
torchvision's Mask R-CNN, or ``[D, H, W]``; binarized at 0.5) and the targets carry ``masks``,
evaluation also reports mask mAP (``iou_type="segm"``) under the same names with ``_segm``:
``map_segm``, ``map_segm_50``, …, ``mar_segm_100``, … (the box keys are unchanged). Masks are
ranked by the predictions' ``mask_scores`` when present (Mask Scoring R-CNN), else by
``scores``. Evaluation holds every binarized mask of the split in memory (``D·H·W`` bytes per image).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from deepnotes.core.registry import TASKS
from deepnotes.train.tasks.base import StepContext, Task

MAP_KEYS = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large",
            "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large")
#: mask mAP: "map" → "map_segm", "map_50" → "map_segm_50", "mar_1" → "mar_segm_1", …
SEGM_KEYS = tuple(f"{k[:3]}_segm{k[3:]}" for k in MAP_KEYS)


def _target(i: int, target: Any) -> dict[str, torch.Tensor]:
    if not isinstance(target, dict) or "boxes" not in target or "labels" not in target:
        raise ValueError(f"sample {i}: a detection target must be a dict with 'boxes' and 'labels'")
    boxes = torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4)
    labels = torch.as_tensor(target["labels"], dtype=torch.int64).reshape(-1)
    if len(boxes) != len(labels):
        raise ValueError(f"sample {i}: {len(boxes)} boxes but {len(labels)} labels")
    out = {"boxes": boxes, "labels": labels}
    if "masks" in target:
        masks = torch.as_tensor(target["masks"])
        if masks.dim() != 3 or len(masks) != len(boxes):
            raise ValueError(f"sample {i}: 'masks' must be [K, H, W] with one mask per box ({len(boxes)}), "
                             f"got shape {tuple(masks.shape)}")
        if masks.numel() and bool(((masks != 0) & (masks != 1)).any()):
            raise ValueError(f"sample {i}: 'masks' must hold only 0 and 1")
        out["masks"] = masks.to(torch.uint8)
    return out


def _prediction(p: dict) -> dict[str, torch.Tensor]:
    """What evaluation keeps of one image's predictions: boxes, scores, labels, and binary masks
    (``> 0.5``, ``[D, H, W]``) and ``mask_scores`` when the detector gives them."""
    out = {k: p[k].detach().cpu() for k in ("boxes", "scores", "labels")}
    if "masks" in p:
        m = p["masks"].detach().cpu()
        m = m[:, 0] if m.dim() == 4 else m
        out["masks"] = m > 0.5 if m.is_floating_point() else m != 0
        if "mask_scores" in p:
            out["mask_scores"] = p["mask_scores"].detach().cpu()
    return out


@TASKS.register("detect", description="boxes and classes per image, the detector's loss, COCO mAP")
class DetectTask(Task):
    name = "detect"
    metrics = dict.fromkeys(MAP_KEYS, True)
    train_metrics = ("loss",)
    monitor = "map_50"

    # -- data ------------------------------------------------------------------------------------
    def collate(self, samples: list[Any]) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        if not samples:
            raise ValueError("a detection batch must not be empty")
        images = [s[0] for s in samples]
        shapes = {tuple(x.shape) for x in images}
        if len(shapes) > 1:
            raise ValueError(f"images of one batch must share one size, got {sorted(shapes)}; resize them first")
        return torch.stack(images), [_target(i, s[1]) for i, s in enumerate(samples)]

    def batch_size(self, batch: Any) -> int:
        return len(batch[0])

    # -- training --------------------------------------------------------------------------------
    def training_step(self, ctx: StepContext, batch: Any) -> dict[str, float]:
        images, targets = batch
        terms = ctx.model(images, targets)
        if not isinstance(terms, dict) or not terms:
            raise TypeError(f"a detector must return a dict of loss terms in training mode, got {type(terms).__name__}")
        value = ctx.optimize(sum(terms.values()))
        n = len(images)
        names = tuple(sorted(terms))
        if self.train_metrics[1:] != names:
            self.train_metrics = ("loss", *names)  # the model's own terms become train_<term> columns
        return {"loss": value * n, "count": n, **{k: float(v.detach()) * n for k, v in terms.items()}}

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        count = sums["count"]
        return {k: v / count for k, v in sums.items() if k != "count"}

    # -- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, ctx: StepContext, batches: Iterable[Any]) -> dict[str, float]:
        from deepnotes.detection.map import mean_average_precision

        pairs = []
        for images, targets in batches:
            preds = ctx.module(images)
            for p, t in zip(preds, targets):
                pairs.append((_prediction(p), {k: v.cpu() for k, v in t.items()}))
        pairs = [pair for rank in ctx.all_gather_object(pairs) for pair in rank]
        if not pairs:
            raise ValueError("evaluation data is empty: nothing to measure")
        boxes_only = [{k: p[k] for k in ("boxes", "scores", "labels")} for p, _ in pairs]
        result = mean_average_precision(boxes_only, [t for _, t in pairs])
        out = {k: float(result[k]) for k in MAP_KEYS}
        if all("masks" in p and "masks" in t for p, t in pairs):
            preds = [{"masks": p["masks"], "labels": p["labels"],
                      "scores": p.get("mask_scores", p["scores"])} for p, _ in pairs]
            segm = mean_average_precision(preds, [t for _, t in pairs], iou_type="segm")
            out.update({s: float(segm[k]) for k, s in zip(MAP_KEYS, SEGM_KEYS)})
            if SEGM_KEYS[0] not in self.metrics:  # the mask keys become val_/test_ columns
                self.metrics = {**self.metrics, **dict.fromkeys(SEGM_KEYS, True)}
        return out

    def predict_step(self, module: nn.Module, batch: Any) -> Any:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        return module(images)

    # -- model construction ----------------------------------------------------------------------
    def build_model(self, name: str, splits: Any, **kwargs: Any) -> nn.Module:
        """``MODELS.create(name, in_shape, num_classes, **kwargs)`` with the dataset's image shape
        and its number of object classes (background excluded); the model's loss terms become the
        ``train_<term>`` columns."""
        model = super().build_model(name, splits, **kwargs)
        names = getattr(model, "loss_names", None)
        if names:
            self.train_metrics = ("loss", *sorted(names))
        if names and "loss_mask" in names:  # a mask head: mask mAP columns from the first epoch
            self.metrics = {**self.metrics, **dict.fromkeys(SEGM_KEYS, True)}
        return model
