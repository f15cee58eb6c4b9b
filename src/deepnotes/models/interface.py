"""The interface every image classifier shares, and the input-shape checks the factories use.

Every model has ``forward_features(x) → feature map`` and ``forward_head(features) → logits``,
with ``forward = forward_head ∘ forward_features``; ``in_channels``, ``num_classes`` and
``min_size`` (smallest input side the layer stack accepts) are attributes.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_int, check_type

# below this side length the "auto" variant of a family with a small-input variant picks it
SMALL_INPUT_BELOW = 64


class ImageClassifier(nn.Module):
    """Base class: subclasses implement :meth:`forward_features` and :meth:`forward_head`."""

    in_channels: int
    num_classes: int
    min_size: int = 1

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` naming the expected channels / minimum size for a bad batch."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"input must be a batch of images (N, C, H, W), got {shape}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"input has {x.shape[1]} channels but {type(self).__name__} expects {self.in_channels}")
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"input of size {tuple(x.shape[-2:])} is smaller than the minimum size {self.min_size}x{self.min_size} "
                f"of {type(self).__name__}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.forward_head(self.forward_features(x))


def parse_in_shape(in_shape, min_size: int | None = None, name: str = "model") -> tuple[int, int, int]:
    """``(C, H, W)`` from ``in_shape``; raise ``ValueError`` naming ``min_size`` when H or W is smaller."""
    check_type("in_shape", in_shape, (tuple, list))
    if len(in_shape) != 3:
        raise ValueError(f"in_shape must be (C, H, W) for {name}, got {tuple(in_shape)}")
    c, h, w = (check_int(f"in_shape[{i}]", v, min=1) for i, v in enumerate(in_shape))
    if min_size is not None and min(h, w) < min_size:
        raise ValueError(
            f"in_shape {tuple(in_shape)} is smaller than the minimum input size {min_size}x{min_size} of {name}; "
            "use a small-input model (e.g. resnet18 or vgg16, which switch to their small variant) or resize the images"
        )
    return c, h, w


def pick_variant(variant: str, in_shape) -> str:
    """``"auto"`` → ``"small"`` when the smaller side is below :data:`SMALL_INPUT_BELOW`, else ``"imagenet"``."""
    check_choice("variant", variant, ("auto", "imagenet", "small"))
    if variant != "auto":
        return variant
    _, h, w = parse_in_shape(in_shape)
    return "small" if min(h, w) < SMALL_INPUT_BELOW else "imagenet"
