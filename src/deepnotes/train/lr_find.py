"""Learning-rate range test (Smith 2017): raise the LR exponentially, watch the loss.

One pass of ``num_iter`` mini-batch steps with ``lr_i = start_lr · (end_lr / start_lr)^(i / (n - 1))``.
Too low a rate leaves the loss flat; too high a rate makes it blow up (or go NaN). The loss is
smoothed with an exponential moving average (bias-corrected, as in Adam) and the test stops early
once the smoothed loss exceeds ``diverge_factor ×`` its minimum. The suggested rate is where the
smoothed loss falls fastest (most negative slope against ``log lr``) before the minimum. The model
and optimizer are restored to their initial state afterwards.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from deepnotes.core.checks import check_float, check_int, check_type
from deepnotes.data.loading import make_loader


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]  # smoothed
    raw_losses: list[float]
    suggested_lr: float | None
    diverged_at: float | None = None
    notes: list[str] = field(default_factory=list)

    def plot(self):
        from deepnotes.viz import new_figure

        fig, ax = new_figure()
        ax.plot(self.lrs, self.raw_losses, color="0.75", lw=0.8, label="loss")
        ax.plot(self.lrs, self.losses, lw=1.5, label="smoothed")
        if self.suggested_lr is not None:
            ax.axvline(self.suggested_lr, ls="--", color="r", label=f"suggested {self.suggested_lr:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        finite = [v for v in self.losses if math.isfinite(v)]
        if finite:  # a diverging tail would squash the interesting part of the curve
            ax.set_ylim(min(finite) * 0.9, min(max(finite), 4 * finite[0]) * 1.05)
        ax.legend(fontsize=8)
        return fig


def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Dataset,
    *,
    loss_fn=None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    batch_size: int = 32,
    smooth: float = 0.98,
    diverge_factor: float = 4.0,
    seed: int = 0,
) -> LRFindResult:
    """Run the range test; returns the curve and a suggested learning rate.

    Parameters
    ----------
    model, optimizer
        The optimizer's ``lr`` is overwritten at every step; both are restored at the end.
    data : Dataset of (input, target)
        Cycled through as many times as ``num_iter`` needs.
    start_lr, end_lr : float, 0 < start_lr < end_lr
    num_iter : int >= 3
    smooth : float in [0, 1)
        EMA weight of past losses.
    diverge_factor : float > 1
    """
    check_type("model", model, nn.Module)
    check_type("optimizer", optimizer, torch.optim.Optimizer)
    start_lr = check_float("start_lr", start_lr, min=0.0, min_inclusive=False)
    end_lr = check_float("end_lr", end_lr, min=0.0, min_inclusive=False)
    if end_lr <= start_lr:
        raise ValueError(f"end_lr must be > start_lr, got start_lr={start_lr}, end_lr={end_lr}")
    num_iter = check_int("num_iter", num_iter, min=3)
    smooth = check_float("smooth", smooth, min=0.0, max=1.0, max_inclusive=False)
    diverge_factor = check_float("diverge_factor", diverge_factor, min=1.0, min_inclusive=False)
    loss_fn = loss_fn or F.cross_entropy
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(optimizer.state_dict())
    device = next(model.parameters()).device
    loader = make_loader(data, batch_size, shuffle=True, seed=seed)
    ratio = end_lr / start_lr
    lrs, raw, smoothed = [], [], []
    avg, best, diverged = 0.0, math.inf, None
    batches = iter(loader)
    model.train()
    try:
        for i in range(num_iter):
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(loader)
                x, y = next(batches)
            lr = start_lr * ratio ** (i / (num_iter - 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x.to(device)), y.to(device))
            value = loss.item()
            lrs.append(lr)
            raw.append(value)
            if not math.isfinite(value):
                smoothed.append(math.nan)
                diverged = lr
                break
            avg = smooth * avg + (1 - smooth) * value
            s = avg / (1 - smooth ** (i + 1))
            smoothed.append(s)
            best = min(best, s)
            if s > diverge_factor * best:
                diverged = lr
                break
            loss.backward()
            optimizer.step()
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_opt)
    return LRFindResult(lrs, smoothed, raw, suggest_lr(lrs, smoothed), diverged)


def suggest_lr(lrs: list[float], losses: list[float], skip_start: int = 10) -> float | None:
    """The LR where ``losses`` falls fastest versus ``log lr``, before its minimum.

    The first ``skip_start`` points are ignored (the moving average is still warming up there), and
    the slope is taken over a window of ``max(1, n // 20)`` points to damp batch noise.
    """
    finite = [i for i, v in enumerate(losses) if math.isfinite(v)][skip_start:]
    if len(finite) < 3:
        return None
    lr = torch.tensor([lrs[i] for i in finite], dtype=torch.float64)
    loss = torch.tensor([losses[i] for i in finite], dtype=torch.float64)
    stop = int(loss.argmin()) + 1
    k = max(1, len(finite) // 20)
    if stop <= k:
        return None
    slope = (loss[k:stop] - loss[: stop - k]) / (lr[k:stop].log() - lr[: stop - k].log())
    return float(lr[int(slope.argmin()) + k // 2])
