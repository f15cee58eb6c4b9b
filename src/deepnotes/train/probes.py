"""Per-layer gradient norms: the measurement behind vanishing (and exploding) gradients."""

from __future__ import annotations

import csv
import io

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_type
from deepnotes.train.callbacks import Callback


def layer_gradient_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm of the gradient of each weight (``dim >= 2``) of ``model``, input side first.

    Keys are parameter names (``"net.0.weight"``); parameters without a gradient are skipped.
    Call after ``backward()``.
    """
    check_type("model", model, nn.Module)
    names, grads = [], []
    for name, p in model.named_parameters():
        if p.dim() >= 2 and p.grad is not None:
            names.append(name)
            grads.append(p.grad.detach().flatten())
    if not grads:
        return {}
    # one vectorized reduction instead of a .item() per layer
    norms = torch.stack([g.norm() for g in grads]).tolist()
    return dict(zip(names, norms))


class GradientNormProbe(Callback):
    """Record :func:`layer_gradient_norms` every ``every`` optimizer steps.

    ``records`` holds ``(step, {layer: norm})``; with a run directory, ``grad_norms.csv`` is
    written at the end of training (one row per record, one column per layer).
    """

    def __init__(self, every: int = 10):
        self.every = check_int("every", every, min=1)
        self.records: list[tuple[int, dict[str, float]]] = []

    def on_after_backward(self, trainer):
        if trainer.step % self.every == 0:
            self.records.append((trainer.step + 1, layer_gradient_norms(trainer.model)))

    def on_fit_end(self, trainer):
        if trainer.out_dir is None or not self.records or not getattr(trainer, "is_main", True):
            return
        from deepnotes.core.io import atomic_write_text

        layers = list(self.records[0][1])
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step", *layers])
        for step, norms in self.records:
            w.writerow([step, *(norms.get(k, "") for k in layers)])
        atomic_write_text(trainer.out_dir / "grad_norms.csv", buf.getvalue())
