"""Backpropagation through time, truncated, and the gradient clipping that tames it.

Full BPTT backpropagates a loss through every step of the unrolled network; its cost and memory
grow with the sequence length and, for a vanilla RNN, the gradient from distant steps shrinks or
explodes geometrically. Truncated BPTT (Williams & Peng) cuts the sequence into chunks of ``k``
steps: the state is carried forward across chunks (the network still *sees* the whole history)
but detached, so gradients flow back at most ``k`` steps.

Clipping (Pascanu et al., 2013) bounds the update when the gradient explodes: rescale all
gradients together so their global norm is at most ``max_norm`` (direction kept), or clamp every
element to ``[-clip_value, clip_value]`` (direction changed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from deepnotes.core.checks import check_float, check_int, check_tensor, check_type

Params = torch.Tensor | Iterable[torch.Tensor]


def _grads(parameters: Params) -> list[torch.Tensor]:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(
    parameters: Params, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> torch.Tensor:
    """Scale the gradients in place so that their joint ``norm_type``-norm is at most ``max_norm``.

    ``total = ‖(‖g_1‖, …, ‖g_k‖)‖`` (the norm of all gradients concatenated);
    every gradient is multiplied by ``min(1, max_norm / (total + 1e-6))`` — torch's formula,
    including its ``1e-6`` guard against division by zero.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensors (those without ``.grad`` are ignored)
    max_norm : float >= 0 (``inf``: only measure the norm)
    norm_type : float > 0 or ``inf``
    error_if_nonfinite : raise ``RuntimeError`` if the total norm is NaN or infinite (else the
        gradients become NaN, as in torch)

    Returns
    -------
    Tensor[] : the total norm *before* clipping (0 when no parameter has a gradient).
    """
    check_type("max_norm", max_norm, (int, float))
    max_norm = float(max_norm)
    if not max_norm >= 0.0:  # inf is allowed (measure without clipping), NaN and negatives are not
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    check_type("norm_type", norm_type, (int, float))
    norm_type = float(norm_type)
    if not (norm_type > 0):
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type}")
    grads = _grads(parameters)
    if not grads:
        return torch.tensor(0.0)
    if math.isinf(norm_type):
        total = torch.stack([g.detach().abs().max() for g in grads]).max()
    else:
        total = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(g.detach(), norm_type) for g in grads]), norm_type)
    if error_if_nonfinite and not bool(torch.isfinite(total)):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is non-finite ({total.item()})")
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.detach().mul_(coef.to(g.device, g.dtype))
    return total


def clip_grad_value_(parameters: Params, clip_value: float) -> None:
    """Clamp every gradient element in place to ``[-clip_value, clip_value]`` (``clip_value`` >= 0)."""
    clip_value = check_float("clip_value", clip_value, min=0.0)
    for g in _grads(parameters):
        g.detach().clamp_(-clip_value, clip_value)


def detach_state(state):
    """Cut the graph behind a recurrent state (a tensor, or a tuple/list of tensors, or None)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(f"state must be a tensor, a tuple of tensors or None, got {type(state).__name__}")


def truncated_bptt(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer | None,
    k: int,
    state=None,
    max_norm: float | None = None,
) -> tuple[list[float], object]:
    """Train over one long sequence with truncated BPTT, one optimizer step per chunk of ``k`` steps.

    For each chunk ``[s, s + k)``: ``out, state = model(inputs[:, s:s+k], state)``;
    ``loss_fn(out, targets[:, s:s+k]).backward()``; optionally clip to ``max_norm``; step; then
    the state is detached so the next chunk's gradient stops at its own first step.

    Parameters
    ----------
    model : module called as ``model(x, state) -> (output, state)`` on batch-first input, e.g.
        :class:`~deepnotes.sequence.LSTM` with ``batch_first=True``
    inputs : Tensor[N, T, F]
    targets : Tensor[N, T, ...] (per-step targets, sliced along axis 1 like the inputs)
    loss_fn : ``(output_chunk, target_chunk) -> scalar``
    optimizer : stepped and zeroed once per chunk; ``None`` only accumulates gradients (the sum
        over chunks is then the truncated gradient of the summed chunk losses)
    k : truncation length >= 1; ``k >= T`` is full BPTT
    state : initial state (default: the model's zeros)
    max_norm : clip the global gradient norm to this before each step (default: no clipping)

    Returns
    -------
    losses : the loss of each chunk (floats)
    state : the final state, detached
    """
    check_tensor("inputs", inputs, ndim=3, floating=True)
    check_tensor("targets", targets, ndim=(2, 3, 4))
    if targets.shape[:2] != inputs.shape[:2]:
        raise ValueError(f"targets must start with (N, T) = {tuple(inputs.shape[:2])}, got {tuple(targets.shape)}")
    k = check_int("k", k, min=1)
    if max_norm is not None:
        max_norm = check_float("max_norm", max_norm, min=0.0)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    losses = []
    for s in range(0, inputs.shape[1], k):
        out, state = model(inputs[:, s : s + k], state)
        loss = loss_fn(out, targets[:, s : s + k])
        if optimizer is not None:
            optimizer.zero_grad()
        loss.backward()
        if max_norm is not None:
            clip_grad_norm_(model.parameters(), max_norm)
        if optimizer is not None:
            optimizer.step()
        losses.append(float(loss.detach()))
        state = detach_state(state)  # truncation: the next chunk's graph starts here
    return losses, state
