"""A deep MLP with (optional) residual connections: ``h ← h + σ(W h + b)`` per block.

With ``residual=False`` it is the plain deep stack ``h ← σ(W h + b)``, the net in which the notes
show gradients vanish under the sigmoid; the identity path of a residual block passes the gradient
through unattenuated, which is the remedy. The same class serves both so that the comparison
changes one thing only.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_int, check_type
from deepnotes.core.registry import MODELS
from deepnotes.models.basic import _features

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class ResidualBlock(nn.Module):
    """``x + σ(Linear(x))`` (or ``σ(Linear(x))`` when ``residual=False``)."""

    def __init__(self, width: int, activation: str = "relu", residual: bool = True):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.act = ACTIVATIONS[activation]()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.linear(x))
        return x + h if self.residual else h


@MODELS.register("residual_mlp", description="flatten → Linear → [h + σ(Linear h)] × depth → Linear")
class ResidualMLP(nn.Module):
    """Input projection, ``depth`` (residual) blocks of width ``hidden``, linear head.

    Parameters
    ----------
    in_shape : tuple of int
        Shape of one input; flattened.
    num_classes : int
    hidden : int
    depth : int
        Number of blocks.
    activation : {"relu", "sigmoid", "tanh"}
    residual : bool
        ``False`` gives the plain deep MLP with the same layers.
    """

    def __init__(self, in_shape, num_classes: int, hidden: int = 64, depth: int = 4,
                 activation: str = "relu", residual: bool = True):
        super().__init__()
        hidden = check_int("hidden", hidden, min=1)
        depth = check_int("depth", depth, min=1)
        activation = check_choice("activation", activation, tuple(ACTIVATIONS))
        residual = check_type("residual", residual, bool)
        self.stem = nn.Sequential(nn.Linear(_features(in_shape), hidden), ACTIVATIONS[activation]())
        self.blocks = nn.Sequential(*(ResidualBlock(hidden, activation, residual) for _ in range(depth)))
        self.head = nn.Linear(hidden, check_int("num_classes", num_classes, min=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x.flatten(1))))
