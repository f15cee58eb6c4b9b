"""Toy distributions for GANs: a 2-D ring of Gaussians and the modes a sample set covers."""

from __future__ import annotations

import math

import torch

from deepnotes.core.checks import check_float, check_int, check_probability, check_tensor


def ring_centers(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """``modes`` points evenly spaced on a circle of ``radius``: ``Tensor[modes, 2]`` (float64)."""
    modes = check_int("modes", modes, min=1)
    radius = check_float("radius", radius, min=0.0, min_inclusive=False)
    angle = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return radius * torch.stack([angle.cos(), angle.sin()], 1)


def ring_of_gaussians(
    n: int, modes: int = 8, radius: float = 2.0, std: float = 0.05, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of an equal-weight mixture of isotropic Gaussians on a ring.

    Returns points ``Tensor[n, 2]`` (float64) and their component indices ``Tensor[n]``.
    """
    n = check_int("n", n, min=1)
    std = check_float("std", std, min=0.0)
    centers = ring_centers(modes, radius)
    comp = torch.randint(len(centers), (n,), generator=generator)
    return centers[comp] + std * torch.randn(n, 2, generator=generator, dtype=torch.float64), comp


def modes_covered(
    samples: torch.Tensor, centers: torch.Tensor, std: float, min_share: float = 0.02, k: float = 3.0
) -> tuple[int, torch.Tensor, float]:
    """How many mixture components the samples cover.

    A sample belongs to a component when it lies within ``k · std`` of its centre; a component is
    covered when at least ``min_share`` of all samples belong to it. Returns ``(covered, shares
    Tensor[modes], high_quality_share)`` where the last is the fraction of samples near any centre.
    """
    check_tensor("samples", samples, ndim=2, floating=True, nonempty=True)
    check_tensor("centers", centers, ndim=2, floating=True, nonempty=True)
    if samples.shape[1] != centers.shape[1]:
        raise ValueError(f"samples and centers must share their dimension, got {samples.shape[1]} and {centers.shape[1]}")
    std = check_float("std", std, min=0.0, min_inclusive=False)
    min_share = check_probability("min_share", min_share)
    dist = torch.cdist(samples.double(), centers.double())
    near, which = dist.min(1)
    close = near <= check_float("k", k, min=0.0) * std
    shares = torch.bincount(which[close], minlength=len(centers)).double() / len(samples)
    return int((shares >= min_share).sum()), shares, float(close.double().mean())
