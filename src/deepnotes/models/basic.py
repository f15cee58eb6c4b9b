"""Small reference models for the trainer: ``linear``, ``mlp`` and ``cnn``.

Every registered model factory has the signature ``f(in_shape, num_classes, **kwargs) -> nn.Module``
where ``in_shape`` is the shape of one input (without the batch dimension) and ``num_classes`` the
output size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_probability, check_type
from deepnotes.core.registry import MODELS


def _features(in_shape) -> int:
    check_type("in_shape", in_shape, (tuple, list))
    if not in_shape:
        raise ValueError("in_shape must have at least one dimension")
    return math.prod(check_int(f"in_shape[{i}]", d, min=1) for i, d in enumerate(in_shape))


@MODELS.register("linear", description="one affine layer on the flattened input")
class LinearModel(nn.Module):
    """``y = W·flatten(x) + b``: linear regression, or logits of a linear classifier."""

    def __init__(self, in_shape, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(_features(in_shape), check_int("num_classes", num_classes, min=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@MODELS.register("mlp", description="flatten → [Linear → ReLU (→ Dropout)] × depth → Linear")
class MLP(nn.Module):
    """A multi-layer perceptron on the flattened input."""

    def __init__(self, in_shape, num_classes: int, hidden: int = 128, depth: int = 2, dropout: float = 0.0):
        super().__init__()
        hidden = check_int("hidden", hidden, min=1)
        depth = check_int("depth", depth, min=1)
        dropout = check_probability("dropout", dropout)
        layers: list[nn.Module] = []
        width = _features(in_shape)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, check_int("num_classes", num_classes, min=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


@MODELS.register("cnn", description="two 3x3 conv blocks with batch norm, global average pool, linear head")
class SmallCNN(nn.Module):
    """A small CNN for images ``(C, H, W)``: conv-BN-ReLU ×2, max-pool, conv-BN-ReLU, GAP, linear."""

    def __init__(self, in_shape, num_classes: int, width: int = 32):
        super().__init__()
        check_type("in_shape", in_shape, (tuple, list))
        if len(in_shape) != 3:
            raise ValueError(f"in_shape must be (C, H, W) for the cnn model, got {tuple(in_shape)}")
        c = check_int("in_shape[0]", in_shape[0], min=1)
        w = check_int("width", width, min=1)
        self.features = nn.Sequential(
            nn.Conv2d(c, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(4 * w, check_int("num_classes", num_classes, min=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))
