"""Weight initialization schemes, twins of ``torch.nn.init`` (same fans, gains and draws).

Schemes of the notes, from the naive to the variance-preserving:

* ``zeros_`` / ``constant_`` -- every unit of a layer computes the same thing (symmetry, claim 2c);
* ``small_random_`` -- ``0.01 * N(0, 1)``: activations shrink layer after layer (claim 2a);
* ``large_random_`` -- ``N(0, 1)``: tanh units saturate (claim 2b);
* Xavier/Glorot -- ``Var(w) = gain**2 * 2 / (fan_in + fan_out)``;
* He/Kaiming -- ``Var(w) = gain**2 / fan`` with ``fan`` = fan_in (forward) or fan_out (backward).

A uniform draw on ``[-b, b]`` has variance ``b**2 / 3``, hence ``b = sqrt(3) * std``. With the same
``generator`` our draws are the very numbers ``torch.nn.init`` draws.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_float, check_tensor

NONLINEARITIES = (
    "linear", "identity", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "sigmoid", "tanh", "relu", "leaky_relu", "selu",
)  # fmt: skip


def calculate_fan_in_and_fan_out(tensor: torch.Tensor) -> tuple[int, int]:
    """Fans of a weight ``(out_features, in_features, *kernel)``.

    ``fan_in = in_features * prod(kernel)``, ``fan_out = out_features * prod(kernel)``.
    Raises ``ValueError`` for fewer than 2 dimensions (a bias has no fan).
    """
    check_tensor("tensor", tensor)
    if tensor.dim() < 2:
        raise ValueError(f"tensor must have at least 2 dimensions to have fans, got shape {tuple(tensor.shape)}")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain that keeps the activation variance of ``nonlinearity`` at 1 (torch's table).

    linear, conv*, sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky_relu: sqrt(2 / (1 + slope**2))
    with ``param`` the negative slope (default 0.01); selu: 3/4.
    """
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else check_float("param", param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    return 1.0


def _fan(tensor: torch.Tensor, mode: str) -> int:
    check_choice("mode", mode, ("fan_in", "fan_out"))
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def zeros_(tensor: torch.Tensor) -> torch.Tensor:
    """Fill with 0 in place."""
    return constant_(tensor, 0.0)


def constant_(tensor: torch.Tensor, val: float) -> torch.Tensor:
    """Fill with ``val`` in place."""
    check_tensor("tensor", tensor)
    val = check_float("val", val)
    with torch.no_grad():
        return tensor.fill_(val)


def _normal(tensor: torch.Tensor, std: float, generator) -> torch.Tensor:
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def _uniform(tensor: torch.Tensor, bound: float, generator) -> torch.Tensor:
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def small_random_(tensor: torch.Tensor, scale: float = 0.01, generator=None) -> torch.Tensor:
    """``scale * N(0, 1)`` in place (the notes' "small random numbers", scale 0.01)."""
    check_tensor("tensor", tensor)
    return _normal(tensor, check_float("scale", scale, min=0.0), generator)


def large_random_(tensor: torch.Tensor, generator=None) -> torch.Tensor:
    """``N(0, 1)`` in place (the notes' "large random numbers")."""
    check_tensor("tensor", tensor)
    return _normal(tensor, 1.0, generator)


def xavier_uniform_(tensor: torch.Tensor, gain: float = 1.0, generator=None) -> torch.Tensor:
    """U(-b, b) with ``b = gain * sqrt(6 / (fan_in + fan_out))``, in place."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if tensor.numel() == 0:
        return tensor  # nothing to draw (torch warns and returns too)
    std = check_float("gain", gain, min=0.0) * math.sqrt(2.0 / (fan_in + fan_out))
    return _uniform(tensor, math.sqrt(3.0) * std, generator)


def xavier_normal_(tensor: torch.Tensor, gain: float = 1.0, generator=None) -> torch.Tensor:
    """N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``, in place."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if tensor.numel() == 0:
        return tensor  # nothing to draw (torch warns and returns too)
    std = check_float("gain", gain, min=0.0) * math.sqrt(2.0 / (fan_in + fan_out))
    return _normal(tensor, std, generator)


def kaiming_uniform_(
    tensor: torch.Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator=None,
) -> torch.Tensor:
    """U(-b, b) with ``b = sqrt(3) * gain / sqrt(fan)``, in place (He et al. 2015).

    ``a`` is the negative slope used for the gain of ``leaky_relu`` (``a=0`` gives ReLU's sqrt 2).
    """
    fan = _fan(tensor, mode)
    if tensor.numel() == 0:
        return tensor  # nothing to draw (torch warns and returns too)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _uniform(tensor, math.sqrt(3.0) * std, generator)


def kaiming_normal_(
    tensor: torch.Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator=None,
) -> torch.Tensor:
    """N(0, std**2) with ``std = gain / sqrt(fan)``, in place (He et al. 2015)."""
    fan = _fan(tensor, mode)
    if tensor.numel() == 0:
        return tensor  # nothing to draw (torch warns and returns too)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _normal(tensor, std, generator)


SCHEMES = {
    "zeros": zeros_,
    "constant": constant_,
    "small_random": small_random_,
    "large_random": large_random_,
    "xavier_uniform": xavier_uniform_,
    "xavier_normal": xavier_normal_,
    "he_uniform": kaiming_uniform_,
    "he_normal": kaiming_normal_,
}


def init_module(
    module: nn.Module, scheme: str, *, bias: float = 0.0, generator=None, **kwargs: Any
) -> nn.Module:
    """Initialize every weight (a parameter named ``weight`` with 2+ dimensions) of ``module``.

    Parameters
    ----------
    module : nn.Module
    scheme : str
        One of :data:`SCHEMES` (``"he_*"`` are the Kaiming functions).
    bias : float, default 0
        Value given to every ``bias`` parameter.
    generator : torch.Generator, optional
        Source of the random draws, layer after layer in ``module.modules()`` order.
    **kwargs
        Passed to the scheme (``gain``, ``a``, ``mode``, ``nonlinearity``, ``val``, ``scale``);
        for Xavier, ``nonlinearity=`` is turned into ``gain=calculate_gain(nonlinearity)``.

    Returns
    -------
    nn.Module
        ``module`` itself, initialized in place.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
    check_choice("scheme", scheme, SCHEMES)
    if scheme.startswith("xavier") and "nonlinearity" in kwargs:
        kwargs["gain"] = calculate_gain(kwargs.pop("nonlinearity"), kwargs.pop("param", None))
    fn = SCHEMES[scheme]
    random = scheme not in ("zeros", "constant")
    for m in module.modules():
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.dim() >= 2:
            fn(w, generator=generator, **kwargs) if random else fn(w, **kwargs)
        b = getattr(m, "bias", None)
        if isinstance(b, torch.Tensor):
            constant_(b, bias)
    return module
