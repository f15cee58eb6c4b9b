"""Vision Transformer (Dosovitskiy et al. 2021) with ``torchvision.models.VisionTransformer``'s layout.

An image is cut into ``P × P`` patches, each linearly embedded (a ``P × P`` convolution with stride
``P``); a learned class token is prepended, a learned position embedding added, and a stack of
pre-norm encoder blocks mixes the tokens. The class token's final state is classified::

    z₀ = [x_cls; E x_p¹; …; E x_pᴺ] + E_pos
    z'_l = z_{l-1} + MSA(LN z_{l-1}),   z_l = z'_l + MLP(LN z'_l)
    y = head(LN(z_L)[0])

Parameter names equal torchvision's, so ``ours.load_state_dict(tv_vit.state_dict())`` works and
``vit_b_16`` has exactly torchvision's 86,567,656 parameters with 1000 classes.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from deepnotes.attention.multihead import MultiheadAttention
from deepnotes.core.checks import check_int, check_probability, check_type
from deepnotes.core.registry import MODELS
from deepnotes.models.interface import ImageClassifier, parse_in_shape


def _mlp(dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """Linear → GELU → Dropout → Linear → Dropout (keys ``0`` and ``3`` as torchvision's MLP)."""
    mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))
    for m in (mlp[0], mlp[3]):
        nn.init.xavier_uniform_(m.weight)
        nn.init.normal_(m.bias, std=1e-6)
    return mlp


class EncoderBlock(nn.Module):
    """Pre-norm block: ``x + MSA(LN₁ x)`` then ``+ MLP(LN₂ ·)`` (LayerNorm eps 1e-6 as ViT)."""

    def __init__(self, num_heads: int, hidden_dim: int, mlp_dim: int, dropout: float, attention_dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.self_attention = MultiheadAttention(hidden_dim, num_heads, dropout=attention_dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.mlp = _mlp(hidden_dim, mlp_dim, dropout)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's output and its attention weights ``(N, heads, L, L)``."""
        h = self.ln_1(x)
        a, weights = self.self_attention(h, h, h, need_weights=True, average_attn_weights=False)
        x = x + self.dropout(a)
        return x + self.mlp(self.ln_2(x)), weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.dropout(self.self_attention(h, h, h, need_weights=False)[0])
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """Learned position embedding ``pos_embedding (1, L, D)``, the blocks, a final LayerNorm."""

    def __init__(self, seq_length, num_layers, num_heads, hidden_dim, mlp_dim, dropout, attention_dropout):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, hidden_dim).normal_(std=0.02))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(
            OrderedDict(
                (f"encoder_layer_{i}", EncoderBlock(num_heads, hidden_dim, mlp_dim, dropout, attention_dropout))
                for i in range(num_layers)
            )
        )
        self.ln = nn.LayerNorm(hidden_dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


def _pair(name: str, value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or (height, width), got {value!r}")
        return check_int(f"{name}[0]", value[0], min=1), check_int(f"{name}[1]", value[1], min=1)
    v = check_int(name, value, min=1)
    return v, v


class VisionTransformer(ImageClassifier):
    """ViT for ``in_channels × H × W`` images; ``H`` and ``W`` must be multiples of ``patch_size``.

    ``forward_features`` returns the final class-token state ``(N, hidden_dim)``; ``forward_head``
    classifies it. :meth:`attention_maps` returns every layer's attention weights.

    Example
    -------
    >>> vit = VisionTransformer(image_size=8, patch_size=2, num_layers=1, num_heads=2, hidden_dim=8,
    ...                         mlp_dim=16, num_classes=10, in_channels=1)
    >>> vit(torch.rand(3, 1, 8, 8)).shape
    torch.Size([3, 10])
    """

    def __init__(
        self,
        image_size,
        patch_size,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        mlp_dim: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        num_classes: int = 1000,
        in_channels: int = 3,
    ):
        super().__init__()
        self.image_size, self.patch_size = _pair("image_size", image_size), _pair("patch_size", patch_size)
        for side, p, axis in zip(self.image_size, self.patch_size, ("height", "width")):
            if side % p:
                raise ValueError(f"image_size {self.image_size} must be divisible by patch_size {self.patch_size} ({axis})")
        self.hidden_dim = check_int("hidden_dim", hidden_dim, min=1)
        self.in_channels = check_int("in_channels", in_channels, min=1)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        check_int("num_layers", num_layers, min=1)
        check_int("mlp_dim", mlp_dim, min=1)
        check_probability("dropout", dropout)
        check_probability("attention_dropout", attention_dropout)
        self.grid = (self.image_size[0] // self.patch_size[0], self.image_size[1] // self.patch_size[1])
        self.min_size = min(self.image_size)
        # patch embedding: a P×P convolution with stride P is one linear map per patch
        self.conv_proj = nn.Conv2d(in_channels, hidden_dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        self.seq_length = self.grid[0] * self.grid[1] + 1
        self.encoder = Encoder(self.seq_length, num_layers, num_heads, hidden_dim, mlp_dim, dropout, attention_dropout)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(hidden_dim, num_classes)))
        fan_in = in_channels * self.patch_size[0] * self.patch_size[1]
        nn.init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.conv_proj.bias)
        # torchvision starts the head at zero: every class has the same logit at initialization
        nn.init.zeros_(self.heads.head.weight)
        nn.init.zeros_(self.heads.head.bias)

    def check_input(self, x: torch.Tensor) -> None:
        super().check_input(x)
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"input images must be {self.image_size} (the position embedding's grid), got {tuple(x.shape[-2:])}")

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(N, C, H, W)`` → ``(N, 1 + patches, D)``: class token then patch embeddings (no position yet)."""
        patches = self.conv_proj(x).flatten(2).transpose(1, 2)  # (N, D, h, w) → (N, h·w, D), row-major patches
        return torch.cat([self.class_token.expand(x.shape[0], -1, -1), patches], dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.tokens(x))[:, 0]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.heads(features)

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every layer, each ``(N, heads, L, L)`` with ``L = 1 + patches``."""
        self.check_input(x)
        enc = self.encoder
        z = enc.dropout(self.tokens(x) + enc.pos_embedding)
        maps = []
        for block in enc.layers:
            z, w = block.forward_with_attention(z)
            maps.append(w)
        return maps


def _image_size(in_shape, name: str) -> tuple[int, int, int]:
    c, h, w = parse_in_shape(in_shape, name=name)
    return c, h, w


@MODELS.register("vit", description="small ViT: 2x2 patches, width 64, 4 layers, 4 heads (for 8x8 digits)")
def vit(in_shape, num_classes: int, patch_size=2, hidden_dim: int = 64, num_layers: int = 4, num_heads: int = 4,
        mlp_dim: int = 128, dropout: float = 0.0, attention_dropout: float = 0.0) -> VisionTransformer:
    """A small ViT for the image size of ``in_shape``; every size is a keyword (``--model-kw``).

    ViTs overfit small data sets; on digits train it regularized, e.g.
    ``deepnotes train --model vit --data digits --epochs 40 --lr 2e-3 --schedule cosine
    --optimizer torch_adamw --weight-decay 0.1 --model-kw dropout=0.2``.
    """
    c, h, w = _image_size(in_shape, "vit")
    return VisionTransformer((h, w), patch_size, num_layers, num_heads, hidden_dim, mlp_dim, dropout,
                             attention_dropout, num_classes, c)


@MODELS.register("vit_b_16", description="ViT-B/16 (torchvision's vit_b_16 layout; 86,567,656 parameters at 224, 1000 classes)")
def vit_b_16(in_shape, num_classes: int, **kwargs) -> VisionTransformer:
    """ViT-Base, 16×16 patches: 12 layers, 12 heads, width 768, MLP 3072."""
    check_type("in_shape", in_shape, (tuple, list))
    c, h, w = _image_size(in_shape, "vit_b_16")
    return VisionTransformer((h, w), 16, 12, 12, 768, 3072, num_classes=num_classes, in_channels=c, **kwargs)
