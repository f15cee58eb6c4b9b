"""Fast R-CNN's box head: two fully connected layers on each pooled RoI, then a predictor with
``num_classes`` class logits (background is class 0) and ``4 · num_classes`` class-specific box
deltas. Parameter names follow torchvision's ``TwoMLPHead`` and ``FastRCNNPredictor``.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_tensor


class TwoMLPHead(nn.Module):
    """``flatten → fc6 → ReLU → fc7 → ReLU``: ``Tensor[K, C, PH, PW]`` → ``Tensor[K, representation_size]``."""

    def __init__(self, in_channels: int, representation_size: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(
            check_int("in_channels", in_channels, min=1),
            check_int("representation_size", representation_size, min=1),
        )
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, floating=True)
        x = x.flatten(start_dim=1)
        if x.shape[1] != self.fc6.in_features:
            raise ValueError(
                f"x must flatten to {self.fc6.in_features} features per RoI, got {x.shape[1]}"
            )
        return torch.relu(self.fc7(torch.relu(self.fc6(x))))


class FastRCNNPredictor(nn.Module):
    """``cls_score`` (``num_classes`` logits) and ``bbox_pred`` (``4 · num_classes`` deltas)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels, min=1)
        self.num_classes = check_int("num_classes", num_classes, min=2)
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, 4 * num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_tensor("x", x, floating=True)
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)
