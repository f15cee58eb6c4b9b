"""Swin Transformer (Liu et al. 2021) with ``torchvision.models.SwinTransformer``'s layout.

Attention is computed inside non-overlapping ``M × M`` windows (cost linear in the image area);
every second block shifts the windows by ``⌊M/2⌋`` (a cyclic roll of the map) so information crosses
window borders. After the roll a window can hold pixels that were not neighbours; the attention
mask forbids pairs from different regions. Each head adds a learned bias indexed by the relative
offset of the two positions in the window::

    Attention(Q, K, V) = softmax(Q Kᵀ / √d + B + mask) V,   B[i, j] = table[rel(i, j)]

Between stages, patch merging concatenates each 2×2 neighbourhood (``4C`` channels), normalizes and
maps it to ``2C`` — halving the resolution, doubling the width, like a CNN's pyramid.

Parameter names equal torchvision's, so ``ours.load_state_dict(tv_swin.state_dict())`` works and
``swin_t`` has exactly torchvision's 28,288,354 parameters with 1000 classes. As in torchvision,
a map that is not a multiple of the window is zero-padded, and a window at least as large as the
(padded) map is not shifted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.attention.functional import scaled_dot_product_attention
from deepnotes.attention.vit import _mlp, _pair
from deepnotes.core.checks import check_int, check_probability, check_type
from deepnotes.core.registry import MODELS
from deepnotes.models.interface import ImageClassifier, parse_in_shape
from deepnotes.nn.stochastic_depth import StochasticDepth


class Permute(nn.Module):
    """``x.permute(*dims)`` as a layer (between the NCHW convolution and the NHWC blocks)."""

    def __init__(self, dims):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


def window_partition(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """``(B, H, W, C)`` → ``(B, nW, Mh·Mw, C)``: windows in row-major order, pixels row-major inside."""
    B, H, W, C = x.shape
    mh, mw = window
    x = x.reshape(B, H // mh, mh, W // mw, mw, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, (H // mh) * (W // mw), mh * mw, C)


def window_merge(windows: torch.Tensor, window: tuple[int, int], H: int, W: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B, nW, Mh·Mw, C)`` → ``(B, H, W, C)``."""
    B, _, _, C = windows.shape
    mh, mw = window
    x = windows.reshape(B, H // mh, W // mw, mh, mw, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, H, W, C)


def relative_position_index(window: tuple[int, int]) -> torch.Tensor:
    """``(Mh·Mw · Mh·Mw,)`` index into the ``(2Mh-1)(2Mw-1)`` bias table for each pair ``(i, j)``.

    The offset ``(dy, dx) = pos_i - pos_j`` lies in ``[-(Mh-1), Mh-1] × [-(Mw-1), Mw-1]``; shifted to be
    non-negative it is read row-major: ``(dy + Mh - 1)·(2Mw - 1) + (dx + Mw - 1)``.
    """
    mh, mw = window
    ys, xs = torch.meshgrid(torch.arange(mh), torch.arange(mw), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + mh - 1
    dx = xs[:, None] - xs[None, :] + mw - 1
    return (dy * (2 * mw - 1) + dx).flatten()


def shift_region_mask(H: int, W: int, window: tuple[int, int], shift: tuple[int, int]) -> torch.Tensor:
    """Boolean ``(nW, T, T)``: ``True`` where two positions of a rolled window come from the same region.

    Rolling by ``-s`` moves the first ``s`` rows (columns) to the end. Along each axis the rolled map
    has three regions: ``[0, H-M)``, ``[H-M, H-s)`` and ``[H-s, H)`` (the wrapped-around rows). The
    windows of the first region lie inside it; the last window holds the other two, which were not
    neighbours before the roll and so must not attend to each other.
    """
    def regions(n: int, m: int, s: int) -> torch.Tensor:
        idx = torch.arange(n)
        return (idx >= n - m).long() + (idx >= n - s).long()

    label = regions(H, window[0], shift[0])[:, None] * 3 + regions(W, window[1], shift[1])[None, :]
    lab = window_partition(label[None, :, :, None], window)[0, :, :, 0]  # (nW, T)
    return lab[:, :, None] == lab[:, None, :]


def shifted_window_attention(
    x: torch.Tensor,
    qkv: nn.Linear,
    proj: nn.Linear,
    bias: torch.Tensor,
    window: tuple[int, int],
    shift: tuple[int, int],
    num_heads: int,
    attention_dropout: float = 0.0,
    dropout: float = 0.0,
    training: bool = False,
) -> torch.Tensor:
    """(Shifted-)window multi-head self-attention of ``x (Tensor[B, H, W, C])`` → same shape.

    ``bias (Tensor[heads, T, T])`` is the relative position bias, ``T = Mh·Mw``.
    """
    B, H, W, C = x.shape
    mh, mw = window
    x = F.pad(x, (0, 0, 0, (mw - W % mw) % mw, 0, (mh - H % mh) % mh))  # zero-pad to whole windows
    Hp, Wp = x.shape[1:3]
    # a window covering the whole (padded) axis has nothing to shift across
    shift = (0 if mh >= Hp else shift[0], 0 if mw >= Wp else shift[1])
    shifted = any(shift)
    if shifted:
        x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    win = window_partition(x, window)  # (B, nW, T, C)
    nW, T, d = win.shape[1], win.shape[2], C // num_heads
    q, k, v = qkv(win).reshape(B, nW, T, 3, num_heads, d).permute(3, 0, 1, 4, 2, 5)  # each (B, nW, heads, T, d)
    mask = bias  # (heads, T, T), broadcast over batch and windows
    if shifted:
        same = shift_region_mask(Hp, Wp, window, shift).to(x.device)  # (nW, T, T)
        mask = bias + torch.zeros(same.shape, dtype=bias.dtype, device=x.device).masked_fill(~same, float("-inf"))[:, None]
    p = attention_dropout if training else 0.0
    out = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, nW, heads, T, d)
    out = proj(out.transpose(2, 3).reshape(B, nW, T, C))
    out = F.dropout(out, dropout, training)
    x = window_merge(out, window, Hp, Wp)
    if shifted:
        x = torch.roll(x, shifts=shift, dims=(1, 2))
    return x[:, :H, :W].contiguous()


class ShiftedWindowAttention(nn.Module):
    """Window attention with a relative position bias table ``((2Mh-1)(2Mw-1), heads)``."""

    def __init__(self, dim, window_size, shift_size, num_heads, attention_dropout=0.0, dropout=0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.window_size, self.shift_size = _pair("window_size", window_size), tuple(shift_size)
        self.num_heads, self.attention_dropout, self.dropout = num_heads, attention_dropout, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        mh, mw = self.window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * mh - 1) * (2 * mw - 1), num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(self.window_size))

    def relative_position_bias(self) -> torch.Tensor:
        """``(heads, T, T)``: the table read at each pair's relative offset."""
        T = self.window_size[0] * self.window_size[1]
        return self.relative_position_bias_table[self.relative_position_index].reshape(T, T, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shifted_window_attention(
            x, self.qkv, self.proj, self.relative_position_bias(), self.window_size, self.shift_size,
            self.num_heads, self.attention_dropout, self.dropout, self.training,
        )


class SwinTransformerBlock(nn.Module):
    """``x + SD(W-MSA(LN₁ x))`` then ``+ SD(MLP(LN₂ ·))`` on ``(B, H, W, C)`` maps."""

    def __init__(self, dim, num_heads, window_size, shift_size, mlp_ratio=4.0, dropout=0.0,
                 attention_dropout=0.0, stochastic_depth_prob=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = ShiftedWindowAttention(dim, window_size, shift_size, num_heads, attention_dropout, dropout)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = _mlp(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """``(B, H, W, C)`` → ``(B, ⌈H/2⌉, ⌈W/2⌉, 2C)``: concatenate each 2×2 block, LayerNorm, Linear(4C → 2C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[1:3]
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))  # odd side: one zero row / column
        # order of the four pixels: (even, even), (odd, even), (even, odd), (odd, odd) — torchvision's
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class SwinTransformer(ImageClassifier):
    """Swin Transformer: patch embedding, stages of (shifted-)window blocks joined by patch merging.

    ``forward_features`` returns the normalized last-stage map ``(N, C, H', W')``; ``forward_head``
    averages it and classifies. Block ``i`` of a stage shifts its windows when ``i`` is odd; the
    stochastic-depth rate grows linearly from 0 to ``stochastic_depth_prob`` over all blocks.

    Example
    -------
    >>> m = SwinTransformer(patch_size=1, embed_dim=8, depths=[2, 2], num_heads=[2, 2], window_size=4,
    ...                     num_classes=10, in_channels=1)
    >>> m(torch.rand(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        patch_size,
        embed_dim: int,
        depths,
        num_heads,
        window_size,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        stochastic_depth_prob: float = 0.1,
        num_classes: int = 1000,
        in_channels: int = 3,
    ):
        super().__init__()
        patch = _pair("patch_size", patch_size)
        window = _pair("window_size", window_size)
        embed_dim = check_int("embed_dim", embed_dim, min=1)
        check_type("depths", depths, (list, tuple))
        check_type("num_heads", num_heads, (list, tuple))
        if len(depths) != len(num_heads) or not depths:
            raise ValueError(f"depths and num_heads must be non-empty and of equal length, got {depths} and {num_heads}")
        depths = [check_int(f"depths[{i}]", d, min=1) for i, d in enumerate(depths)]
        sd = check_probability("stochastic_depth_prob", stochastic_depth_prob)
        for i, h in enumerate(num_heads):
            if (embed_dim * 2**i) % check_int(f"num_heads[{i}]", h, min=1):
                raise ValueError(f"stage {i} width {embed_dim * 2**i} must be divisible by num_heads[{i}] = {h}")
        self.in_channels = check_int("in_channels", in_channels, min=1)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.min_size = max(patch)
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(in_channels, embed_dim, kernel_size=patch, stride=patch),
                          Permute([0, 2, 3, 1]), nn.LayerNorm(embed_dim, eps=1e-5))
        ]
        total, block_id = sum(depths), 0
        for i, depth in enumerate(depths):
            dim = embed_dim * 2**i
            stage = []
            for j in range(depth):
                shift = [0, 0] if j % 2 == 0 else [w // 2 for w in window]
                p = sd * block_id / max(total - 1, 1)
                stage.append(SwinTransformerBlock(dim, num_heads[i], window, shift, mlp_ratio, dropout, attention_dropout, p))
                block_id += 1
            layers.append(nn.Sequential(*stage))
            if i < len(depths) - 1:
                layers.append(PatchMerging(dim))
        self.features = nn.Sequential(*layers)
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features, eps=1e-5)
        self.permute = Permute([0, 3, 1, 2])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.head = nn.Linear(self.num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.permute(self.norm(self.features(x)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.avgpool(features)))


@MODELS.register("swin", description="small Swin: 2x2 patches, width 48, depths (2, 2), 2x2 windows (for 8x8 digits)")
def swin(in_shape, num_classes: int, patch_size=2, embed_dim: int = 48, depths=(2, 2), num_heads=(3, 6),
         window_size=2, mlp_ratio: float = 2.0, stochastic_depth_prob: float = 0.1, dropout: float = 0.0) -> SwinTransformer:
    """A small Swin for the image size of ``in_shape``; every size is a keyword (``--model-kw``).

    On 8×8 digits: a 4×4 grid of 2×2-pixel tokens in 2×2 windows (every second block shifted by one
    token), merged to 2×2 for the second stage. One-pixel tokens (``patch_size=1``) learn far more
    slowly: a token is then a single intensity times one embedding vector.
    """
    c, _, _ = parse_in_shape(in_shape, name="swin")
    return SwinTransformer(patch_size, embed_dim, list(depths), list(num_heads), window_size, mlp_ratio, dropout,
                           0.0, stochastic_depth_prob, num_classes, c)


@MODELS.register("swin_t", description="Swin-T (torchvision's swin_t layout; 28,288,354 parameters with 1000 classes)")
def swin_t(in_shape, num_classes: int, **kwargs) -> SwinTransformer:
    """Swin-Tiny: 4×4 patches, width 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24), 7×7 windows."""
    c, _, _ = parse_in_shape(in_shape, name="swin_t")
    kwargs.setdefault("stochastic_depth_prob", 0.2)
    return SwinTransformer([4, 4], 96, [2, 2, 6, 2], [3, 6, 12, 24], [7, 7], num_classes=num_classes, in_channels=c, **kwargs)
