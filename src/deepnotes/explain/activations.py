"""Activation maps of a layer and the image patches that excite a unit most.

A conv layer's output for one image is a volume ``(K, h, w)``; each channel ``k`` is an activation
map (one filter's response at every position, all positions sharing the filter's weights).
The *maximally activating patches* of channel ``k`` are the input regions seen by the positions
where that channel responds most strongly over a set of images; the region a position sees is
its receptive field, computed from the geometry (kernel, stride, padding, dilation) of the
convolutions and poolings that run before the layer:

``jump_l = jump_{l−1}·s_l``,  ``size_l = size_{l−1} + d_l(k_l − 1)·jump_{l−1}``,
``start_l = start_{l−1} − p_l·jump_{l−1}``;

position ``i`` of the layer sees input rows ``[start + i·jump, start + i·jump + size)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_int
from deepnotes.explain._model import check_images, inspecting, resolve_layer
from deepnotes.nn.calculators import _pair, receptive_field

_GEOMETRY = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
_GLOBAL = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)  # their output depends on the input size


@torch.no_grad()
def activation_maps(model: nn.Module, layer: str | nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Output ``(N, K, h, w)`` of ``layer`` (a name from ``model.named_modules()``) for the batch ``x``."""
    check_images(model, x)
    name, module = resolve_layer(model, layer)
    seen: list[torch.Tensor] = []
    with inspecting(model) as hooks:
        hooks.forward(module, lambda m, i, out: seen.append(out.detach().clone()))
        model(x)
    if not seen:
        raise ValueError(f"layer {name!r} was not used in the model's forward pass")
    out = seen[-1]
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise ValueError(f"layer {name!r} must output activation maps (N, K, h, w), got {tuple(out.shape)}")
    return out


@dataclass(frozen=True)
class Geometry:
    """Receptive field of one position of a layer: ``size`` pixels, ``jump`` between positions,
    ``start`` (input coordinate of position 0's first pixel; negative inside the padding)."""

    size: int
    jump: int
    start: int
    layers: tuple[str, ...]

    def span(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[first, last + 1)`` input coordinates seen by the positions ``index`` (unclipped)."""
        first = self.start + index * self.jump
        return first, first + self.size


def _padding(name: str, module: nn.Module, k: int, d: int) -> int:
    p = module.padding
    if p == "valid":
        return 0
    if p == "same":  # torch puts the odd pixel of 'same' padding on the right
        return d * (k - 1) // 2
    return _pair(f"{name}.padding", p)[0]


def layer_geometry(model: nn.Module, layer: str | nn.Module, x: torch.Tensor) -> Geometry:
    """Receptive field of ``layer``'s positions from the conv/pool modules run before it.

    The modules are taken in the order they run on ``x``, so the model must be a chain up to the
    layer (no parallel branches before it: a skip connection would be counted in series).
    Kernels, strides, paddings and dilations must be square; a layer after an adaptive pooling
    raises ``ValueError`` (its field depends on the input size).
    """
    check_images(model, x)
    target_name, target = resolve_layer(model, layer)
    order: list[tuple[str, nn.Module]] = []
    done = []
    with inspecting(model) as hooks, torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, _GEOMETRY + _GLOBAL):  # in the order they run, up to and including the layer
                hooks.forward(m, lambda mod, i, o, name=name: None if done else order.append((name, mod)))
        hooks.forward(target, lambda mod, i, o: done.append(True))
        model(x[:1])
    if not done:
        raise ValueError(f"layer {target_name!r} was not used in the model's forward pass")
    start, jump, specs = 0, 1, []
    for name, m in order:
        if isinstance(m, _GLOBAL):
            raise ValueError(f"layer {target_name!r} comes after the adaptive pooling {name!r}: each of its positions "
                             "sees a region that depends on the input size (the whole image for global pooling)")
        for attr in ("kernel_size", "stride", "dilation"):
            if attr == "stride" and m.stride is None:
                continue
            v = getattr(m, attr, 1)
            if isinstance(v, (tuple, list)) and len(set(v)) != 1:
                raise ValueError(f"layer {name!r} has a non-square {attr} {v}; the receptive field is computed for square geometry")
        k = _pair(name, m.kernel_size)[0]
        d = _pair(name, getattr(m, "dilation", 1))[0]
        p = _padding(name, m, k, d)
        start -= p * jump
        jump *= _pair(name, m.stride if m.stride is not None else k)[0]
        specs.append(m)
    rf = receptive_field(specs)  # size and jump from the shared conv calculator
    return Geometry(size=rf["size"], jump=rf["jump"], start=start, layers=tuple(n for n, _ in order))


@dataclass(frozen=True)
class TopPatches:
    """The ``k`` strongest responses of one channel, one per image, strongest first.

    image_index : Tensor[k]  row of ``x``
    position : Tensor[k, 2]  (row, col) on the layer's grid
    value : Tensor[k]        the activation there
    box : Tensor[k, 4]       the receptive field clipped to the image, ``(y0, x0, y1, x1)``, end exclusive
    patches : Tensor[k, C, size, size]  the unclipped field; pixels outside the image are ``fill``
    """

    image_index: torch.Tensor
    position: torch.Tensor
    value: torch.Tensor
    box: torch.Tensor
    patches: torch.Tensor
    geometry: Geometry


def top_patches(
    model: nn.Module, layer: str | nn.Module, x: torch.Tensor, channel: int, k: int = 9, fill: float = 0.0
) -> TopPatches:
    """Maximally activating image patches of ``channel`` of ``layer`` over the images ``x``.

    Each image contributes its strongest position; the ``k`` images with the strongest response
    are returned (ties: the lower image index first).
    """
    maps = activation_maps(model, layer, x)
    channel = check_int("channel", channel, min=0, max=maps.shape[1] - 1)
    k = check_int("k", k, min=1, max=maps.shape[0])
    geo = layer_geometry(model, layer, x)
    n, _, h, w = maps.shape
    best, where = maps[:, channel].flatten(1).max(dim=1)  # strongest position per image
    order = torch.sort(best, descending=True, stable=True).indices[:k]
    rows, cols = where[order] // w, where[order] % w
    y0, y1 = geo.span(rows)
    x0, x1 = geo.span(cols)
    H, W = x.shape[-2:]
    box = torch.stack([y0.clamp(0, H), x0.clamp(0, W), y1.clamp(0, H), x1.clamp(0, W)], dim=1)
    # pad by the field size on every side so that every field is a plain slice of the padded image
    s = geo.size
    padded = F.pad(x[order], (s, s, s, s), value=float(fill))
    ys = (y0 + s)[:, None] + torch.arange(s)  # (k, s) row indices into the padded images
    xs = (x0 + s)[:, None] + torch.arange(s)
    idx = torch.arange(len(order))[:, None, None, None]
    patches = padded[idx, torch.arange(x.shape[1])[None, :, None, None], ys[:, None, :, None], xs[:, None, None, :]]
    return TopPatches(order, torch.stack([rows, cols], 1), best[order], box, patches, geo)
