"""Classification: class scores for each input (or each time step), cross-entropy, accuracy.

The worked example of a task (CONTRIBUTING.md): accuracy is counted per *target*, not per
sample, so a sequence model with one class per time step gets an accuracy in [0, 1]; the task
returns the correct count and the target count and divides once, after they are added up over
the epoch and over the ranks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from deepnotes.core.registry import TASKS
from deepnotes.train.tasks.base import StepContext, Task


@TASKS.register("classification", description="class scores per input, cross-entropy, accuracy")
class ClassificationTask(Task):
    name = "classification"
    metrics = {"loss": False, "accuracy": True}
    train_metrics = ("loss", "accuracy")
    monitor = "loss"
    generic_models = True

    def default_loss(self):
        return F.cross_entropy

    @staticmethod
    def _counts(out: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        return float((out.detach().argmax(1) == y).sum()), float(y.numel())

    def training_step(self, ctx: StepContext, batch: Any) -> dict[str, float]:
        x, y = batch
        out = ctx.model(x)
        value = ctx.optimize(ctx.loss_fn(out, y))
        correct, targets = self._counts(out, y)
        n = len(x)
        return {"loss": value * n, "count": n, "correct": correct, "targets": targets}

    def eval_step(self, ctx: StepContext, batch: Any) -> dict[str, float]:
        x, y = batch
        out = ctx.module(x)
        correct, targets = self._counts(out, y)
        n = len(x)
        return {"loss": float(ctx.loss_fn(out, y)) * n, "count": n, "correct": correct, "targets": targets}

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        return {"loss": sums["loss"] / sums["count"], "accuracy": sums["correct"] / sums["targets"]}
