"""What every explanation method shares: input checks, layer lookup and a model left as it was found.

Every public method in :mod:`deepnotes.explain` runs the model inside :func:`inspecting`, which
records the ``training`` flag of every sub-module and the hooks it registers, and on exit —
normal or by an exception — removes those hooks and restores the flags. The caller's model
therefore leaves a call in the train/eval mode it was given, with no hook of ours attached.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from deepnotes.core.checks import check_tensor, check_type

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class Hooks:
    """Collects hook handles so that :func:`inspecting` can remove them all."""

    def __init__(self) -> None:
        self.handles: list[Any] = []

    def forward(self, module: nn.Module, fn) -> None:
        self.handles.append(module.register_forward_hook(fn))

    def remove(self) -> None:
        while self.handles:
            self.handles.pop().remove()


@contextlib.contextmanager
def inspecting(model: nn.Module) -> Iterator[Hooks]:
    """Yield a :class:`Hooks` collector; on exit remove its hooks and restore every module's mode."""
    check_type("model", model, nn.Module)
    modes = [(m, m.training) for m in model.modules()]
    hooks = Hooks()
    try:
        yield hooks
    finally:
        hooks.remove()
        for m, training in modes:
            m.training = training


def check_images(model: nn.Module, x: Any, name: str = "x") -> torch.Tensor:
    """A floating batch ``(N, C, H, W)`` whose ``C`` is what the model's first convolution takes."""
    check_tensor(name, x, ndim=4, floating=True, finite=True, nonempty=True)
    conv = first_conv(model, required=False)
    if conv is not None and x.shape[1] != conv.in_channels:
        raise ValueError(
            f"{name} has {x.shape[1]} channels but the model's first convolution expects {conv.in_channels} "
            f"(shape {tuple(x.shape)})"
        )
    return x


def first_conv(model: nn.Module, required: bool = True) -> nn.Conv2d | None:
    """The first ``nn.Conv2d`` in registration order (``None`` or ``ValueError`` when there is none)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    if required:
        raise ValueError(f"model {type(model).__name__} has no nn.Conv2d layer")
    return None


def layer_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def resolve_layer(model: nn.Module, layer: str | nn.Module, name: str = "layer") -> tuple[str, nn.Module]:
    """``(dotted name, module)`` for a name from ``model.named_modules()`` or a sub-module itself."""
    modules = dict(model.named_modules())
    if isinstance(layer, nn.Module):
        for key, m in modules.items():
            if m is layer:
                return key, m
        raise ValueError(f"{name} is a {type(layer).__name__} that is not a sub-module of the model")
    check_type(name, layer, (str, nn.Module))
    if layer not in modules or layer == "":
        valid = ", ".join(layer_names(model))
        raise ValueError(f"{name} {layer!r} is not a layer of the model; valid names: {valid}")
    return layer, modules[layer]


def check_target(target: Any, n: int, num_classes: int, name: str = "target") -> torch.Tensor:
    """``target`` (an int, or one int per image) as an int64 tensor of length ``n``, each in ``[0, C)``."""
    if isinstance(target, bool):
        raise TypeError(f"{name} must be an int or a tensor of ints, got bool")
    if isinstance(target, int):
        t = torch.full((n,), target, dtype=torch.int64)
    elif isinstance(target, torch.Tensor) and not target.is_floating_point() and target.dtype != torch.bool:
        t = target.reshape(-1).to(torch.int64)
        if t.numel() == 1:
            t = t.expand(n)
        if t.numel() != n:
            raise ValueError(f"{name} must hold one class per image ({n}), got {t.numel()}")
    else:
        raise TypeError(f"{name} must be an int or an integer tensor, got {type(target).__name__}")
    bad = (t < 0) | (t >= num_classes)
    if bool(bad.any()):
        raise ValueError(f"{name} must be a class index in [0, {num_classes - 1}], got {t[bad][0].item()}")
    return t.cpu()


def class_scores(model: nn.Module, x: torch.Tensor, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward ``x``; return the logits ``(N, C)`` and each image's target score ``(N,)``."""
    out = model(x)
    if out.dim() != 2:
        raise ValueError(f"model must return class scores of shape (N, C), got {tuple(out.shape)}")
    t = check_target(target, x.shape[0], out.shape[1]).to(out.device)
    return out, out.gather(1, t[:, None])[:, 0]
