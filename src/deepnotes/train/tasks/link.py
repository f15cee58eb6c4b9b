"""Link prediction: embed the nodes with the training edges, score pairs by a dot product, and
learn to rank held-out edges above non-edges.

Items are :class:`~deepnotes.graph.data.Graph` objects from :func:`~deepnotes.graph.link.split_edges`:
every split passes messages over the training edges; ``extra["pos"]`` holds the split's true
pairs and, for validation and testing, ``extra["neg"]`` fixed non-edges. Training draws fresh
negatives (as many as positives) every step from the task's own generator, saved in checkpoints
so that a resumed run draws the same ones. The model's output for a graph is its node embeddings.

The loss is the task's own — binary cross-entropy on the pair logits — so :meth:`default_loss`
is ``None``; a loss given to the trainer replaces it and is called as ``loss(scores, labels)``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from deepnotes.core.registry import TASKS
from deepnotes.graph.data import Graph
from deepnotes.graph.link import dot_scores, negative_sampling
from deepnotes.metrics import roc_auc
from deepnotes.train.tasks.base import StepContext, Task


@TASKS.register("link", description="link prediction: dot-product scores, negative sampling, BCE, ROC AUC")
class LinkPredictionTask(Task):
    name = "link"
    metrics = {"loss": False, "auc": True}
    train_metrics = ("loss",)
    monitor = "auc"

    def __init__(self, seed: int = 0):
        self.generator = torch.Generator().manual_seed(seed)

    def default_loss(self):
        return None

    @staticmethod
    def _loss(ctx: StepContext):
        return ctx.loss_fn or F.binary_cross_entropy_with_logits

    def collate(self, samples: list[Graph]) -> Graph:
        if len(samples) != 1:
            raise ValueError("link prediction works on one graph per batch (use batch size 1)")
        return samples[0]

    def to_device(self, batch: Graph, device) -> Graph:
        return batch.to(device)

    def batch_size(self, batch: Graph) -> int:
        return batch.extra["pos"].shape[1]

    def _pairs(self, batch: Graph) -> tuple[torch.Tensor, torch.Tensor]:
        pos = batch.extra["pos"]
        neg = batch.extra.get("neg")
        if neg is None:  # training: fresh non-edges of the message graph
            neg = negative_sampling(batch.edge_index.cpu(), batch.num_nodes, pos.shape[1], self.generator)
        pairs = torch.cat([pos, neg.to(pos.device)], dim=1)
        labels = torch.cat([torch.ones(pos.shape[1]), torch.zeros(neg.shape[1])]).to(batch.x)
        return pairs, labels

    def training_step(self, ctx: StepContext, batch: Graph) -> dict[str, float]:
        pairs, labels = self._pairs(batch)
        scores = dot_scores(ctx.model(batch), pairs)
        value = ctx.optimize(self._loss(ctx)(scores, labels))
        return {"loss": value * labels.numel(), "count": labels.numel()}

    def evaluate(self, ctx: StepContext, batches) -> dict[str, float]:
        """Loss and ROC AUC over every held-out pair (AUC needs all scores: gathered, not summed)."""
        scores, labels = [], []
        for batch in batches:
            pairs, y = self._pairs(batch)
            scores.append(dot_scores(ctx.module(batch), pairs).cpu())
            labels.append(y.cpu())
        gathered = ctx.all_gather_object((torch.cat(scores), torch.cat(labels)))
        s = torch.cat([g[0] for g in gathered]).double()
        y = torch.cat([g[1] for g in gathered]).double()
        if y.numel() == 0:
            raise ValueError("evaluation data is empty: nothing to measure")
        return {"loss": float(self._loss(ctx)(s, y)), "auc": float(roc_auc(y.numpy(), s.numpy()))}

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        return {"loss": sums["loss"] / sums["count"]}

    def predict_step(self, module, batch: Graph) -> Any:
        return module(batch)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
