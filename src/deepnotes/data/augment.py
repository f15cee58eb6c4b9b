"""Batched, seeded augmentation of image tensors ``(N, C, H, W)`` with values in [0, 1].

Every random choice is drawn per image from an explicit ``torch.Generator`` (the global one when
``None``), in one tensor op for the whole batch — no loop over images. The deterministic pieces
follow ``torchvision.transforms.v2.functional`` exactly (``hflip``, ``pad`` + ``crop``,
``adjust_brightness``, ``adjust_contrast``, ``adjust_saturation``; float images are clamped to
[0, 1]), and the tests compare each image with torchvision's result.

Unlike torchvision's ``ColorJitter``, :func:`color_jitter` applies brightness, contrast and
saturation in this fixed order (torchvision shuffles the order per call).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepnotes.core.checks import as_tensor, check_choice, check_float, check_int, check_tensor

# ITU-R 601-2 luma weights, the ones torchvision's rgb_to_grayscale uses
_LUMA = (0.2989, 0.587, 0.114)


def _images(x: torch.Tensor) -> torch.Tensor:
    check_tensor("x", x, ndim=4, floating=True)
    return x


def _factors(name: str, factor, n: int, like: torch.Tensor) -> torch.Tensor:
    """A scalar or one factor per image, as ``(N, 1, 1, 1)``."""
    f = as_tensor(name, factor, dtype=like.dtype).to(like.device)
    if f.dim() == 0:
        f = f.expand(n)
    if f.shape != (n,):
        raise ValueError(f"{name} must be a number or have shape ({n},), got {tuple(f.shape)}")
    if bool((f < 0).any()) or not bool(torch.isfinite(f).all()):
        raise ValueError(f"{name} must be finite and >= 0")
    return f.view(n, 1, 1, 1)


def _blend(a: torch.Tensor, b: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    return (ratio * a + (1.0 - ratio) * b).clamp(0.0, 1.0)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma of RGB images ``(N, 3, H, W)`` → ``(N, 1, H, W)``."""
    r, g, b = _images(x).unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror every image left-right."""
    return _images(x).flip(-1)


def random_hflip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image independently with probability ``p``."""
    p = check_float("p", p, min=0.0, max=1.0)
    x = _images(x)
    flip = torch.rand(len(x), generator=generator) < p
    return torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)


def adjust_brightness(x: torch.Tensor, factor) -> torch.Tensor:
    """``clamp(factor · x)``; ``factor`` a number or one per image."""
    x = _images(x)
    return _blend(x, torch.zeros_like(x), _factors("factor", factor, len(x), x))


def adjust_contrast(x: torch.Tensor, factor) -> torch.Tensor:
    """Blend each image with its mean grey level: ``clamp(f · x + (1 - f) · mean)``."""
    x = _images(x)
    gray = grayscale(x) if x.shape[1] == 3 else x
    mean = gray.mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(x, mean, _factors("factor", factor, len(x), x))


def adjust_saturation(x: torch.Tensor, factor) -> torch.Tensor:
    """Blend RGB images with their grey version (single-channel images are returned as they are)."""
    x = _images(x)
    f = _factors("factor", factor, len(x), x)
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"x must have 1 or 3 channels for saturation, got {x.shape[1]}")
    return _blend(x, grayscale(x), f)


def _uniform_factors(name: str, amount: float, n: int, generator) -> torch.Tensor | None:
    amount = check_float(name, amount, min=0.0)
    if amount == 0.0:
        return None
    lo, hi = max(0.0, 1.0 - amount), 1.0 + amount
    return lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)


def color_jitter(
    x: torch.Tensor,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    generator: torch.Generator | None = None,
    return_factors: bool = False,
):
    """Random brightness, contrast and saturation, each factor ``~ U[max(0, 1 - a), 1 + a]`` per image.

    Returns the images, and with ``return_factors`` also ``{"brightness": Tensor[N], ...}`` (the
    factors actually drawn; an amount of 0 draws nothing).
    """
    x = _images(x)
    n = len(x)
    factors = {}
    for name, amount, fn in (("brightness", brightness, adjust_brightness),
                             ("contrast", contrast, adjust_contrast),
                             ("saturation", saturation, adjust_saturation)):
        f = _uniform_factors(name, amount, n, generator)
        if f is not None:
            factors[name] = f
            x = fn(x, f.to(x.dtype))
    return (x, factors) if return_factors else x


def random_crop(
    x: torch.Tensor,
    size,
    padding: int = 0,
    padding_mode: str = "constant",
    fill: float = 0.0,
    generator: torch.Generator | None = None,
    return_offsets: bool = False,
):
    """Pad every image by ``padding`` then cut a ``size`` window at a random offset per image.

    Parameters
    ----------
    x : Tensor[N, C, H, W]
    size : int or (int, int)
        Output ``(h, w)``; must fit the padded image.
    padding : int
    padding_mode : {"constant", "reflect", "replicate"}
    fill : float
        The constant for ``padding_mode="constant"``.
    return_offsets : bool
        Also return ``(top, left)`` as ``LongTensor[N]`` each (in padded coordinates).

    Returns
    -------
    Tensor[N, C, h, w]
    """
    x = _images(x)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    h, w = check_int("size[0]", h, min=1), check_int("size[1]", w, min=1)
    padding = check_int("padding", padding, min=0)
    padding_mode = check_choice("padding_mode", padding_mode, ("constant", "reflect", "replicate"))
    if padding:
        kw = {"value": check_float("fill", fill)} if padding_mode == "constant" else {}
        x = F.pad(x, (padding,) * 4, mode=padding_mode, **kw)
    n, _, hp, wp = x.shape
    if h > hp or w > wp:
        raise ValueError(f"size ({h}, {w}) is larger than the padded image ({hp}, {wp})")
    top = torch.randint(0, hp - h + 1, (n,), generator=generator)
    left = torch.randint(0, wp - w + 1, (n,), generator=generator)
    rows = (top[:, None] + torch.arange(h)).to(x.device)  # (N, h)
    cols = (left[:, None] + torch.arange(w)).to(x.device)  # (N, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return (out, (top, left)) if return_offsets else out
