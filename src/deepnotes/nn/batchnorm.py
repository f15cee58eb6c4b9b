"""Batch normalization written out, with running statistics.

Training mode normalizes with the batch's own statistics over every axis but the channel axis
(``N`` for ``(N, C)``, ``N, L`` for ``(N, C, L)``, ``N, H, W`` for ``(N, C, H, W)``)::

    x̂ = (x - μ_B) / sqrt(σ²_B + eps),   y = γ x̂ + β        (σ²_B biased, divides by m)

and updates the running estimates used at evaluation::

    running = (1 - momentum) · running + momentum · batch_stat      (variance: unbiased, m - 1)

With ``momentum=None`` the running estimates are the cumulative average over the
``num_batches_tracked`` batches seen. Constructor arguments and ``state_dict`` keys are torch's, so
a ``torch.nn.BatchNorm2d`` state loads into ours and back.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor, check_type


class _BatchNormTrain(torch.autograd.Function):
    """Training-mode normalization with its backward written out (one pass per tensor-sized term).

    With ``x̂ = (x - μ) · r``, ``r = 1 / sqrt(σ² + eps)`` and ``g = ∂L/∂y · γ``, averages over the
    ``m`` values of a channel give::

        ∂L/∂x = r · (g - mean(g) - x̂ · mean(g · x̂)),   ∂L/∂γ = Σ ∂L/∂y · x̂,   ∂L/∂β = Σ ∂L/∂y
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, dims, shape):
        # statistics and x̂ in float64 whatever the input type (float32 sums far from 0 lose
        # digits), x̂ rounded once to the input type
        x64 = x.to(torch.float64)
        mean = x64.mean(dims, keepdim=True)
        xc = x64 - mean
        var = (xc * xc).mean(dims, keepdim=True)
        rstd64 = torch.rsqrt(var + eps)
        xhat = (xc * rstd64).to(x.dtype)
        rstd = rstd64.to(x.dtype)
        out = xhat if weight is None else xhat * weight.view(shape)
        if bias is not None:
            out = out + bias.view(shape)
        ctx.save_for_backward(xhat, rstd, weight)
        ctx.dims, ctx.shape, ctx.has_bias = dims, shape, bias is not None
        return out, mean.flatten(), var.flatten()  # float64: the running update rounds once

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        xhat, rstd, weight = ctx.saved_tensors
        dims, shape = ctx.dims, ctx.shape
        g = grad_out if weight is None else grad_out * weight.view(shape)
        dx = rstd * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))
        dw = (grad_out * xhat).sum(dims) if weight is not None and ctx.needs_input_grad[1] else None
        db = grad_out.sum(dims) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db, None, None, None


def batch_norm(
    input: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Functional batch norm over channel axis 1 (same arguments as ``torch.nn.functional.batch_norm``).

    Parameters
    ----------
    input : Tensor[N, C, *]
    running_mean, running_var : Tensor[C] or None
        Updated in place when ``training``; used instead of the batch statistics otherwise.
    weight, bias : Tensor[C], optional
        The affine ``γ`` and ``β``.
    training : bool
    momentum : float
        Weight of the new batch statistic in the running update.
    eps : float
        Added to the variance before the square root.

    Returns
    -------
    Tensor[N, C, *]
    """
    check_tensor("input", input, ndim=(2, 3, 4, 5), floating=True)
    # every argument is checked before anything is computed or updated in place
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and (not isinstance(t, torch.Tensor) or tuple(t.shape) != (C,)):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a tensor of shape ({C},) for {C} channels, got {got}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (or both None)")
    dims = (0, *range(2, input.dim()))
    shape = (1, input.shape[1]) + (1,) * (input.dim() - 2)
    if training or running_mean is None:
        count = input.numel() // input.shape[1]
        if count <= 1:
            raise ValueError(f"input: expected more than 1 value per channel when training, got shape {tuple(input.shape)}")
        out, mean, var = _BatchNormTrain.apply(input, weight, bias, eps, dims, shape)
        if training and running_mean is not None:
            with torch.no_grad():  # in float64, rounded once to the buffers' type
                new_mean = running_mean.double().mul(1 - momentum).add(mean, alpha=momentum)
                # the running variance is the unbiased estimate (m - 1), as in torch
                unbiased = var * (count / (count - 1))
                new_var = running_var.double().mul(1 - momentum).add(unbiased, alpha=momentum)
                running_mean.copy_(new_mean)
                running_var.copy_(new_var)
        return out
    # evaluation: a fixed per-channel affine map, y = x · scale + shift
    scale = torch.rsqrt(running_var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return torch.addcmul(shift.view(shape), input, scale.view(shape))


class _BatchNorm(nn.Module):
    _ndims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.num_features = check_int("num_features", num_features, min=1)
        self.eps = check_float("eps", eps, min=0.0, min_inclusive=False)
        self.momentum = None if momentum is None else check_float("momentum", momentum, min=0.0, max=1.0)
        self.affine = check_type("affine", affine, bool)
        self.track_running_stats = check_type("track_running_stats", track_running_stats, bool)
        kw = {"device": device, "dtype": dtype}
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **kw))
            self.bias = nn.Parameter(torch.zeros(num_features, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **kw))
            self.register_buffer("running_var", torch.ones(num_features, **kw))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        check_tensor("input", input, ndim=self._ndims, floating=True)
        if input.shape[1] != self.num_features:
            raise ValueError(f"input must have {self.num_features} channels (dim 1), got shape {tuple(input.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        # batch statistics in training, or whenever there are no running estimates to use
        use_batch = self.training or not self.track_running_stats
        return batch_norm(
            input,
            self.running_mean if (not self.training or self.track_running_stats) else None,
            self.running_var if (not self.training or self.track_running_stats) else None,
            self.weight,
            self.bias,
            use_batch,
            momentum,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm over ``(N, C)`` or ``(N, C, L)`` (``torch.nn.BatchNorm1d``'s arguments and keys)."""

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over ``(N, C, H, W)`` (``torch.nn.BatchNorm2d``'s arguments and keys)."""

    _ndims = (4,)
