"""Guided backpropagation (Springenberg et al., 2015): the saliency gradient with only positive signals.

A ReLU's ordinary backward pass keeps the gradient where the forward input was positive; guided
backpropagation additionally keeps only the positive part of the gradient arriving from above:

``∂_guided/∂a = 1[a > 0] · max(∂_guided/∂relu(a), 0)``

so only evidence that *increases* the class score flows back, which gives sharper images than
the plain saliency map. As in the reference, every ``torch.nn.ReLU`` module is modified (a
functional ``F.relu`` inside ``forward`` is not). Reference: ``captum.attr.GuidedBackprop``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepnotes.explain._model import check_images, class_scores, inspecting


class _PositiveGradient(torch.autograd.Function):
    """Identity forward; backward lets only the positive part of the incoming gradient through."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()  # a fresh tensor, so later in-place ops cannot modify a view of ours

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp(min=0)


def _guide(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
    # ReLU's own backward already applies 1[a > 0]; we add the clamp of the gradient from above
    return _PositiveGradient.apply(output)


def guided_backprop(model: nn.Module, x: torch.Tensor, target: Any) -> torch.Tensor:
    """Input gradient of the target score with every ReLU's backward pass guided.

    Parameters
    ----------
    model : nn.Module
        With at least one ``nn.ReLU`` module (else the result would be the plain gradient:
        ``ValueError``). In-place ReLUs are fine.
    x : Tensor[N, C, H, W]
    target : int or Tensor[N]

    Returns
    -------
    Tensor[N, C, H, W]
        The guided gradient (signed; plot its positive part or its absolute value).
    """
    check_images(model, x)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(f"model {type(model).__name__} has no nn.ReLU module to guide; its guided gradient "
                         "would be the plain gradient (use saliency)")
    with inspecting(model) as hooks, torch.enable_grad():
        for relu in relus:
            hooks.forward(relu, _guide)
        xg = x.detach().clone().requires_grad_(True)
        _, score = class_scores(model, xg, target)
        (grad,) = torch.autograd.grad(score.sum(), xg)
    return grad
