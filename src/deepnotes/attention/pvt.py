"""Pyramid Vision Transformer, PVT v1 (Wang et al. 2021): a Transformer with a CNN's pyramid.

Four stages (here: as many as configured) each embed ``P × P`` patches of the previous map, add a
learned position embedding and run encoder blocks, so the token grid shrinks (1/4, 1/8, 1/16, 1/32
of the image in the standard model) while the width grows. To afford global attention on the
large early grids, **spatial-reduction attention** (SRA) computes keys and values from a map
reduced by ``R × R`` (an ``R × R`` convolution with stride ``R``, then LayerNorm)::

    SRA(x) = softmax(Q Kᵀ / √d) V,   Q = x W_q,   [K, V] = LN(SR(x)) W_kv

so a grid of ``n`` tokens costs ``n · n/R²`` instead of ``n²``. No reference library ships PVT v1:
SRA is tested against ``torch.nn.MultiheadAttention`` fed the reduced keys with the same weights.
The head averages the last stage's tokens (PVT v1 used a class token there; the mean is PVT v2's).
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.attention.functional import scaled_dot_product_attention
from deepnotes.core.checks import check_int, check_probability, check_type
from deepnotes.core.registry import MODELS
from deepnotes.models.interface import ImageClassifier, parse_in_shape
from deepnotes.nn.stochastic_depth import StochasticDepth


class SpatialReductionAttention(nn.Module):
    """Multi-head attention whose keys/values come from the ``sr_ratio``-times reduced map.

    Input ``x (Tensor[N, H·W, C])`` with its grid ``(H, W)``; output the same shape.
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int = 1, qkv_bias: bool = True,
                 attention_dropout: float = 0.0, dropout: float = 0.0):
        super().__init__()
        dim, num_heads = check_int("dim", dim, min=1), check_int("num_heads", num_heads, min=1)
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads, self.sr_ratio = num_heads, check_int("sr_ratio", sr_ratio, min=1)
        self.attention_dropout = check_probability("attention_dropout", attention_dropout)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def reduced(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """The key/value source: ``(N, H·W, C)`` → ``(N, ⌊H/R⌋·⌊W/R⌋, C)`` (unchanged for ``R = 1``)."""
        if self.sr_ratio == 1:
            return x
        N, L, C = x.shape
        grid = x.transpose(1, 2).reshape(N, C, H, W)
        return self.norm(self.sr(grid).flatten(2).transpose(1, 2))

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        N, L, C = x.shape
        if L != H * W:
            raise ValueError(f"x has {L} tokens but the grid is {H}x{W} = {H * W}")
        if min(H, W) < self.sr_ratio:
            raise ValueError(f"the grid {H}x{W} is smaller than sr_ratio = {self.sr_ratio}")
        h, d = self.num_heads, C // self.num_heads
        q = self.q(x).reshape(N, L, h, d).transpose(1, 2)
        k, v = self.kv(self.reduced(x, H, W)).reshape(N, -1, 2, h, d).permute(2, 0, 3, 1, 4)
        p = self.attention_dropout if self.training else 0.0
        out = scaled_dot_product_attention(q, k, v, dropout_p=p).transpose(1, 2).reshape(N, L, C)
        return self.proj_drop(self.proj(out))


class PVTBlock(nn.Module):
    """Pre-norm block: ``x + SRA(LN x)`` then ``+ MLP(LN ·)``."""

    def __init__(self, dim, num_heads, mlp_ratio, sr_ratio, dropout=0.0, attention_dropout=0.0, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SpatialReductionAttention(dim, num_heads, sr_ratio, True, attention_dropout, dropout)
        self.drop_path = StochasticDepth(drop_path, "row")
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), H, W))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PVTStage(nn.Module):
    """Patch embedding (``P × P`` conv, stride ``P``, LayerNorm), position embedding, blocks."""

    def __init__(self, in_dim, dim, patch, grid, depth, num_heads, mlp_ratio, sr_ratio, dropout, drop_paths):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_dim, dim, kernel_size=patch, stride=patch)
        self.patch_norm = nn.LayerNorm(dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1], dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            PVTBlock(dim, num_heads, mlp_ratio, sr_ratio, dropout, 0.0, drop_paths[i]) for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W)`` → ``(N, C, H/P, W/P)``."""
        x = self.patch_embed(x)
        N, C, H, W = x.shape
        t = self.pos_drop(self.patch_norm(x.flatten(2).transpose(1, 2)) + self.pos_embed)
        for block in self.blocks:
            t = block(t, H, W)
        return t.transpose(1, 2).reshape(N, C, H, W)


class PyramidVisionTransformer(ImageClassifier):
    """PVT v1 for ``in_channels × H × W`` images (``H``, ``W`` multiples of the product of patch sizes).

    ``forward_features`` returns the last stage's normalized map ``(N, C, H', W')``; ``forward_head``
    averages it and classifies. :meth:`pyramid` returns every stage's map.

    Example
    -------
    >>> m = PyramidVisionTransformer(8, patch_sizes=(2, 2), embed_dims=(8, 16), num_heads=(1, 2),
    ...                              mlp_ratios=(2, 2), depths=(1, 1), sr_ratios=(2, 1), num_classes=10,
    ...                              in_channels=1)
    >>> [tuple(f.shape) for f in m.pyramid(torch.rand(2, 1, 8, 8))]
    [(2, 8, 4, 4), (2, 16, 2, 2)]
    """

    def __init__(self, image_size, patch_sizes=(4, 2, 2, 2), embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8),
                 mlp_ratios=(8, 8, 4, 4), depths=(2, 2, 2, 2), sr_ratios=(8, 4, 2, 1), dropout: float = 0.0,
                 drop_path_rate: float = 0.1, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        from deepnotes.attention.vit import _pair

        H, W = _pair("image_size", image_size)
        lists = {"patch_sizes": patch_sizes, "embed_dims": embed_dims, "num_heads": num_heads,
                 "mlp_ratios": mlp_ratios, "depths": depths, "sr_ratios": sr_ratios}
        for name, v in lists.items():
            check_type(name, v, (list, tuple))
        n = len(depths)
        if n == 0 or any(len(v) != n for v in lists.values()):
            raise ValueError(f"patch_sizes, embed_dims, num_heads, mlp_ratios, depths and sr_ratios must have the same "
                             f"non-zero length, got {[len(v) for v in lists.values()]}")
        self.in_channels = check_int("in_channels", in_channels, min=1)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.image_size = (H, W)
        rate = check_probability("drop_path_rate", drop_path_rate)
        total = sum(depths)
        rates = [rate * i / max(total - 1, 1) for i in range(total)]
        stages, prev, grid, done, stride = [], self.in_channels, (H, W), 0, 1
        for i in range(n):
            p = check_int(f"patch_sizes[{i}]", patch_sizes[i], min=1)
            stride *= p
            if grid[0] % p or grid[1] % p:
                raise ValueError(f"image_size {(H, W)} must be divisible by the total patch stride {stride} (stage {i})")
            grid = (grid[0] // p, grid[1] // p)
            if min(grid) < sr_ratios[i]:
                raise ValueError(f"stage {i}: grid {grid} is smaller than sr_ratios[{i}] = {sr_ratios[i]}")
            stages.append(PVTStage(prev, embed_dims[i], p, grid, depths[i], num_heads[i], mlp_ratios[i], sr_ratios[i],
                                   dropout, rates[done:done + depths[i]]))
            prev, done = embed_dims[i], done + depths[i]
        self.min_size = min(H, W)
        self.stages = nn.ModuleList(stages)
        self.norm = nn.LayerNorm(prev)
        self.head = nn.Linear(prev, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def check_input(self, x: torch.Tensor) -> None:
        super().check_input(x)
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"input images must be {self.image_size} (the position embeddings' grids), got {tuple(x.shape[-2:])}")

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output map, from fine to coarse."""
        self.check_input(x)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features.mean(dim=(2, 3)))


@MODELS.register("pvt", description="small PVT: two stages (2x2 patches), widths 32/64, SR ratios 2/1 (for 8x8 digits)")
def pvt(in_shape, num_classes: int, patch_sizes=(2, 2), embed_dims=(32, 64), num_heads=(1, 2), mlp_ratios=(2, 2),
        depths=(2, 2), sr_ratios=(2, 1), drop_path_rate: float = 0.0, dropout: float = 0.0) -> PyramidVisionTransformer:
    """A small PVT for the image size of ``in_shape``; every size is a keyword (``--model-kw``)."""
    c, h, w = parse_in_shape(in_shape, name="pvt")
    return PyramidVisionTransformer((h, w), patch_sizes, embed_dims, num_heads, mlp_ratios, depths, sr_ratios,
                                    dropout, drop_path_rate, num_classes, c)


@MODELS.register("pvt_tiny", description="PVT-Tiny (PVT v1 paper: 13.2M parameters at 224 with 1000 classes)")
def pvt_tiny(in_shape, num_classes: int, **kwargs) -> PyramidVisionTransformer:
    """PVT-Tiny: patches 4/2/2/2, widths 64/128/320/512, heads 1/2/5/8, MLP ratios 8/8/4/4, SR 8/4/2/1."""
    c, h, w = parse_in_shape(in_shape, name="pvt_tiny")
    return PyramidVisionTransformer((h, w), num_classes=num_classes, in_channels=c, **kwargs)
