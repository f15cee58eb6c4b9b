"""Convolution arithmetic: output sizes, parameter counts, receptive fields, SAME/VALID padding.

These are the hand calculations of a CNN layer table, written once so that the lab, the models
and the users compute them the same way. Every formula matches what ``torch.nn.Conv2d`` and
``torch.nn.MaxPool2d`` actually produce (tested against them).

Example
-------
>>> conv_output_size(227, kernel_size=11, stride=4)
55
>>> conv_params(3, 96, kernel_size=11)
34944
>>> receptive_field([(3, 1), (3, 1)])["size"]
5
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from deepnotes.core.checks import check_choice, check_int, check_type


def _pair(name: str, value: Any, *, min: int = 0) -> tuple[int, int]:
    """An int or a pair of ints, returned as ``(height, width)``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (check_int(f"{name}[0]", value[0], min=min), check_int(f"{name}[1]", value[1], min=min))
    v = check_int(name, value, min=min)
    return (v, v)


def conv_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of a convolution or pooling along one axis.

    ``out = floor((size + 2·padding − dilation·(kernel_size − 1) − 1) / stride) + 1``; with
    ``ceil_mode`` the division rounds up, but (as in torch) the last window must start inside the
    input or the left padding.

    Parameters
    ----------
    size, kernel_size, stride, padding, dilation : int
        Input length ``W``, kernel ``K``, stride ``S``, padding ``P`` on each side, dilation.
    ceil_mode : bool
        Round up instead of down (pooling only).

    Returns
    -------
    int
        The output length.

    Raises
    ------
    ValueError
        If the (dilated) kernel is larger than the padded input (the output would be empty).
    """
    size = check_int("size", size, min=1)
    kernel_size = check_int("kernel_size", kernel_size, min=1)
    stride = check_int("stride", stride, min=1)
    padding = check_int("padding", padding, min=0)
    dilation = check_int("dilation", dilation, min=1)
    span = dilation * (kernel_size - 1) + 1
    if span > size + 2 * padding:
        raise ValueError(
            f"kernel_size {kernel_size} (dilated span {span}) is larger than the padded input "
            f"{size} + 2·{padding} = {size + 2 * padding}"
        )
    num = size + 2 * padding - span
    if not ceil_mode:
        return num // stride + 1
    out = -(-num // stride) + 1
    # torch drops a last window that would start entirely in the right padding
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def conv_params(
    in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], groups: int = 1, bias: bool = True
) -> int:
    """Number of learnable parameters of a 2-D convolution: ``K_h·K_w·(C_in/groups)·C_out (+ C_out)``."""
    cin = check_int("in_channels", in_channels, min=1)
    cout = check_int("out_channels", out_channels, min=1)
    groups = check_int("groups", groups, min=1)
    kh, kw = _pair("kernel_size", kernel_size, min=1)
    if cin % groups or cout % groups:
        raise ValueError(f"groups ({groups}) must divide in_channels ({cin}) and out_channels ({cout})")
    return kh * kw * (cin // groups) * cout + (cout if bias else 0)


def same_padding(kernel_size: int, dilation: int = 1) -> tuple[int, int]:
    """(left, right) padding that keeps the size at stride 1 ("SAME"); extra goes right as in TensorFlow."""
    kernel_size = check_int("kernel_size", kernel_size, min=1)
    dilation = check_int("dilation", dilation, min=1)
    total = dilation * (kernel_size - 1)
    return total // 2, total - total // 2


def padding_for(mode: str, kernel_size: int, dilation: int = 1) -> tuple[int, int]:
    """(left, right) padding for ``"same"`` or ``"valid"`` (no padding) at stride 1."""
    check_choice("mode", mode, ("same", "valid"))
    if mode == "valid":
        check_int("kernel_size", kernel_size, min=1)
        return 0, 0
    return same_padding(kernel_size, dilation)


def receptive_field(layers: Sequence[Any]) -> dict[str, Any]:
    """Receptive field of a stack of layers, from the input to the last layer.

    Each layer is ``(kernel_size, stride)``, ``(kernel_size, stride, dilation)``, a dict with those
    keys, or a ``torch.nn`` ``Conv2d``/``MaxPool2d``/``AvgPool2d`` (other modules — activations,
    norms — do not change it and are skipped).

    Recurrence: with ``j`` the distance in input pixels between adjacent outputs ("jump"),
    ``r ← r + (k_eff − 1)·j`` and ``j ← j·s`` where ``k_eff = d·(k − 1) + 1``.

    Returns
    -------
    dict
        ``size`` (receptive field of one output unit, in input pixels), ``jump`` (total stride) and
        ``per_layer`` (list of ``(size, jump)`` after each counted layer).
    """
    check_type("layers", layers, (list, tuple))
    r, j = 1, 1
    per_layer: list[tuple[int, int]] = []
    for i, layer in enumerate(layers):
        spec = _layer_spec(f"layers[{i}]", layer)
        if spec is None:
            continue
        k, s, d = spec
        r += (d * (k - 1)) * j
        j *= s
        per_layer.append((r, j))
    return {"size": r, "jump": j, "per_layer": per_layer}


def _layer_spec(name: str, layer: Any) -> tuple[int, int, int] | None:
    from torch import nn

    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k = _pair(name, layer.kernel_size)[0]
        s = _pair(name, layer.stride if layer.stride is not None else k)[0]
        d = _pair(name, getattr(layer, "dilation", 1))[0]
        return k, s, d
    if isinstance(layer, nn.Module):
        return None
    if isinstance(layer, dict):
        return (
            check_int(f"{name}['kernel_size']", layer.get("kernel_size"), min=1),
            check_int(f"{name}['stride']", layer.get("stride", 1), min=1),
            check_int(f"{name}['dilation']", layer.get("dilation", 1), min=1),
        )
    if isinstance(layer, (tuple, list)) and len(layer) in (2, 3):
        k = check_int(f"{name}[0]", layer[0], min=1)
        s = check_int(f"{name}[1]", layer[1], min=1)
        d = check_int(f"{name}[2]", layer[2], min=1) if len(layer) == 3 else 1
        return k, s, d
    raise TypeError(f"{name} must be (kernel_size, stride[, dilation]), a dict or a conv/pool module")


def conv_layer_table(
    in_shape: tuple[int, int, int], layers: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A layer table: output shape, parameter count and receptive field of each layer.

    ``layers`` are dicts with ``type`` (``"conv"`` or ``"pool"``), ``kernel_size``, ``stride``,
    ``padding`` and, for convs, ``out_channels`` (optional ``dilation``, ``groups``, ``bias``).
    ``in_shape`` is ``(C, H, W)``.
    """
    check_type("in_shape", in_shape, (tuple, list))
    if len(in_shape) != 3:
        raise ValueError(f"in_shape must be (C, H, W), got {tuple(in_shape)}")
    c, h, w = (check_int(f"in_shape[{i}]", v, min=1) for i, v in enumerate(in_shape))
    rows, r, j = [], 1, 1
    for i, spec in enumerate(layers):
        check_type(f"layers[{i}]", spec, dict)
        kind = check_choice(f"layers[{i}]['type']", spec.get("type"), ("conv", "pool"))
        k = spec["kernel_size"]
        s = spec.get("stride", 1 if kind == "conv" else k)
        p = spec.get("padding", 0)
        d = spec.get("dilation", 1)
        h = conv_output_size(h, k, s, p, d)
        w = conv_output_size(w, k, s, p, d)
        params = 0
        if kind == "conv":
            out = spec["out_channels"]
            params = conv_params(c, out, k, spec.get("groups", 1), spec.get("bias", True))
            c = out
        r += d * (k - 1) * j
        j *= s
        rows.append({"layer": spec.get("name", f"{kind}{i + 1}"), "out_shape": (c, h, w),
                     "params": params, "receptive_field": r, "jump": j})
    return rows


def min_input_size(layers: Sequence[Any]) -> int:
    """Smallest input length for which every layer of ``layers`` has a non-empty output.

    ``layers`` are ``(kernel_size, stride, padding[, dilation])`` tuples applied in order.
    """
    check_type("layers", layers, (list, tuple))
    # walk backwards: the smallest input giving an output of length m is (m − 1)·s + span − 2p
    m = 1
    for i, spec in reversed(list(enumerate(layers))):
        k, s, p = (check_int(f"layers[{i}][{t}]", spec[t], min=0) for t in range(3))
        d = spec[3] if len(spec) > 3 else 1
        span = d * (k - 1) + 1
        m = max(1, (m - 1) * s + span - 2 * p)
    return int(math.ceil(m))
