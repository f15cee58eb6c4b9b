"""Node classification: one graph, the labels of some nodes, cross-entropy on those nodes only.

A dataset item is a :class:`~deepnotes.graph.data.Graph` whose boolean ``mask`` marks the nodes
of its split (train, val or test) — the whole graph always passes messages (transductive
learning), only the masked nodes count in the loss and the accuracy.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from deepnotes.core.registry import TASKS
from deepnotes.graph.data import Graph, collate_graphs
from deepnotes.train.tasks.base import StepContext, Task


@TASKS.register("node", description="node classification on a graph: masked cross-entropy, accuracy")
class NodeClassificationTask(Task):
    name = "node"
    metrics = {"loss": False, "accuracy": True}
    train_metrics = ("loss", "accuracy")
    monitor = "accuracy"

    def default_loss(self):
        return F.cross_entropy

    def collate(self, samples: list[Graph]) -> Graph:
        return samples[0] if len(samples) == 1 else collate_graphs(samples)

    def to_device(self, batch: Graph, device) -> Graph:
        return batch.to(device)

    def batch_size(self, batch: Graph) -> int:
        return int(batch.mask.sum()) if batch.mask is not None else batch.num_nodes

    def _sums(self, out, batch: Graph, loss_value: float) -> dict[str, float]:
        mask = batch.mask
        n = self.batch_size(batch)
        correct = float((out.detach()[mask].argmax(1) == batch.y[mask]).sum())
        return {"loss": loss_value * n, "count": n, "correct": correct}

    def training_step(self, ctx: StepContext, batch: Graph) -> dict[str, float]:
        out = ctx.model(batch)
        value = ctx.optimize(ctx.loss_fn(out[batch.mask], batch.y[batch.mask]))
        return self._sums(out, batch, value)

    def eval_step(self, ctx: StepContext, batch: Graph) -> dict[str, float]:
        out = ctx.module(batch)
        return self._sums(out, batch, float(ctx.loss_fn(out[batch.mask], batch.y[batch.mask])))

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        return {"loss": sums["loss"] / sums["count"], "accuracy": sums["correct"] / sums["count"]}

    def predict_step(self, module, batch: Graph) -> Any:
        return module(batch)
