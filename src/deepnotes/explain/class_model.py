"""Class-model visualization: the input a network finds most typical of a class, by gradient ascent.

Starting from ``I_0`` (zeros by default), repeat for ``t = 1 … steps``:

``g_t = ∂/∂I [S_c(I) − λ‖I‖²]``                       (the class score with an L2 penalty)
``I ← I + lr·g_t``                                    (ascent step)
``I[p] ← 0`` for the ``value_clip`` fraction of pixels ``p`` with the smallest ``‖I[:, p]‖``
``I[p] ← 0`` for the ``grad_clip`` fraction of pixels ``p`` with the smallest ``‖g_t[:, p]‖``
``I ← GaussianBlur_σ(I)`` every ``blur_every`` steps
``I ← clamp(I, lo, hi)`` when a ``clamp`` range is given

Each regularizer of the notes (L2 penalty, blurring, clipping small values or small gradients)
is switched off by setting its parameter to 0. The norms ``‖·[:, p]‖`` are over channels; the
clipped pixels are the first ``floor(fraction · H·W)`` in a stable ascending sort (ties: the
lower flat index first). The blur (:func:`gaussian_blur`) has a ``2·ceil(3σ) + 1`` kernel with
reflect padding, equal to torchvision's ``gaussian_blur`` of that size.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor, check_type
from deepnotes.explain._model import check_images, class_scores, inspecting


def clip_smallest(image: torch.Tensor, strength: torch.Tensor, fraction: float) -> torch.Tensor:
    """Zero, in each image, the ``floor(fraction·H·W)`` pixels with the smallest ``strength`` ``(N, H, W)``."""
    n, _, h, w = image.shape
    m = math.floor(fraction * h * w)
    if m == 0:
        return image
    order = torch.sort(strength.reshape(n, -1), dim=1, stable=True).indices[:, :m]
    keep = torch.ones(n, h * w, dtype=torch.bool, device=image.device)
    keep.scatter_(1, order, False)
    return image * keep.reshape(n, 1, h, w)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each channel with a normalized Gaussian of standard deviation ``sigma``.

    The kernel has ``2·ceil(3σ) + 1`` taps ``∝ exp(−x²/2σ²)`` (the same as torchvision's
    ``gaussian_blur`` for that size), applied along rows and columns with reflect padding.
    """
    check_tensor("image", image, ndim=4, floating=True)
    sigma = check_float("sigma", sigma, min=0.0, min_inclusive=False)
    r = math.ceil(3 * sigma)
    if r >= min(image.shape[-2:]):
        raise ValueError(f"blur sigma {sigma} needs a {2 * r + 1}-tap kernel, too wide for images of size "
                         f"{tuple(image.shape[-2:])} (reflect padding needs radius < side)")
    x = torch.arange(-r, r + 1, dtype=image.dtype, device=image.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    c = image.shape[1]
    padded = F.pad(image, (r, r, r, r), mode="reflect")
    rows = F.conv2d(padded, k.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # along the height
    return F.conv2d(rows, k.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # then along the width


def class_model(
    model: nn.Module,
    target: Any,
    shape: tuple[int, int, int],
    steps: int = 200,
    lr: float = 0.1,
    l2: float = 1e-2,
    blur_every: int = 4,
    blur_sigma: float = 0.5,
    value_clip: float = 0.0,
    grad_clip: float = 0.0,
    clamp: tuple[float, float] | None = None,
    init: torch.Tensor | None = None,
) -> torch.Tensor:
    """Images ``(N, C, H, W)`` that maximize the regularized target score, one per target.

    Parameters
    ----------
    model : nn.Module
        Maps images to class scores; used in the mode it is in (use ``eval()`` for batch norm).
    target : int or Tensor[N]
        One image is made per target (an int makes one image).
    shape : (C, H, W)
    steps, lr : int, float
        Number and size of the ascent steps.
    l2 : float
        ``λ`` of the L2 penalty ``λ‖I‖²`` (0: off).
    blur_every, blur_sigma : int, float
        Blur every ``blur_every`` steps with standard deviation ``blur_sigma`` (0: off).
    value_clip, grad_clip : float in [0, 1)
        Fraction of pixels with the smallest value / gradient norm set to 0 after each step (0: off).
    clamp : (lo, hi), optional
        Keep pixel values in the data's range.
    init : Tensor[N, C, H, W], optional
        Starting images (default zeros).
    """
    check_type("shape", shape, (tuple, list))
    if len(shape) != 3:
        raise ValueError(f"shape must be (C, H, W), got {tuple(shape)}")
    c, h, w = (check_int(f"shape[{i}]", v, min=1) for i, v in enumerate(shape))
    steps = check_int("steps", steps, min=0)
    lr = check_float("lr", lr, min=0.0, min_inclusive=False)
    l2 = check_float("l2", l2, min=0.0)
    blur_every = check_int("blur_every", blur_every, min=0)
    blur_sigma = check_float("blur_sigma", blur_sigma, min=0.0)
    value_clip = check_float("value_clip", value_clip, min=0.0, max=1.0, max_inclusive=False)
    grad_clip = check_float("grad_clip", grad_clip, min=0.0, max=1.0, max_inclusive=False)
    n = 1 if isinstance(target, int) else len(torch.as_tensor(target).reshape(-1))
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    device = param.device if param is not None else torch.device("cpu")
    if init is None:
        image = torch.zeros(n, c, h, w, dtype=dtype, device=device)
    else:
        check_tensor("init", init, ndim=4, floating=True, finite=True)
        if tuple(init.shape) != (n, c, h, w):
            raise ValueError(f"init must have shape {(n, c, h, w)}, got {tuple(init.shape)}")
        image = init.detach().clone()
    if clamp is not None:
        lo, hi = (check_float(f"clamp[{i}]", v) for i, v in enumerate(clamp))
        if lo >= hi:
            raise ValueError(f"clamp must be (lo, hi) with lo < hi, got {tuple(clamp)}")
    check_images(model, image, name="shape")
    with inspecting(model), torch.enable_grad():
        for t in range(1, steps + 1):
            x = image.requires_grad_(True)
            _, score = class_scores(model, x, target)
            objective = score.sum() - l2 * (x * x).sum()
            (g,) = torch.autograd.grad(objective, x)
            image = (x + lr * g).detach()
            if value_clip:
                image = clip_smallest(image, image.norm(dim=1), value_clip)
            if grad_clip:
                image = clip_smallest(image, g.norm(dim=1), grad_clip)
            if blur_every and blur_sigma > 0 and t % blur_every == 0:
                image = gaussian_blur(image, blur_sigma)
            if clamp is not None:
                image = image.clamp(lo, hi)
    return image.detach()


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, per image ``(N,)``: lower is smoother."""
    check_tensor("image", image, ndim=4, floating=True)
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().flatten(1)
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().flatten(1)
    return torch.cat([dy, dx], dim=1).mean(1)
