"""Pooling written out: max / average / overlapping pooling via unfold, max-unpooling with indices,
adaptive (bin) pooling, spatial pyramid pooling and global average pooling.

Overlapping pooling is ordinary pooling with ``stride < kernel_size`` (AlexNet's 3×3 windows with
stride 2). Spatial pyramid pooling max-pools the feature map into fixed grids (4×4, 2×2, 1×1 by
default) and concatenates them, so any input size gives the same output length.

Example
-------
>>> import torch
>>> spp = SpatialPyramidPooling(levels=(4, 2, 1))
>>> spp(torch.randn(2, 8, 13, 17)).shape
torch.Size([2, 168])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_choice, check_int, check_tensor, check_type
from deepnotes.nn.calculators import _pair


def _windows(input, kernel_size, stride, padding, fill):
    """Unfolded windows ``(N, C, Kh·Kw, Oh, Ow)`` of ``input`` padded with ``fill``."""
    check_tensor("input", input, ndim=4)
    kh, kw = _pair("kernel_size", kernel_size, min=1)
    sh, sw = _pair("stride", kernel_size if stride is None else stride, min=1)
    ph, pw = _pair("padding", padding, min=0)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"padding ({ph}, {pw}) must be at most half of kernel_size ({kh}, {kw})")
    n, c, h, w = input.shape
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ValueError(f"kernel_size ({kh}, {kw}) is larger than the padded input ({h + 2 * ph}, {w + 2 * pw})")
    padded = F.pad(input, (pw, pw, ph, ph), value=fill)
    win = padded.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, Oh, Ow, Kh, Kw), a view
    oh, ow = win.shape[2:4]
    return win.reshape(n, c, oh, ow, kh * kw).permute(0, 1, 4, 2, 3), (kh, kw, sh, sw, ph, pw)


def max_pool2d(
    input: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    return_indices: bool = False,
):
    """Max pooling over ``kernel_size`` windows every ``stride`` pixels (default: non-overlapping).

    Parameters
    ----------
    input : Tensor[N, C, H, W]
    kernel_size, stride, padding : int or (int, int)
        Padding is with ``-inf`` and at most half the kernel (as in torch).
    return_indices : bool
        Also return, for each output, the flat index ``h·W + w`` of its maximum in the input plane
        (the format :func:`max_unpool2d` and ``F.max_unpool2d`` take).

    Returns
    -------
    Tensor[N, C, H_out, W_out] (and LongTensor of the same shape)
        Ties go to the first maximum in row-major window order.
    """
    check_tensor("input", input, ndim=4, floating=True)
    win, (kh, kw, sh, sw, ph, pw) = _windows(input, kernel_size, stride, padding, float("-inf"))
    out, arg = win.max(dim=2)
    if not return_indices:
        return out
    h, w = input.shape[-2:]
    # map (output cell, position in window) back to the input plane
    oh, ow = out.shape[-2:]
    base_r = (torch.arange(oh, device=input.device) * sh - ph).view(oh, 1)
    base_c = (torch.arange(ow, device=input.device) * sw - pw).view(1, ow)
    rows = base_r + torch.div(arg, kw, rounding_mode="floor")
    cols = base_c + arg % kw
    return out, rows * w + cols


def avg_pool2d(
    input: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    count_include_pad: bool = True,
) -> torch.Tensor:
    """Average pooling; with ``count_include_pad=False`` zero padding is left out of the mean.

    input : Tensor[N, C, H, W] → Tensor[N, C, H_out, W_out]
    """
    check_tensor("input", input, ndim=4, floating=True)
    win, _ = _windows(input, kernel_size, stride, padding, 0.0)
    if count_include_pad:
        return win.mean(dim=2)
    ones = torch.ones_like(input[:1, :1])
    cnt, _ = _windows(ones, kernel_size, stride, padding, 0.0)
    return win.sum(dim=2) / cnt.sum(dim=2)


def max_unpool2d(
    input: torch.Tensor,
    indices: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    output_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Inverse of max pooling: put each value back where its maximum came from, zeros elsewhere.

    Parameters
    ----------
    input : Tensor[N, C, H, W]
    indices : LongTensor[N, C, H, W]
        Flat indices into the output plane, as returned by :func:`max_pool2d`.
    output_size : (int, int), optional
        Default ``(H − 1)·S − 2·P + K``.

    Returns
    -------
    Tensor[N, C, H_out, W_out]
    """
    check_tensor("input", input, ndim=4, floating=True)
    check_tensor("indices", indices, ndim=4)
    if indices.shape != input.shape or indices.dtype != torch.int64:
        raise ValueError(f"indices must be an int64 tensor of shape {tuple(input.shape)}")
    kh, kw = _pair("kernel_size", kernel_size, min=1)
    sh, sw = _pair("stride", kernel_size if stride is None else stride, min=1)
    ph, pw = _pair("padding", padding, min=0)
    n, c, h, w = input.shape
    if output_size is None:
        oh, ow = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
    else:
        oh, ow = _pair("output_size", tuple(output_size)[-2:], min=1)
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= oh * ow):
        raise ValueError(f"indices must lie in [0, {oh * ow}) for output_size ({oh}, {ow})")
    out = input.new_zeros(n, c, oh * ow)
    out = out.scatter(2, indices.reshape(n, c, -1), input.reshape(n, c, -1))
    return out.view(n, c, oh, ow)


def _bin_masks(size: int, bins: int, device) -> torch.Tensor:
    """Boolean ``(bins, size)``: bin ``i`` covers ``[floor(i·size/bins), ceil((i+1)·size/bins))``."""
    i = torch.arange(bins, device=device)
    start = torch.div(i * size, bins, rounding_mode="floor")
    end = torch.div((i + 1) * size + bins - 1, bins, rounding_mode="floor")
    pos = torch.arange(size, device=device)
    return (pos >= start[:, None]) & (pos < end[:, None])


def adaptive_pool2d(input: torch.Tensor, output_size: int | tuple[int, int], mode: str = "max") -> torch.Tensor:
    """Adaptive max/avg pooling to a fixed grid, with torch's bin edges (bins may overlap).

    input : Tensor[N, C, H, W] → Tensor[N, C, out_h, out_w]. Reference: ``F.adaptive_max_pool2d``,
    ``F.adaptive_avg_pool2d``.
    """
    check_tensor("input", input, ndim=4, floating=True)
    check_choice("mode", mode, ("max", "avg"))
    bh, bw = _pair("output_size", output_size, min=1)
    h, w = input.shape[-2:]
    mh, mw = _bin_masks(h, bh, input.device), _bin_masks(w, bw, input.device)
    if mode == "avg":
        ah = mh.to(input.dtype) / mh.sum(1, keepdim=True)
        aw = mw.to(input.dtype) / mw.sum(1, keepdim=True)
        return ah @ input @ aw.T  # separable box average: A_h · X · A_wᵀ
    neg = torch.tensor(float("-inf"), dtype=input.dtype, device=input.device)
    # max over each column bin, then over each row bin (max is separable over a rectangle)
    x = torch.where(mw, input.unsqueeze(-2), neg).amax(-1)  # (N, C, H, bw)
    x = torch.where(mh[:, :, None], x.unsqueeze(-3), neg).amax(-2)  # (N, C, bh, bw)
    return x


def spatial_pyramid_pool(input: torch.Tensor, levels=(4, 2, 1), mode: str = "max") -> torch.Tensor:
    """Concatenate adaptive pooling over ``levels`` grids: output ``(N, C·Σ l²)`` for any ``H, W``."""
    check_type("levels", levels, (tuple, list))
    if not levels:
        raise ValueError("levels must not be empty")
    lv = [check_int(f"levels[{i}]", v, min=1) for i, v in enumerate(levels)]
    return torch.cat([adaptive_pool2d(input, level, mode).flatten(1) for level in lv], dim=1)


def global_avg_pool2d(input: torch.Tensor) -> torch.Tensor:
    """Mean over the spatial axes: ``Tensor[N, C, H, W] → Tensor[N, C]``."""
    check_tensor("input", input, ndim=4, floating=True, nonempty=True)
    return input.mean(dim=(2, 3))


class SpatialPyramidPooling(nn.Module):
    """Module form of :func:`spatial_pyramid_pool` (SPP-net): fixed-length output for any input size."""

    def __init__(self, levels=(4, 2, 1), mode: str = "max"):
        super().__init__()
        check_type("levels", levels, (tuple, list))
        self.levels = tuple(check_int(f"levels[{i}]", v, min=1) for i, v in enumerate(levels))
        self.mode = check_choice("mode", mode, ("max", "avg"))

    def output_size(self, channels: int) -> int:
        return channels * sum(level * level for level in self.levels)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return spatial_pyramid_pool(input, self.levels, self.mode)


class GlobalAvgPool2d(nn.Module):
    """Module form of :func:`global_avg_pool2d`."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return global_avg_pool2d(input)


class MaxPool2d(nn.Module):
    """Module form of :func:`max_pool2d` (overlapping when ``stride < kernel_size``)."""

    def __init__(self, kernel_size, stride=None, padding=0, return_indices: bool = False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.return_indices = bool(return_indices)

    def forward(self, input):
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.return_indices)


class MaxUnpool2d(nn.Module):
    """Module form of :func:`max_unpool2d`."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, input, indices, output_size=None):
        return max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)
