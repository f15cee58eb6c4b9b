"""Sanity checks before training (the notes' checklist).

1. **Initial loss.** With small random weights every class scores about the same, so the softmax
   cross-entropy starts at ``ln C`` and the multi-class hinge (SVM) loss — summed over the ``C - 1``
   wrong classes with margin 1 — at ``C - 1``. A start far from that means a bug in the loss, the
   labels or the initialization. Passes when ``|L0 - expected| <= rtol · expected``.
2. **Overfit a tiny subset.** With regularization off (no dropout, no penalty), a working model and
   pipeline drive the training loss on ~20 samples to nearly zero. Passes when the final loss is
   below ``threshold``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from deepnotes.core.checks import check_choice, check_float, check_int, check_type
from deepnotes.train.callbacks import Callback


@dataclass
class SanityResult:
    name: str
    passed: bool
    measured: float
    expected: float
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.detail}"


def expected_initial_loss(num_classes: int, kind: str = "softmax") -> float:
    """``ln C`` for softmax cross-entropy, ``C - 1`` for the summed multi-class hinge loss."""
    c = check_int("num_classes", num_classes, min=2)
    kind = check_choice("kind", kind, ("softmax", "svm"))
    return math.log(c) if kind == "softmax" else float(c - 1)


def _hinge_sum(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-class SVM loss, summed over wrong classes (CS231n form): ``Σ_j≠y max(0, s_j - s_y + 1)``."""
    margins = (scores - scores.gather(1, y[:, None]) + 1).clamp_min(0)
    return (margins.sum(1) - 1).mean()  # the j = y term contributes exactly 1


def _first_samples(data: Dataset, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = min(n, len(data))
    xs, ys = zip(*(data[i] for i in range(n)))
    return torch.stack(list(xs)), torch.as_tensor(torch.stack([torch.as_tensor(y) for y in ys]))


@torch.no_grad()
def check_initial_loss(
    model: nn.Module, data: Dataset, kind: str = "softmax", rtol: float = 0.15, n: int = 256, loss_fn=None
) -> SanityResult:
    """Compare the untrained model's mean loss on ``n`` samples with ``ln C`` (or ``C - 1``).

    ``loss_fn(scores, targets)`` defaults to cross-entropy for ``kind="softmax"`` and to the summed
    multi-class hinge loss for ``kind="svm"``.
    """
    check_type("model", model, nn.Module)
    kind = check_choice("kind", kind, ("softmax", "svm"))
    rtol = check_float("rtol", rtol, min=0.0, min_inclusive=False)
    x, y = _first_samples(data, check_int("n", n, min=1))
    device = next(model.parameters()).device
    was = model.training
    model.eval()  # dropout off: the check is about the weights, not the noise
    try:
        out = model(x.to(device)).cpu()
    finally:
        model.train(was)
    if out.dim() != 2 or out.shape[1] < 2:
        raise ValueError(f"model must output class scores (N, C) with C >= 2, got shape {tuple(out.shape)}")
    c = out.shape[1]
    if loss_fn is None:
        loss_fn = F.cross_entropy if kind == "softmax" else _hinge_sum
    loss = float(loss_fn(out, y))
    expected = expected_initial_loss(c, kind)
    passed = abs(loss - expected) <= rtol * expected
    name = "ln C" if kind == "softmax" else "C - 1"
    detail = f"initial loss {loss:.4f} vs {name} = {expected:.4f} (C={c}, tolerance ±{100 * rtol:.0f}%)"
    return SanityResult("initial_loss", passed, loss, expected, detail)


def _without_dropout(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if hasattr(m, "p") and "dropout" in type(m).__name__.lower():
            m.p = 0.0
    return model


def check_overfit_tiny(
    model: nn.Module,
    data: Dataset,
    loss_fn=None,
    n: int = 20,
    steps: int = 300,
    lr: float = 1e-2,
    threshold: float = 0.05,
) -> SanityResult:
    """Train a copy of ``model`` (dropout off, no penalty) on ``n`` samples; the loss must fall below ``threshold``.

    The model itself is not modified. Adam, full batch, ``steps`` steps.
    """
    check_type("model", model, nn.Module)
    n = check_int("n", n, min=1)
    steps = check_int("steps", steps, min=1)
    lr = check_float("lr", lr, min=0.0, min_inclusive=False)
    threshold = check_float("threshold", threshold, min=0.0, min_inclusive=False)
    loss_fn = loss_fn or F.cross_entropy
    net = _without_dropout(copy.deepcopy(model)).train()
    device = next(net.parameters()).device
    x, y = (t.to(device) for t in _first_samples(data, n))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    first = None
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    with torch.no_grad():
        final = float(loss_fn(net(x), y))
    passed = math.isfinite(final) and final < threshold
    detail = f"loss on {len(x)} samples {first:.4f} -> {final:.4g} after {steps} steps (must be < {threshold:g})"
    return SanityResult("overfit_tiny_subset", passed, final, threshold, detail)


class SanityCheckError(RuntimeError):
    """A sanity check failed and the callback was asked to stop the run."""


class SanityChecks(Callback):
    """Run both checks at the start of a fresh fit; results in ``results`` and ``sanity.json``."""

    def __init__(self, kind: str = "softmax", rtol: float = 0.15, n: int = 20, steps: int = 300,
                 lr: float = 1e-2, threshold: float = 0.05, raise_on_fail: bool = False):
        self.kind = check_choice("kind", kind, ("softmax", "svm"))
        self.rtol, self.n, self.steps, self.lr, self.threshold = rtol, n, steps, lr, threshold
        self.raise_on_fail = check_type("raise_on_fail", raise_on_fail, bool)
        self.results: list[SanityResult] = []

    def on_fit_start(self, trainer):
        if trainer.epoch > 0:  # resuming: the checks ran when the run started
            return
        if getattr(trainer.task, "name", trainer.task) != "classification":
            raise ValueError("SanityChecks needs a classification task (the expected loss depends on C)")
        data = trainer.train_loader.dataset
        model = getattr(trainer.model, "module", trainer.model)  # unwrap DDP
        loss_fn = trainer.loss_fn
        self.results = [
            check_initial_loss(model, data, self.kind, self.rtol, loss_fn=loss_fn),
            check_overfit_tiny(model, data, loss_fn, self.n, self.steps, self.lr, self.threshold),
        ]
        if trainer.out_dir is not None and getattr(trainer, "is_main", True):
            from deepnotes.core.io import atomic_write_json

            trainer.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(trainer.out_dir / "sanity.json", [asdict(r) for r in self.results])
        if self.raise_on_fail and not all(r.passed for r in self.results):
            raise SanityCheckError("sanity checks failed: " + "; ".join(r.line() for r in self.results if not r.passed))
