"""Node classification: one graph, the labels of some nodes, cross-entropy on those nodes only.

A dataset item is a :class:`~deepnotes.graph.data.Graph` whose boolean ``mask`` marks the nodes
of its split (train, val or test) — the whole graph always passes messages (transductive
learning), only the masked nodes count in the loss and the accuracy. A batch is the pair
``(graph, graph.y)``, the (input, target) shape every task's batch has.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
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

    def collate(self, samples: list[Graph]) -> tuple[Graph, Any]:
        graph = samples[0] if len(samples) == 1 else collate_graphs(samples)
        if graph.mask is None:
            graph = replace(graph, mask=torch.ones(graph.num_nodes, dtype=torch.bool))
        return graph, graph.y

    def to_device(self, batch: tuple[Graph, Any], device) -> tuple[Graph, Any]:
        graph = batch[0].to(device)
        return graph, graph.y

    def batch_size(self, batch: tuple[Graph, Any]) -> int:
        return int(batch[0].mask.sum())

    def _sums(self, out, graph: Graph, loss_value: float) -> dict[str, float]:
        n = int(graph.mask.sum())
        correct = float((out.detach()[graph.mask].argmax(1) == graph.y[graph.mask]).sum())
        return {"loss": loss_value * n, "count": n, "correct": correct}

    def training_step(self, ctx: StepContext, batch: tuple[Graph, Any]) -> dict[str, float]:
        graph, y = batch
        out = ctx.model(graph)
        value = ctx.optimize(ctx.loss_fn(out[graph.mask], y[graph.mask]))
        return self._sums(out, graph, value)

    def eval_step(self, ctx: StepContext, batch: tuple[Graph, Any]) -> dict[str, float]:
        graph, y = batch
        out = ctx.module(graph)
        return self._sums(out, graph, float(ctx.loss_fn(out[graph.mask], y[graph.mask])))

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        return {"loss": sums["loss"] / sums["count"], "accuracy": sums["correct"] / sums["count"]}

    def predict_step(self, module, batch: tuple[Graph, Any]) -> Any:
        return module(batch[0])
