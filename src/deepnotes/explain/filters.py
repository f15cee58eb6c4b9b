"""First-layer filters as images: each kernel of the first convolution drawn at its own size.

The first layer's kernels live in pixel space (``C_in`` channels of ``k × k``), so each can be
shown as a small grey (one channel) or colour (three channels) image; in trained networks they
look like oriented edges, bars and colour blobs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_tensor, check_type
from deepnotes.explain._model import first_conv


def first_layer_filters(model: nn.Module) -> torch.Tensor:
    """The weights ``(C_out, C_in, k_h, k_w)`` of the model's first ``nn.Conv2d`` (a detached copy)."""
    check_type("model", model, nn.Module)
    return first_conv(model).weight.detach().clone()


def normalize_filters(weight: torch.Tensor) -> torch.Tensor:
    """Each filter min–max scaled to ``[0, 1]`` on its own (a constant filter becomes 0.5)."""
    check_tensor("weight", weight, ndim=4, floating=True, finite=True)
    flat = weight.flatten(1)
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    span = hi - lo
    scaled = torch.where(span > 0, (flat - lo) / span.clamp(min=torch.finfo(flat.dtype).tiny), torch.full_like(flat, 0.5))
    return scaled.reshape(weight.shape)


def filter_grid(weight: torch.Tensor, ncols: int | None = None, padding: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """Tile normalized filters into one image ``(C_in, rows·(k_h + p) + p, cols·(k_w + p) + p)``.

    Parameters
    ----------
    weight : Tensor[C_out, C_in, k_h, k_w]
        Conv weights; each filter is min–max scaled on its own (:func:`normalize_filters`).
    ncols : int, optional
        Filters per row (default ``ceil(sqrt(C_out))``).
    padding : int
        Pixels of ``pad_value`` between and around the filters.

    Returns
    -------
    Tensor[C_in, H, W]
        Filter ``i`` sits at row ``i // ncols``, column ``i % ncols``; empty cells are ``pad_value``.
    """
    w = normalize_filters(weight)
    n, c, kh, kw = w.shape
    ncols = math.ceil(math.sqrt(n)) if ncols is None else check_int("ncols", ncols, min=1)
    padding = check_int("padding", padding, min=0)
    nrows = math.ceil(n / ncols)
    cells = torch.full((nrows * ncols, c, kh + padding, kw + padding), float(pad_value), dtype=w.dtype)
    cells[:n, :, :kh, :kw] = w
    # (rows, cols, C, kh+p, kw+p) → (C, rows·(kh+p), cols·(kw+p)), then the leading border
    grid = cells.reshape(nrows, ncols, c, kh + padding, kw + padding).permute(2, 0, 3, 1, 4)
    grid = grid.reshape(c, nrows * (kh + padding), ncols * (kw + padding))
    return torch.nn.functional.pad(grid, (padding, 0, padding, 0), value=float(pad_value))
