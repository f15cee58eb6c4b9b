"""Occlusion map: slide a grey patch over the image and record how much the class score drops.

For every window position ``w`` (top-left corners ``0, s, 2s, …`` until the window reaches the
border; the last one is clipped at the border so that every pixel is covered) the image with the
window set to ``baseline`` is scored, and

``map[p] = mean over the windows w that cover p of  (S_c(x) − S_c(x with w occluded))``.

A large positive value: hiding that region lowers the class score. Reference:
``captum.attr.Occlusion(model).attribute(x, sliding_window_shapes=(C, h, w), strides=(1, s, s),
baselines=baseline, target=c)`` (same windows, same averaging).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from deepnotes.core.checks import check_float, check_int
from deepnotes.explain._model import check_images, check_target, inspecting
from deepnotes.nn.calculators import _pair


def window_starts(size: int, window: int, stride: int) -> torch.Tensor:
    """Top-left coordinates ``0, s, 2s, …`` along one axis: ``ceil((size − window)/stride) + 1`` of them."""
    return torch.arange(math.ceil((size - window) / stride) + 1) * stride


def occlusion_masks(height: int, width: int, window: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """One boolean mask ``(H, W)`` per window position, ``(P, H, W)``, windows clipped at the border."""
    rows, cols = torch.arange(height), torch.arange(width)
    r0, c0 = window_starts(height, window[0], stride[0]), window_starts(width, window[1], stride[1])
    in_rows = (rows[None] >= r0[:, None]) & (rows[None] < r0[:, None] + window[0])  # (Pr, H)
    in_cols = (cols[None] >= c0[:, None]) & (cols[None] < c0[:, None] + window[1])  # (Pc, W)
    return (in_rows[:, None, :, None] & in_cols[None, :, None, :]).reshape(-1, height, width)


@torch.no_grad()
def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: Any,
    window: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    baseline: float = 0.0,
    batch_size: int = 256,
) -> torch.Tensor:
    """Score drop when each region is hidden, averaged over the windows covering each pixel.

    Parameters
    ----------
    model : nn.Module
        Maps images to class scores ``(N, K)``; the score is the raw output (logit), as in captum.
    x : Tensor[N, C, H, W]
    target : int or Tensor[N]
    window : int or (int, int)
        Height and width of the occluding patch (all channels are occluded).
    stride : int or (int, int)
        Step between window positions; at most the window size, so that no pixel is skipped.
    baseline : float
        Value written into the occluded window.
    batch_size : int
        Occluded images scored per forward pass (bounds memory; the result does not depend on it).

    Returns
    -------
    Tensor[N, C, H, W]
        The map, equal across channels.
    """
    check_images(model, x)
    n, c, h, w = x.shape
    win = _pair("window", window, min=1)
    step = _pair("stride", stride, min=1)
    for axis, size in enumerate((h, w)):
        if win[axis] > size:
            raise ValueError(f"window {win} does not fit in the image of size {(h, w)}")
        if step[axis] > win[axis]:
            raise ValueError(f"stride {step} must not exceed window {win}, or pixels between windows would never be occluded")
    baseline = check_float("baseline", baseline)
    batch_size = check_int("batch_size", batch_size, min=1)
    masks = occlusion_masks(h, w, win, step).to(x.device)  # (P, H, W)
    with inspecting(model):
        scores = model(x)
        t = check_target(target, n, scores.shape[1]).to(x.device)
        base = scores.gather(1, t[:, None])  # (N, 1)
        drops = []
        for chunk in masks.split(max(1, batch_size // n)):
            hidden = torch.where(chunk[:, None, None], torch.as_tensor(baseline, dtype=x.dtype), x[None])
            out = model(hidden.reshape(-1, c, h, w)).reshape(len(chunk), n, -1)
            drops.append(base[None, :, 0] - out.gather(2, t[None, :, None].expand(len(chunk), n, 1))[..., 0])
    drop = torch.cat(drops)  # (P, N)
    m = masks.to(x.dtype)
    total = torch.einsum("pn,phw->nhw", drop, m)
    covered = m.sum(0)  # every pixel is covered at least once (stride <= window)
    return (total / covered)[:, None].expand(n, c, h, w).contiguous()
