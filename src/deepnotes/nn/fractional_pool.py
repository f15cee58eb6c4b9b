"""Fractional max pooling (Graham 2014): pooling regions of pseudo-random, overlapping offsets.

The output size is not restricted to ``input / k``; the start of each pooling window along an axis
of length ``n_in`` with ``n_out`` outputs and window ``k`` is, for one random ``u ∈ [0, 1)`` per
(sample, channel, axis)::

    α = (n_in - k) / (n_out - 1)
    start_i = ⌊(i + u) α⌋ - ⌊u α⌋          (i < n_out - 1),     start_{n_out - 1} = n_in - k

so consecutive starts differ by ⌊α⌋ or ⌈α⌉ and the last window touches the border. The random
draws are ``rand(N, C, 2)`` ordered (width, height) as in ``torch.nn.FractionalMaxPool2d``; passing
the same ``_random_samples`` (or the same seed) gives the same output and indices as torch.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor, check_type


def _pair(name: str, value, check):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be one number or a pair, got {value!r}")
        return tuple(check(f"{name}[{i}]", v) for i, v in enumerate(value))
    v = check(name, value)
    return (v, v)


def fractional_intervals(samples: torch.Tensor, n_in: int, n_out: int, k: int) -> torch.Tensor:
    """Window starts ``(*samples.shape, n_out)`` for random ``samples`` in [0, 1)."""
    i = torch.arange(n_out, device=samples.device, dtype=samples.dtype)
    u = samples.unsqueeze(-1)
    if n_out > 1:
        alpha = torch.tensor((n_in - k) / (n_out - 1), dtype=samples.dtype)
        # int() in the reference truncates toward zero; both terms are >= 0 so floor is the same
        starts = (torch.floor((i + u) * alpha) - torch.floor(u * alpha)).long()
    else:
        starts = torch.zeros(*u.shape[:-1], 1, dtype=torch.long, device=samples.device)
    starts[..., -1] = n_in - k
    return starts


def fractional_max_pool2d(
    input: torch.Tensor,
    kernel_size,
    output_size=None,
    output_ratio=None,
    return_indices: bool = False,
    _random_samples: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
):
    """Fractional max pooling of ``input (N, C, H, W)`` or ``(C, H, W)``.

    Parameters
    ----------
    kernel_size : int or (int, int)
    output_size : int or (int, int), optional
    output_ratio : float or (float, float) in (0, 1), optional
        Exactly one of ``output_size`` and ``output_ratio``; the size is ``int(in * ratio)``.
    return_indices : bool
        Also return the flat index ``h * W + w`` of each maximum (for unpooling).
    _random_samples : Tensor[N, C, 2], optional
        The ``u`` draws (width, height); drawn from ``generator`` when omitted.

    Returns
    -------
    Tensor[N, C, oH, oW] (and LongTensor[N, C, oH, oW] indices)
    """
    check_tensor("input", input, ndim=(3, 4), floating=True)
    unbatched = input.dim() == 3
    x = input.unsqueeze(0) if unbatched else input
    n, c, h, w = x.shape
    kh, kw = _pair("kernel_size", kernel_size, lambda nm, v: check_int(nm, v, min=1))
    if (output_size is None) == (output_ratio is None):
        raise ValueError("exactly one of output_size and output_ratio must be given")
    if output_size is not None:
        oh, ow = _pair("output_size", output_size, lambda nm, v: check_int(nm, v, min=1))
    else:
        rh, rw = _pair("output_ratio", output_ratio,
                       lambda nm, v: check_float(nm, v, min=0.0, max=1.0, min_inclusive=False, max_inclusive=False))
        oh, ow = int(h * rh), int(w * rw)
    if oh + kh - 1 > h or ow + kw - 1 > w or oh < 1 or ow < 1:
        raise ValueError(
            f"output_size ({oh}, {ow}) with kernel_size ({kh}, {kw}) does not fit input ({h}, {w}): "
            "need output + kernel - 1 <= input"
        )
    if _random_samples is None:
        _random_samples = torch.rand(n, c, 2, dtype=x.dtype, device=x.device, generator=generator)
    else:
        check_tensor("_random_samples", _random_samples, ndim=3, floating=True)
        if tuple(_random_samples.shape) != (n, c, 2):
            raise ValueError(f"_random_samples must have shape ({n}, {c}, 2), got {tuple(_random_samples.shape)}")
    rows = fractional_intervals(_random_samples[..., 1], h, oh, kh)  # (N, C, oH)
    cols = fractional_intervals(_random_samples[..., 0], w, ow, kw)  # (N, C, oW)
    rows = rows[..., :, None] + torch.arange(kh, device=x.device)  # (N, C, oH, kh)
    cols = cols[..., :, None] + torch.arange(kw, device=x.device)  # (N, C, oW, kw)
    # flat index of every window element: (N, C, oH, oW, kh, kw)
    flat = rows[:, :, :, None, :, None] * w + cols[:, :, None, :, None, :]
    flat = flat.reshape(n, c, oh, ow, kh * kw)
    values = x.reshape(n, c, h * w).gather(2, flat.reshape(n, c, -1)).reshape(n, c, oh, ow, kh * kw)
    out, arg = values.max(-1)
    idx = flat.gather(-1, arg.unsqueeze(-1)).squeeze(-1)
    if unbatched:
        out, idx = out.squeeze(0), idx.squeeze(0)
    return (out, idx) if return_indices else out


class FractionalMaxPool2d(nn.Module):
    """Module form of :func:`fractional_max_pool2d` (``torch.nn.FractionalMaxPool2d``'s arguments)."""

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices: bool = False,
                 _random_samples: torch.Tensor | None = None, generator: torch.Generator | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.output_size = output_size
        self.output_ratio = output_ratio
        self.return_indices = check_type("return_indices", return_indices, bool)
        if (output_size is None) == (output_ratio is None):
            raise ValueError("exactly one of output_size and output_ratio must be given")
        self._random_samples = _random_samples  # a plain attribute, as in torch (not in state_dict)
        self.generator = generator

    def forward(self, input: torch.Tensor):
        return fractional_max_pool2d(input, self.kernel_size, self.output_size, self.output_ratio,
                                     self.return_indices, self._random_samples, self.generator)
