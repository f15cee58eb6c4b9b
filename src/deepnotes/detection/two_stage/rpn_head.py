"""The RPN head: a 3 × 3 conv and two 1 × 1 convs predicting, at every feature location, one
objectness logit and four box deltas for each of its ``A`` anchors.

The same head slides over every pyramid level. Its outputs are laid out like the anchors
(level, then row, then column, then anchor) by :func:`flatten_predictions`, so row ``i`` of the
flattened predictions belongs to anchor ``i`` of :class:`~deepnotes.detection.AnchorGenerator`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_tensor, check_type


class RPNHead(nn.Module):
    """``conv3x3 → ReLU`` shared, then ``cls_logits`` (A channels) and ``bbox_pred`` (4A channels).

    Weights start as torchvision's: normal with std 0.01, biases 0.
    """

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels, min=1)
        self.num_anchors = check_int("num_anchors", num_anchors, min=1)
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1)
        self.bbox_pred = nn.Conv2d(in_channels, 4 * num_anchors, kernel_size=1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(
        self, features: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """One ``Tensor[N, C, H_l, W_l]`` per level → per level ``Tensor[N, A, H_l, W_l]`` logits and
        ``Tensor[N, 4A, H_l, W_l]`` deltas."""
        check_type("features", features, (list, tuple))
        logits, deltas = [], []
        for i, f in enumerate(features):  # a few pyramid levels
            check_tensor(f"features[{i}]", f, ndim=4, floating=True)
            if f.shape[1] != self.conv.in_channels:
                raise ValueError(
                    f"features[{i}] must have {self.conv.in_channels} channels, got {f.shape[1]}"
                )
            t = torch.relu(self.conv(f))
            logits.append(self.cls_logits(t))
            deltas.append(self.bbox_pred(t))
        return logits, deltas


def flatten_predictions(
    logits: Sequence[torch.Tensor], deltas: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-level ``(N, A, H, W)`` logits and ``(N, 4A, H, W)`` deltas → ``Tensor[N·R, 1]`` and
    ``Tensor[N·R, 4]``, image-major, each image's ``R`` rows in anchor order (level, row, column, anchor)."""
    flat_logits, flat_deltas = [], []
    for lg, dl in zip(logits, deltas):
        n, a, h, w = lg.shape
        if dl.shape != (n, 4 * a, h, w):
            raise ValueError(
                f"deltas must have shape {(n, 4 * a, h, w)} to match logits {tuple(lg.shape)}, got {tuple(dl.shape)}"
            )
        flat_logits.append(lg.permute(0, 2, 3, 1).reshape(n, -1, 1))
        flat_deltas.append(dl.view(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
    return torch.cat(flat_logits, 1).flatten(0, -2), torch.cat(flat_deltas, 1).reshape(-1, 4)
