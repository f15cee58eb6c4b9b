"""Grad-CAM (Selvaraju et al., 2017): where in a conv layer's grid the evidence for a class lies.

With ``A^k`` the k-th channel of the chosen layer's output and ``S_c`` the class score,

``α_k = mean_{i,j} ∂S_c/∂A^k_{ij}``   (one weight per channel: global-average-pooled gradient)
``L_c = ReLU(Σ_k α_k A^k)``           (on the layer's own grid, before any upsampling)

:func:`upsample_cam` brings ``L_c`` to the image size and :func:`cam_overlay` normalizes it to
``[0, 1]`` for drawing over the image. Reference: ``captum.attr.LayerGradCam(model, layer)
.attribute(x, target, relu_attributions=True)`` and ``LayerAttribution.interpolate``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_choice, check_int, check_tensor
from deepnotes.explain._model import (
    CONV_TYPES,
    check_images,
    class_scores,
    inspecting,
    resolve_layer,
)


def last_conv_name(model: nn.Module) -> str:
    """Name of the last convolution in registration order (the usual Grad-CAM layer)."""
    names = [name for name, m in model.named_modules() if isinstance(m, CONV_TYPES)]
    if not names:
        raise ValueError(f"model {type(model).__name__} has no convolutional layer, so Grad-CAM has no "
                         "spatial feature map to weight")
    return names[-1]


def grad_cam(model: nn.Module, layer: str | nn.Module | None, x: torch.Tensor, target: Any) -> torch.Tensor:
    """Class activation map of ``layer`` for ``target``, on the layer's grid.

    Parameters
    ----------
    model : nn.Module
        Needs at least one convolution (``ValueError`` otherwise).
    layer : str, nn.Module or None
        A name from ``model.named_modules()`` (or the module) whose output is ``(N, K, h, w)``;
        ``None`` picks the last convolution.
    x : Tensor[N, C, H, W]
    target : int or Tensor[N]

    Returns
    -------
    Tensor[N, 1, h, w]
        ``ReLU(Σ_k α_k A^k)``.
    """
    check_images(model, x)
    last = last_conv_name(model)  # a model without a conv layer fails here, naming the reason
    name, module = resolve_layer(model, last if layer is None else layer)
    seen: list[torch.Tensor] = []

    def keep(mod, inputs, output):
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"layer {name!r} must output a feature map (N, K, h, w) for Grad-CAM, got {shape}")
        seen.append(output)
        # the rest of the model runs on a copy, so that an in-place op after this layer
        # (ReLU(inplace=True)) cannot overwrite the activations we keep
        return output.clone()

    with inspecting(model) as hooks, torch.enable_grad():
        hooks.forward(module, keep)
        xg = x.detach().clone().requires_grad_(True)
        _, score = class_scores(model, xg, target)
        if not seen:
            raise ValueError(f"layer {name!r} was not used in the model's forward pass")
        acts = seen[-1]
        (grads,) = torch.autograd.grad(score.sum(), acts)
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    return F.relu((alpha * acts.detach()).sum(dim=1, keepdim=True))


def upsample_cam(cam: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """``(N, 1, h, w) → (N, 1, H, W)`` by ``F.interpolate`` (``"bilinear"``, ``"nearest"`` or ``"bicubic"``)."""
    check_tensor("cam", cam, ndim=4, floating=True)
    check_choice("mode", mode, ("bilinear", "nearest", "bicubic"))
    h, w = (check_int(f"size[{i}]", s, min=1) for i, s in enumerate(size))
    return F.interpolate(cam, size=(h, w), mode=mode)


def cam_overlay(cam: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """The upsampled map scaled to ``[0, 1]`` per image, ``(N, H, W)``, ready to draw over the image.

    An all-zero map (no positive evidence anywhere) stays all zero.
    """
    up = upsample_cam(cam, size, mode).clamp(min=0)[:, 0]
    peak = up.flatten(1).amax(1).clamp(min=torch.finfo(up.dtype).tiny)
    return up / peak[:, None, None]
