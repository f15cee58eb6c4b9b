"""The optimizers' updates for one tensor, written as the equations read.

Each function applies one step to the parameter ``p`` (in place, under ``no_grad``) from its
gradient ``g`` and a ``state`` dict that it fills on the first call. They are the readable
versions of :class:`~deepnotes.optim.SGD`/:class:`~deepnotes.optim.Momentum`,
:class:`~deepnotes.optim.Adagrad`, :class:`~deepnotes.optim.RMSProp` and
:class:`~deepnotes.optim.Adam`, which run the same updates over many tensors at once; the tests
check that both agree (and both against ``torch.optim``).

Example
-------
>>> import torch
>>> p, state = torch.tensor([1.0]), {}
>>> adam_step(p, torch.tensor([5.0]), state, lr=0.1)  # the first step has size lr
>>> round(p.item(), 4)
0.9
"""

from __future__ import annotations

import math

import torch


def _gradient(p, g, weight_decay, maximize):
    """The gradient the step follows: ascent flips its sign; L2 decay adds ``weight_decay · p``."""
    g = -g if maximize else g
    return g + weight_decay * p if weight_decay else g


@torch.no_grad()
def sgd_step(p, g, state, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False):
    """``b = momentum·b + (1 − dampening)·g`` (first step ``b = g``); ``p −= lr·b``
    (Nesterov: ``p −= lr·(g + momentum·b)``); without momentum ``p −= lr·g``."""
    g = _gradient(p, g, weight_decay, maximize)
    if momentum:
        if "b" not in state:
            state["b"] = g.clone()
        else:
            state["b"] = momentum * state["b"] + (1 - dampening) * g
        g = g + momentum * state["b"] if nesterov else state["b"]
    p -= lr * g


@torch.no_grad()
def adagrad_step(p, g, state, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    """``s = s + g²``; ``p −= lr_t · g / (√s + eps)`` with ``lr_t = lr / (1 + (t − 1)·lr_decay)``."""
    g = _gradient(p, g, weight_decay, maximize)
    state["t"] = state.get("t", 0) + 1
    state.setdefault("s", torch.full_like(p, initial_accumulator_value))
    state["s"] = state["s"] + g * g
    lr_t = lr / (1 + (state["t"] - 1) * lr_decay)
    p -= lr_t * g / (state["s"].sqrt() + eps)


@torch.no_grad()
def rmsprop_step(p, g, state, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, maximize=False):
    """``v = α·v + (1 − α)·g²``; ``d = √v + eps`` (centred: ``√(v − m²) + eps`` with ``m`` the
    running mean of ``g``); ``p −= lr·g/d`` (with momentum: ``b = μ·b + g/d``, ``p −= lr·b``)."""
    g = _gradient(p, g, weight_decay, maximize)
    v = alpha * state.get("v", torch.zeros_like(p)) + (1 - alpha) * g * g
    state["v"] = v
    if centered:
        state["m"] = alpha * state.get("m", torch.zeros_like(p)) + (1 - alpha) * g
        d = (v - state["m"] ** 2).sqrt() + eps
    else:
        d = v.sqrt() + eps
    if momentum:
        state["b"] = momentum * state.get("b", torch.zeros_like(p)) + g / d
        p -= lr * state["b"]
    else:
        p -= lr * g / d


@torch.no_grad()
def adam_step(p, g, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              amsgrad=False, maximize=False):
    """``m = β₁·m + (1 − β₁)·g``; ``v = β₂·v + (1 − β₂)·g²`` (amsgrad: its running maximum);
    ``p −= lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + eps)``."""
    beta1, beta2 = betas
    g = _gradient(p, g, weight_decay, maximize)
    t = state["t"] = state.get("t", 0) + 1
    m = state["m"] = beta1 * state.get("m", torch.zeros_like(p)) + (1 - beta1) * g
    v = state["v"] = beta2 * state.get("v", torch.zeros_like(p)) + (1 - beta2) * g * g
    if amsgrad:
        v = state["v_max"] = torch.maximum(state.get("v_max", torch.zeros_like(p)), v)
    p -= lr / (1 - beta1**t) * m / (v.sqrt() / math.sqrt(1 - beta2**t) + eps)
