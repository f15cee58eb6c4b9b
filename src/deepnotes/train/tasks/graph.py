"""Graph classification: one label per graph; a mini-batch is several graphs joined into one.

Dataset items are :class:`~deepnotes.graph.data.Graph` objects with a scalar ``y``;
:func:`~deepnotes.graph.data.collate_graphs` shifts their node ids and records ``batch`` so that
the model's readout pools each graph separately. A batch is the pair ``(graphs, labels)``.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from deepnotes.core.registry import TASKS
from deepnotes.graph.data import Graph, collate_graphs
from deepnotes.train.tasks.base import StepContext, Task


@TASKS.register("graph", description="graph classification: batched graphs, readout, cross-entropy, accuracy")
class GraphClassificationTask(Task):
    name = "graph"
    metrics = {"loss": False, "accuracy": True}
    train_metrics = ("loss", "accuracy")
    monitor = "accuracy"

    def default_loss(self):
        return F.cross_entropy

    def collate(self, samples: list[Graph]) -> tuple[Graph, Any]:
        graphs = collate_graphs(samples)
        return graphs, graphs.y

    def to_device(self, batch: tuple[Graph, Any], device) -> tuple[Graph, Any]:
        graphs = batch[0].to(device)
        return graphs, graphs.y

    def batch_size(self, batch: tuple[Graph, Any]) -> int:
        return batch[0].num_graphs

    def training_step(self, ctx: StepContext, batch: tuple[Graph, Any]) -> dict[str, float]:
        graphs, y = batch
        out = ctx.model(graphs)
        value = ctx.optimize(ctx.loss_fn(out, y))
        n = graphs.num_graphs
        return {"loss": value * n, "count": n, "correct": float((out.detach().argmax(1) == y).sum())}

    def eval_step(self, ctx: StepContext, batch: tuple[Graph, Any]) -> dict[str, float]:
        graphs, y = batch
        out = ctx.module(graphs)
        n = graphs.num_graphs
        return {"loss": float(ctx.loss_fn(out, y)) * n, "count": n, "correct": float((out.argmax(1) == y).sum())}

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        return {"loss": sums["loss"] / sums["count"], "accuracy": sums["correct"] / sums["count"]}

    def predict_step(self, module, batch: tuple[Graph, Any]) -> Any:
        return module(batch[0])

    def build_model(self, name: str, splits: Any, **kwargs: Any):
        """The registered GNN with a sum readout unless ``readout`` is given."""
        kwargs.setdefault("readout", "add")
        return super().build_model(name, splits, **kwargs)
