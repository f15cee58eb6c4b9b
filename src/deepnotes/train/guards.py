"""Callbacks that shape or guard the optimization: penalties, max-norm, divergence abort."""

from __future__ import annotations

import math
from collections import deque

from deepnotes.core.checks import check_float
from deepnotes.nn.regularizers import add_penalty_grad_, max_norm_
from deepnotes.train.callbacks import Callback


class DivergenceError(RuntimeError):
    """The cost grew beyond ``factor ×`` its initial value; the message gives both numbers."""


class DivergenceGuard(Callback):
    """Abort training when the running cost exceeds ``factor`` times the initial loss.

    The notes' rule of thumb: a cost above 3× its starting value means the learning rate is too
    high and the run will not recover. The *cost* is estimated by the mean loss of the last
    ``window`` batches — a single noisy mini-batch spike (common in the first steps of a net with
    batch norm and momentum) is not a diverging cost, while a real blow-up lifts the mean within a
    few steps. The initial loss is the mean of the first ``warmup`` batches. On a resumed run the
    first epoch's mean training loss (from the restored history) stands in for it, since the
    resumed run's first batch is already far down the curve. Raises :class:`DivergenceError`; the
    trainer records the status ``"diverged"`` and keeps the last completed epoch's checkpoint.
    """

    def __init__(self, factor: float = 3.0, warmup: int = 1, window: int = 10):
        from deepnotes.core.checks import check_int

        self.factor = check_float("factor", factor, min=1.0, min_inclusive=False)
        self.warmup = check_int("warmup", warmup, min=1)
        self.window = check_int("window", window, min=1)
        self.initial: float | None = None
        self._first: list[float] = []
        self._recent: deque[float] = deque(maxlen=self.window)

    def on_fit_start(self, trainer):
        if trainer.history and self.initial is None:
            self.initial = float(trainer.history[0]["train_loss"])

    def on_batch_end(self, trainer, batch_index, loss):
        self._recent.append(loss)
        if self.initial is None:
            self._first.append(loss)
            if len(self._first) == self.warmup:
                self.initial = sum(self._first) / self.warmup
            return
        cost = sum(self._recent) / len(self._recent)
        if math.isfinite(cost) and cost > self.factor * self.initial:
            raise DivergenceError(
                f"loss {cost:.4g} (mean of the last {len(self._recent)} batches) at step {trainer.step} "
                f"exceeds {self.factor:g} x the initial loss {self.initial:.4g}; training aborted "
                "(learning rate too high?)"
            )


class WeightPenalty(Callback):
    """Add the L1 / L2 (sub)gradients ``l1·sign(w) + l2·w`` of the weights after each backward.

    Equivalent to training on ``loss + l1 Σ|w| + l2/2 Σw²`` (biases excluded); the reported loss is
    the data loss alone.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = check_float("l1", l1, min=0.0)
        self.l2 = check_float("l2", l2, min=0.0)

    def on_after_backward(self, trainer):
        add_penalty_grad_(trainer.model.parameters(), self.l1, self.l2)


class MaxNorm(Callback):
    """Project every unit's incoming weights onto the ball of radius ``max_norm`` after each step."""

    def __init__(self, max_norm: float):
        self.max_norm = check_float("max_norm", max_norm, min=0.0, min_inclusive=False)

    def on_batch_end(self, trainer, batch_index, loss):
        max_norm_(trainer.model.parameters(), self.max_norm)
