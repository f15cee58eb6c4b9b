"""Differentiable augmentation for GAN training on little data (Zhao et al., 2020, "DiffAugment").

A discriminator trained on a small set (the bundled digits' training split has about 1,250 images)
memorizes it: its loss on held-out real images climbs above ``ln 4`` while its training loss falls,
and the generator then chases the memorized details. DiffAugment draws a random transformation
``T`` and shows the discriminator ``T(x)`` for real **and** generated images, in the discriminator's
and in the generator's updates. ``T`` is differentiable, so the generator's gradient passes through
it; as both sides are transformed alike, matching ``T(G(z))`` to ``T(x)`` still asks ``G(z)`` to
match ``x`` (the transformations are not applied to the samples themselves).

Policies (names as in the paper's code; apply in the order given):

- ``"translation"``: shift each image by a whole number of pixels drawn uniformly in
  ``[-shift, shift]`` per axis (``shift = round(ratio · side)``, at least 1), filling with zeros;
- ``"cutout"``: zero one square of side ``round(ratio · side)`` at a uniformly drawn centre per image
  (clipped at the borders);
- ``"color"``: add a brightness offset ``U(−0.5, 0.5)`` and scale the contrast about each image's
  mean by ``U(0.5, 1.5)`` (per image; all channels alike).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deepnotes.core.checks import check_choice, check_float, check_tensor, check_type

POLICIES = ("translation", "cutout", "color")


def _uniform(n: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=generator, dtype=like.dtype).to(like.device)


def translate(x: torch.Tensor, ratio: float = 0.125, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x (Tensor[B, C, H, W])`` shifted per image by up to ``round(ratio · side)`` pixels, zero-filled."""
    b, _, h, w = x.shape
    sy, sx = max(1, round(ratio * h)), max(1, round(ratio * w))
    dy = torch.randint(-sy, sy + 1, (b, 1, 1), generator=generator).to(x.device)
    dx = torch.randint(-sx, sx + 1, (b, 1, 1), generator=generator).to(x.device)
    # output pixel (i, j) reads input pixel (i − dy, j − dx), which lies at (i − dy + sy, j − dx + sx) after padding
    rows = torch.arange(h, device=x.device)[None, :, None] - dy + sy  # (B, H, 1)
    cols = torch.arange(w, device=x.device)[None, None, :] - dx + sx  # (B, 1, W)
    padded = torch.nn.functional.pad(x, (sx, sx, sy, sy))
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x (Tensor[B, C, H, W])`` with one square of side ``round(ratio · side)`` zeroed per image."""
    b, _, h, w = x.shape
    ch, cw = max(1, round(ratio * h)), max(1, round(ratio * w))
    # the square's top-left corner, so that its centre is uniform over the image
    top = torch.randint(0, h, (b, 1, 1), generator=generator).to(x.device) - ch // 2
    left = torch.randint(0, w, (b, 1, 1), generator=generator).to(x.device) - cw // 2
    i = torch.arange(h, device=x.device)[None, :, None]
    j = torch.arange(w, device=x.device)[None, None, :]
    inside = (i >= top) & (i < top + ch) & (j >= left) & (j < left + cw)  # (B, H, W)
    return x * (~inside)[:, None].to(x.dtype)


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x (Tensor[B, C, H, W])`` with a random brightness offset and contrast factor per image."""
    b = x.shape[0]
    brightness = (_uniform(b, x, generator) - 0.5).view(b, 1, 1, 1)
    contrast = (_uniform(b, x, generator) + 0.5).view(b, 1, 1, 1)
    x = x + brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * contrast + mean


def diff_augment(
    x: torch.Tensor,
    policy: Sequence[str] = ("translation",),
    generator: torch.Generator | None = None,
    translation_ratio: float = 0.125,
    cutout_ratio: float = 0.5,
) -> torch.Tensor:
    """Apply the named transformations in order, each with fresh random draws per image.

    x (Tensor[B, C, H, W]) → the same shape; differentiable with respect to ``x``. An empty
    ``policy`` returns ``x`` unchanged.
    """
    check_tensor("x", x, ndim=4, floating=True)
    check_type("policy", policy, (list, tuple))
    for name in policy:
        check_choice("policy", name, POLICIES)
    translation_ratio = check_float("translation_ratio", translation_ratio, min=0.0, max=1.0)
    cutout_ratio = check_float("cutout_ratio", cutout_ratio, min=0.0, max=1.0)
    for name in policy:
        if name == "translation":
            x = translate(x, translation_ratio, generator)
        elif name == "cutout":
            x = cutout(x, cutout_ratio, generator)
        else:
            x = color(x, generator)
    return x
