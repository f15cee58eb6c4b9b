"""Regression: real-valued targets, mean squared error; the mean loss is the only metric."""

from __future__ import annotations

import torch.nn.functional as F

from deepnotes.core.registry import TASKS
from deepnotes.train.tasks.base import Task


@TASKS.register("regression", description="real-valued targets, mean squared error")
class RegressionTask(Task):
    name = "regression"
    metrics = {"loss": False}
    train_metrics = ("loss",)
    monitor = "loss"
    generic_models = True

    def default_loss(self):
        return F.mse_loss
