"""Multi-head attention with the parameters, ``state_dict`` keys and call of ``nn.MultiheadAttention``.

Each of the ``H`` heads attends in its own ``E/H``-dimensional subspace::

    head_h = softmax(Q W_qʰ (K W_kʰ)ᵀ / √(E/H) + M) V W_vʰ,     out = concat(head_1 … head_H) W_o

The projections ``W_q, W_k, W_v`` are stored stacked as ``in_proj_weight (Tensor[3E, E])`` (or as
``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` when ``kdim``/``vdim`` differ from ``E``), the
output projection as ``out_proj`` — so ``ours.load_state_dict(torch_mha.state_dict())`` works.

Masks follow ``nn.MultiheadAttention`` (opposite to SDPA's boolean convention): a boolean
``attn_mask`` or ``key_padding_mask`` is ``True`` where attention is **not** allowed; a float mask is
added to the scores. A query whose keys are all masked gets zero weights and its output is
``out_proj.bias`` (torch's ``nn.MultiheadAttention`` returns NaN there).
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.attention.functional import attention_with_weights
from deepnotes.core.checks import check_int, check_probability, check_tensor, check_type


def _to_additive(name: str, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``True`` (= forbidden) → ``-inf``, ``False`` → 0; a float mask is returned as ``dtype``."""
    check_type(name, mask, torch.Tensor)
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    if not mask.is_floating_point():
        raise TypeError(f"{name} must be a bool or floating-point tensor, got dtype {mask.dtype}")
    return mask.to(dtype)


class MultiheadAttention(nn.Module):
    """Multi-head attention, a drop-in for ``torch.nn.MultiheadAttention``.

    Parameters
    ----------
    embed_dim : int
        Model width ``E``; must be divisible by ``num_heads``.
    num_heads : int
    dropout : float
        Dropout on the attention weights (training mode only).
    bias : bool
        Biases on the input and output projections.
    add_bias_kv : bool
        Learned ``bias_k``, ``bias_v`` appended to the keys and values as one extra position.
    add_zero_attn : bool
        Append one all-zero key/value position (after the head split).
    kdim, vdim : int, optional
        Feature sizes of ``key`` and ``value`` (default ``embed_dim``).
    batch_first : bool
        Inputs and outputs are ``(N, L, E)`` instead of ``(L, N, E)``.

    Example
    -------
    >>> mha = MultiheadAttention(8, 2, batch_first=True)
    >>> x = torch.rand(3, 5, 8)
    >>> out, w = mha(x, x, x)
    >>> out.shape, w.shape
    (torch.Size([3, 5, 8]), torch.Size([3, 5, 5]))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        embed_dim = check_int("embed_dim", embed_dim, min=1)
        num_heads = check_int("num_heads", num_heads, min=1)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        kw = {"device": device, "dtype": dtype}
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else check_int("kdim", kdim, min=1)
        self.vdim = embed_dim if vdim is None else check_int("vdim", vdim, min=1)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout = check_probability("dropout", dropout)
        self.batch_first = bool(batch_first)
        self.add_zero_attn = bool(add_zero_attn)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim, **kw))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, embed_dim, **kw))
            self.bias_v = nn.Parameter(torch.empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # torch's scheme: Xavier-uniform projections, zero biases, Xavier-normal bias_k / bias_v
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if w is not None:
                nn.init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)
        for b in (self.bias_k, self.bias_v):
            if b is not None:
                nn.init.xavier_normal_(b)

    def _projection_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._qkv_same_embed_dim:
            return self.in_proj_weight.chunk(3)
        return self.q_proj_weight, self.k_proj_weight, self.v_proj_weight

    def _check_call(self, query, key, value) -> bool:
        """Validate the three inputs; return whether they are batched."""
        for name, t, width in (("query", query, self.embed_dim), ("key", key, self.kdim), ("value", value, self.vdim)):
            check_tensor(name, t, ndim=(2, 3), floating=True)
            if t.shape[-1] != width:
                raise ValueError(f"{name} must have {width} features in its last dimension, got shape {tuple(t.shape)}")
        if not query.dim() == key.dim() == value.dim():
            raise ValueError(
                f"query, key and value must all be batched (3-D) or all unbatched (2-D), got shapes "
                f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        batched = query.dim() == 3
        seq_dim, batch_dim = (1, 0) if self.batch_first else (0, 1)
        if not batched:
            seq_dim = 0
        if key.shape[seq_dim] != value.shape[seq_dim]:
            raise ValueError(f"key and value must have the same sequence length, got {tuple(key.shape)} and {tuple(value.shape)}")
        if batched and not query.shape[batch_dim] == key.shape[batch_dim] == value.shape[batch_dim]:
            raise ValueError(
                f"query, key and value must have the same batch size, got shapes "
                f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        return batched

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``query`` to ``key``/``value``.

        Parameters
        ----------
        query : Tensor[L, N, E] (``(N, L, E)`` with ``batch_first``; ``(L, E)`` unbatched)
        key, value : Tensor[S, N, kdim], Tensor[S, N, vdim] (same layout rules)
        key_padding_mask : Tensor[N, S] or Tensor[S] (unbatched), optional
            ``True`` / ``-inf`` for keys to ignore (padding).
        need_weights : bool
            Also return the attention weights.
        attn_mask : Tensor[L, S] or Tensor[N·H, L, S], optional
            ``True`` / ``-inf`` for forbidden pairs, floats added to the scores.
        average_attn_weights : bool
            Average the returned weights over heads (``(N, L, S)``) instead of ``(N, H, L, S)``.
        is_causal : bool
            A hint, as in torch, that ``attn_mask`` is the causal mask; ``attn_mask`` must be given.

        Returns
        -------
        attn_output : same layout as ``query``
        attn_weights : Tensor[N, L, S] or Tensor[N, H, L, S] (no ``N`` when unbatched), or ``None``
        """
        batched = self._check_call(query, key, value)
        if is_causal and attn_mask is None:
            raise ValueError("attn_mask must be given when is_causal=True (is_causal is only a hint about attn_mask)")
        if not batched:  # one sequence: add a batch of 1
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                check_type("key_padding_mask", key_padding_mask, torch.Tensor)
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:  # work in (N, L, E)
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        N, L, E = query.shape
        S, H, d = key.shape[1], self.num_heads, self.head_dim
        mask = self._merged_mask(attn_mask, key_padding_mask, N, L, S, query.dtype)

        w_q, w_k, w_v = self._projection_weights()
        b_q, b_k, b_v = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)
        q = nn.functional.linear(query, w_q, b_q)
        k = nn.functional.linear(key, w_k, b_k)
        v = nn.functional.linear(value, w_v, b_v)
        if self.bias_k is not None:  # one more key position holding the learned biases
            k = torch.cat([k, self.bias_k.expand(N, 1, E)], dim=1)
            v = torch.cat([v, self.bias_v.expand(N, 1, E)], dim=1)
            mask = None if mask is None else nn.functional.pad(mask, (0, 1))
        # split the width into H heads: (N, S, E) → (N, H, S, d)
        q, k, v = (t.reshape(N, -1, H, d).transpose(1, 2) for t in (q, k, v))
        if self.add_zero_attn:
            k = torch.cat([k, k.new_zeros(N, H, 1, d)], dim=2)
            v = torch.cat([v, v.new_zeros(N, H, 1, d)], dim=2)
            mask = None if mask is None else nn.functional.pad(mask, (0, 1))
        p = self.dropout if self.training else 0.0
        out, weights = attention_with_weights(q, k, v, attn_mask=mask, dropout_p=p)
        out = self.out_proj(out.transpose(1, 2).reshape(N, L, E))  # concat heads, then W_o

        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, (weights if batched else weights.squeeze(0))

    def _merged_mask(self, attn_mask, key_padding_mask, N, L, S, dtype) -> torch.Tensor | None:
        """One additive mask broadcastable to ``(N, H, L, S)`` from both masks (``None`` if neither)."""
        H = self.num_heads
        mask = None
        if attn_mask is not None:
            mask = _to_additive("attn_mask", attn_mask, dtype)
            if mask.shape == (L, S):
                pass
            elif mask.shape == (N * H, L, S):
                mask = mask.reshape(N, H, L, S)
            else:
                raise ValueError(
                    f"attn_mask must have shape (L, S) = {(L, S)} or (N·num_heads, L, S) = {(N * H, L, S)}, "
                    f"got {tuple(attn_mask.shape)}"
                )
        if key_padding_mask is not None:
            kpm = _to_additive("key_padding_mask", key_padding_mask, dtype)
            if kpm.shape != (N, S):
                raise ValueError(
                    f"key_padding_mask must have shape (N, S) = {(N, S)} (or (S,) for unbatched input), "
                    f"got {tuple(key_padding_mask.shape)}"
                )
            kpm = kpm.reshape(N, 1, 1, S)
            mask = kpm if mask is None else mask + kpm
        return mask
