"""The Transformer encoder block, ``nn.TransformerEncoderLayer``'s parameters, keys and maths.

Post-norm (``norm_first=False``, the original Transformer)::

    x = LN₁(x + Dropout(MHA(x, x, x)))
    x = LN₂(x + Dropout(W₂ Dropout(act(W₁ x))))

Pre-norm (``norm_first=True``, ViT, GPT-2): ``x = x + Dropout(MHA(LN₁ x))``, then
``x = x + Dropout(FFN(LN₂ x))``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepnotes.attention.multihead import MultiheadAttention
from deepnotes.core.checks import check_choice, check_float, check_int, check_probability


def _activation(activation: str | Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    if callable(activation):
        return activation
    check_choice("activation", activation, ("relu", "gelu"))
    return nn.functional.relu if activation == "relu" else nn.functional.gelu


class TransformerEncoderLayer(nn.Module):
    """Self-attention then a position-wise feed-forward net, each with a residual and a LayerNorm.

    Arguments and defaults are ``torch.nn.TransformerEncoderLayer``'s; so are the ``state_dict`` keys
    (``self_attn.*``, ``linear1``, ``linear2``, ``norm1``, ``norm2``).

    Example
    -------
    >>> layer = TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    >>> layer(torch.rand(3, 5, 8)).shape
    torch.Size([3, 5, 8])
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[torch.Tensor], torch.Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        d_model = check_int("d_model", d_model, min=1)
        dim_feedforward = check_int("dim_feedforward", dim_feedforward, min=1)
        dropout = check_probability("dropout", dropout)
        eps = check_float("layer_norm_eps", layer_norm_eps, min=0.0, min_inclusive=False)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = bool(norm_first)
        self.norm1 = nn.LayerNorm(d_model, eps=eps, bias=bias, **kw)
        self.norm2 = nn.LayerNorm(d_model, eps=eps, bias=bias, **kw)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = _activation(activation)
        self.batch_first = bool(batch_first)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal) -> torch.Tensor:
        x = self.self_attn(
            x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal
        )[0]
        return self.dropout1(x)

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """``src (Tensor[S, N, E])`` (``(N, S, E)`` with ``batch_first``; ``(S, E)`` unbatched) → same shape.

        ``src_mask`` and ``src_key_padding_mask`` are passed to the attention as ``attn_mask`` and
        ``key_padding_mask`` (``True`` = not allowed).
        """
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x
