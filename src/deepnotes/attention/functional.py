"""Scaled dot-product attention written out: ``softmax(Q Kᵀ / √d + mask) V``.

Shapes follow ``torch.nn.functional.scaled_dot_product_attention``: ``query (Tensor[..., L, E])``,
``key (Tensor[..., S, E])``, ``value (Tensor[..., S, Ev])``, leading dimensions broadcast, output
``(Tensor[..., L, Ev])``. Masks use torch's SDPA convention:

- a **boolean** ``attn_mask`` says which pairs *take part* (``True`` = query i may look at key j);
  ``False`` becomes ``-inf`` before the softmax;
- a **floating** ``attn_mask`` is added to the scores (e.g. ``-inf`` to forbid, a learned bias);
- ``is_causal=True`` keeps ``j <= i`` (the lower triangle of an ``L × S`` grid, aligned top-left).

A query row whose keys are all masked has no distribution to normalize; it gets all-zero weights
and so an all-zero output (torch's SDPA does the same; a plain softmax would give NaN).
"""

from __future__ import annotations

import math

import torch

from deepnotes.core.checks import check_float, check_tensor, check_type
from deepnotes.nn.dropout import dropout as _dropout


def causal_mask(L: int, S: int, device=None) -> torch.Tensor:
    """Boolean ``(L, S)`` mask, ``True`` where key ``j`` may be seen by query ``i`` (``j <= i``)."""
    return torch.ones(L, S, dtype=torch.bool, device=device).tril()


def _check_inputs(query, key, value, attn_mask, is_causal) -> None:
    for name, t in (("query", query), ("key", key), ("value", value)):
        check_tensor(name, t, floating=True)
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., seq_len, features), got {tuple(t.shape)}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"query and key must have the same last dimension (features), got {query.shape[-1]} and {key.shape[-1]}"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"key and value must have the same sequence length (dim -2), got {key.shape[-2]} and {value.shape[-2]}"
        )
    if attn_mask is not None:
        check_type("attn_mask", attn_mask, torch.Tensor)
        if is_causal:
            raise ValueError("attn_mask must be None when is_causal=True (the causal mask replaces it)")
        if attn_mask.dtype != torch.bool and not attn_mask.is_floating_point():
            raise TypeError(f"attn_mask must be a bool or floating-point tensor, got dtype {attn_mask.dtype}")
        L, S = query.shape[-2], key.shape[-2]
        batch = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2])
        try:
            ok = torch.broadcast_shapes(attn_mask.shape, (*batch, L, S)) == (*batch, L, S)
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to the scores' shape {(*batch, L, S)}"
            )


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    r"""``softmax(Q Kᵀ · scale + M) V`` with ``scale = 1/√E`` by default.

    Parameters
    ----------
    query, key, value : Tensor[..., L, E], Tensor[..., S, E], Tensor[..., S, Ev]
    attn_mask : Tensor[..., L, S], optional
        Broadcastable to the scores; bool (``True`` = attend) or float (added).
    dropout_p : float
        Probability of dropping an attention weight (inverted dropout on the normalized weights,
        global RNG, as torch). Applied whenever it is positive — pass 0 at evaluation.
    is_causal : bool
        Apply :func:`causal_mask`; ``attn_mask`` must then be ``None``.
    scale : float, optional
        Multiplies the scores; default ``1 / sqrt(E)``.

    Returns
    -------
    Tensor[..., L, Ev]

    Example
    -------
    >>> q = k = v = torch.eye(2).unsqueeze(0)
    >>> scaled_dot_product_attention(q, k, v, is_causal=True)[0, 0]
    tensor([1., 0.])
    """
    out, _ = attention_with_weights(query, key, value, attn_mask, dropout_p, is_causal, scale)
    return out


def attention_with_weights(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`scaled_dot_product_attention` that also returns the weights ``(Tensor[..., L, S])``.

    The weights returned are the ones multiplied with ``value``, i.e. after dropout (what
    ``nn.MultiheadAttention`` reports).
    """
    _check_inputs(query, key, value, attn_mask, is_causal)
    dropout_p = check_float("dropout_p", dropout_p, min=0.0, max=1.0)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else check_float("scale", scale)
    L, S = query.shape[-2], key.shape[-2]

    scores = query @ key.transpose(-2, -1) * scale  # e_ij = q_i · k_j / √d
    if is_causal:
        attn_mask = causal_mask(L, S, device=query.device)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    # softmax over keys; a fully masked row has max = -inf: subtract 0 there and give it zero weight
    row_max = scores.amax(dim=-1, keepdim=True).detach()
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = torch.exp(scores - row_max)
    denom = e.sum(dim=-1, keepdim=True)
    weights = e / torch.where(denom > 0, denom, torch.ones_like(denom))  # α_ij = exp(e_ij) / Σ_k exp(e_ik)

    dropped = weights
    if dropout_p == 1.0:
        dropped = torch.zeros_like(weights)
    elif dropout_p > 0.0:
        dropped = _dropout(weights, dropout_p, training=True)
    return dropped @ value, dropped  # z_i = Σ_j α_ij v_j
