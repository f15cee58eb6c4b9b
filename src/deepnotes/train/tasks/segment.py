"""Segmentation: per-pixel class scores, per-pixel cross-entropy, mIoU and pixel accuracy.

Batches are ``(images (N, C, H, W), masks (N, H, W) int64)``; a mask label equal to
``ignore_index`` (255, VOC's void) is left out of the loss and the metrics. Evaluation adds up
one pixel confusion matrix over all batches (and ranks) and reads the metrics from it at the end —
mIoU over a dataset is not the mean of per-batch mIoUs.

Detection datasets fit too (``data_tasks``): ``--task segment --data shapes`` trains on the
``semantic`` mask every ``shapes`` target carries (background 0 + the object classes, so
``num_classes + 1`` pixel classes); a detection dataset without such masks is refused when the
model is built. ``shapes-seg`` remains the smaller segmentation view (64x64 images, 1-4 objects)
that ``deepnotes segment-table`` trains on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data.dataloader import default_collate

from deepnotes.core.registry import TASKS
from deepnotes.metrics.segmentation import SegmentationConfusion
from deepnotes.segmentation.data import pixel_classes, semantic_target
from deepnotes.segmentation.loss import PixelCrossEntropy
from deepnotes.train.tasks.base import StepContext, Task

IGNORE_INDEX = 255


@TASKS.register("segment", description="per-pixel class scores, pixel cross-entropy, mIoU and pixel accuracy")
class SegmentationTask(Task):
    name = "segment"
    metrics = {"loss": False, "miou": True, "pixel_accuracy": True, "mean_pixel_accuracy": True}
    train_metrics = ("loss", "pixel_accuracy")
    monitor = "miou"
    data_tasks = ("detect",)  # detection targets with a "semantic" mask: trained on that mask

    def __init__(self, ignore_index: int = IGNORE_INDEX):
        self.ignore_index = ignore_index

    def collate(self, samples: list[Any]) -> Any:
        """``(image, mask)`` items, or detection ``(image, target)`` items read as their semantic mask."""
        return default_collate([(x, semantic_target(y)) for x, y in samples])

    def build_model(self, name: str, splits: Any, **kwargs: Any) -> torch.nn.Module:
        from deepnotes.core.registry import MODELS

        return MODELS.create(name, splits.in_shape, pixel_classes(splits), **kwargs)

    def default_loss(self):
        return PixelCrossEntropy(ignore_index=self.ignore_index)

    def _check(self, out: torch.Tensor, y: torch.Tensor) -> None:
        if out.dim() != 4 or y.dim() != 3 or out.shape[-2:] != y.shape[-2:]:
            raise ValueError(
                f"a segmentation model must output (N, K, H, W) scores for (N, H, W) masks; "
                f"got output {tuple(out.shape)} for masks {tuple(y.shape)}"
            )

    def _pixel_counts(self, out: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        labelled = y != self.ignore_index
        correct = (out.detach().argmax(1) == y) & labelled
        return float(correct.sum()), float(labelled.sum())

    def training_step(self, ctx: StepContext, batch: Any) -> dict[str, float]:
        x, y = batch
        out = ctx.model(x)
        self._check(out, y)
        value = ctx.optimize(ctx.loss_fn(out, y))
        correct, pixels = self._pixel_counts(out, y)
        n = len(x)
        return {"loss": value * n, "count": n, "correct": correct, "pixels": pixels}

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        return {
            "loss": sums["loss"] / sums["count"],
            "pixel_accuracy": sums["correct"] / sums["pixels"] if sums["pixels"] else 0.0,
        }

    def evaluate(self, ctx: StepContext, batches) -> dict[str, float]:
        acc: SegmentationConfusion | None = None
        loss_sum, count = 0.0, 0
        for x, y in batches:
            out = ctx.module(x)
            self._check(out, y)
            if acc is None:
                acc = SegmentationConfusion(out.shape[1], self.ignore_index)
            acc.update(y.cpu(), out.argmax(1).cpu())
            loss_sum += float(ctx.loss_fn(out, y)) * len(x)
            count += len(x)
        if acc is None:
            raise ValueError("evaluation data is empty: nothing to measure")
        # the confusion matrix and the loss sums are added up over the ranks
        k = acc.num_classes
        sums = {f"cm{i}": float(v) for i, v in enumerate(acc.matrix.ravel())}
        sums.update(loss=loss_sum, count=float(count))
        sums = ctx.all_reduce_sums(sums)
        acc.matrix = np.array([sums[f"cm{i}"] for i in range(k * k)], dtype=np.int64).reshape(k, k)
        return {
            "loss": sums["loss"] / sums["count"],
            "miou": acc.mean_iou(),
            "pixel_accuracy": acc.pixel_accuracy(),
            "mean_pixel_accuracy": acc.mean_pixel_accuracy(),
        }

    def predict_step(self, module, batch: Any) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return module(x).argmax(1)
