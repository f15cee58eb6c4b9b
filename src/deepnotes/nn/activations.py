"""Activation functions with their derivatives written out.

Each function's forward pass and its derivative are plain tensor formulas; a small
``torch.autograd.Function`` uses the derivative formula as the backward pass, so what autograd
computes for our activations is exactly the derivative printed here (and tested against
``torch.nn.functional``)::

    sigmoid      s(x) = 1 / (1 + e^-x)                 s'(x) = s(x) (1 - s(x))          <= 1/4
    tanh         t(x) = (e^x - e^-x) / (e^x + e^-x)    t'(x) = 1 - t(x)^2               <= 1
    relu         max(0, x)                              1 if x > 0 else 0
    leaky_relu   x if x > 0 else a x                    1 if x > 0 else a
    elu          x if x > 0 else alpha (e^x - 1)        1 if x > 0 else alpha e^x
    mish         x tanh(softplus(x))                    t + x s(x) (1 - t^2),  t = tanh(softplus(x))
    maxout       max_k (W_k x + b_k)                    routed to the winning piece (like max)

Kinks follow torch: the derivative at exactly 0 is the left one (relu'(0) = 0, leaky'(0) = a,
elu'(0) = alpha). NaN inputs give NaN outputs. The backward passes are first-order only
(``once_differentiable``): a double backward raises instead of returning a wrong number.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from deepnotes.core.checks import check_float, check_int, check_tensor

# -- formulas -------------------------------------------------------------------------------


def _sigmoid(x: torch.Tensor) -> torch.Tensor:
    # e = exp(-|x|) <= 1 never overflows; both branches equal 1 / (1 + e^-x)
    e = torch.exp(-x.abs())
    return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _tanh(x: torch.Tensor) -> torch.Tensor:
    # (1 - e^-2|x|) / (1 + e^-2|x|) with expm1, exact near 0 where 1 - e^-2|x| would cancel
    e = torch.exp(-2 * x.abs())
    return torch.sign(x) * (-torch.expm1(-2 * x.abs())) / (1 + e)


def _softplus(x: torch.Tensor) -> torch.Tensor:
    # log(1 + e^x) = max(x, 0) + log1p(e^-|x|), free of overflow
    return x.clamp_min(0) + torch.log1p(torch.exp(-x.abs()))


def sigmoid_derivative(x: torch.Tensor) -> torch.Tensor:
    s = _sigmoid(x)
    return s * (1 - s)


def tanh_derivative(x: torch.Tensor) -> torch.Tensor:
    t = _tanh(x)
    return 1 - t * t


def relu_derivative(x: torch.Tensor) -> torch.Tensor:
    return (x > 0).to(x.dtype)


def leaky_relu_derivative(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, negative_slope))


def elu_derivative(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    return torch.where(x > 0, torch.ones_like(x), alpha * torch.exp(x.clamp_max(0)))


def mish_derivative(x: torch.Tensor) -> torch.Tensor:
    t = _tanh(_softplus(x))
    return t + x * _sigmoid(x) * (1 - t * t)


_FORWARD = {
    "sigmoid": lambda x: _sigmoid(x),
    "tanh": lambda x: _tanh(x),
    "relu": lambda x: torch.where((x > 0) | x.isnan(), x, torch.zeros_like(x)),  # NaN stays NaN
    "leaky_relu": lambda x, a: torch.where(x > 0, x, a * x),
    "elu": lambda x, alpha: torch.where(x > 0, x, alpha * torch.expm1(x.clamp_max(0))),
    "mish": lambda x: x * _tanh(_softplus(x)),
}
DERIVATIVES = {
    "sigmoid": sigmoid_derivative,
    "tanh": tanh_derivative,
    "relu": relu_derivative,
    "leaky_relu": leaky_relu_derivative,
    "elu": elu_derivative,
    "mish": mish_derivative,
}


class _Elementwise(torch.autograd.Function):
    """``y = f(x, *params)`` whose backward is ``grad * f'(x, *params)`` from the tables above."""

    @staticmethod
    def forward(ctx, x, name, *params):
        ctx.save_for_backward(x)
        ctx.name, ctx.params = name, params
        return _FORWARD[name](x, *params)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (grad * DERIVATIVES[ctx.name](x, *ctx.params), None) + (None,) * len(ctx.params)


def _apply(name: str, x: torch.Tensor, *params: float) -> torch.Tensor:
    check_tensor("input", x, floating=True)
    return _Elementwise.apply(x, name, *params)


# -- functional API (torch.nn.functional names and defaults) ---------------------------------


def sigmoid(input: torch.Tensor) -> torch.Tensor:
    """Logistic sigmoid, elementwise; any shape."""
    return _apply("sigmoid", input)


def tanh(input: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent, elementwise; any shape."""
    return _apply("tanh", input)


def relu(input: torch.Tensor) -> torch.Tensor:
    """``max(0, x)``, elementwise; any shape; NaN gives NaN (as ``torch.relu``)."""
    return _apply("relu", input)


def leaky_relu(input: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """``x`` for ``x > 0`` else ``negative_slope * x``; any shape."""
    return _apply("leaky_relu", input, check_float("negative_slope", negative_slope))


def elu(input: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """``x`` for ``x > 0`` else ``alpha * (exp(x) - 1)``; any shape."""
    return _apply("elu", input, check_float("alpha", alpha))


def mish(input: torch.Tensor) -> torch.Tensor:
    """``x * tanh(softplus(x))``, elementwise; any shape."""
    return _apply("mish", input)


def maxout(input: torch.Tensor, pieces: int, dim: int = -1) -> torch.Tensor:
    """Maximum over consecutive groups of ``pieces`` features along ``dim``.

    Parameters
    ----------
    input : Tensor[..., C * pieces, ...]
        Pre-activations; feature ``j * pieces + k`` is piece ``k`` of output unit ``j``.
    pieces : int
        Number of linear pieces per unit (``>= 1``; ``C * pieces`` must equal the size of ``dim``).
    dim : int, default -1

    Returns
    -------
    Tensor[..., C, ...]
        The gradient reaches only the winning piece of each unit (the first one on a tie).
    """
    check_tensor("input", input, floating=True)
    pieces = check_int("pieces", pieces, min=1)
    dim = dim % input.dim() if input.dim() else 0
    size = input.shape[dim]
    if size % pieces:
        raise ValueError(f"pieces ({pieces}) must divide the size of dim {dim} ({size})")
    shape = (*input.shape[:dim], size // pieces, pieces, *input.shape[dim + 1 :])
    return input.reshape(shape).max(dim=dim + 1).values


# -- modules -----------------------------------------------------------------------------------


class Sigmoid(nn.Module):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return sigmoid(input)


class Tanh(nn.Module):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return tanh(input)


class ReLU(nn.Module):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return relu(input)


class LeakyReLU(nn.Module):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = check_float("negative_slope", negative_slope)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(nn.Module):
    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = check_float("alpha", alpha)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Mish(nn.Module):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return mish(input)


class Maxout(nn.Module):
    """A maxout layer: ``out_j = max_k (W_{jk} x + b_{jk})`` for ``k < pieces``.

    It replaces a ``Linear(in_features, out_features)`` plus activation with ``pieces`` times
    as many weights and biases (claim 5d: twice as many for ``pieces=2``).

    Parameters
    ----------
    in_features, out_features : int
    pieces : int, default 2
    bias : bool, default True

    Shapes: ``(N, *, in_features) -> (N, *, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int = 2, bias: bool = True):
        super().__init__()
        self.in_features = check_int("in_features", in_features, min=1)
        self.out_features = check_int("out_features", out_features, min=1)
        self.pieces = check_int("pieces", pieces, min=1)
        self.linear = nn.Linear(in_features, out_features * pieces, bias=bias)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return maxout(self.linear(input), self.pieces, dim=-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}"
