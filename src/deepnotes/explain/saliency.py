"""Saliency map: how much each input pixel changes the class score (Simonyan et al., 2014).

``saliency = |∂S_c / ∂x|``, the absolute gradient of the target score with respect to every input
value, with the same shape as the input; a single map per image is its maximum over channels
(:func:`channel_max`). Reference: ``captum.attr.Saliency(model).attribute(x, target, abs=True)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepnotes.explain._model import check_images, class_scores, inspecting


def input_gradient(model: nn.Module, x: torch.Tensor, target: Any) -> torch.Tensor:
    """``∂S_target / ∂x`` for every image of the batch (the parameters' ``.grad`` are left untouched)."""
    check_images(model, x)
    with inspecting(model), torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        _, score = class_scores(model, xg, target)
        # the images are independent, so the gradient of the sum is each image's own gradient
        (grad,) = torch.autograd.grad(score.sum(), xg)
    return grad


def saliency(model: nn.Module, x: torch.Tensor, target: Any) -> torch.Tensor:
    """Absolute input gradient of the target class score.

    Parameters
    ----------
    model : nn.Module
        Maps ``(N, C, H, W)`` images to class scores ``(N, K)``; used in the mode it is in.
    x : Tensor[N, C, H, W]
    target : int or Tensor[N]
        The class whose score is explained, for all images or one per image.

    Returns
    -------
    Tensor[N, C, H, W]
        ``|∂S_target/∂x|``.
    """
    return input_gradient(model, x, target).abs()


def channel_max(attribution: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W) → (N, H, W)``: one map per image, the maximum over channels."""
    return attribution.amax(dim=1)
