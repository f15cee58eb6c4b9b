"""Deformable convolution (v1 with offsets, v2 with an extra modulation mask).

Each kernel tap ``k`` of each output position samples the input at its regular grid position
plus a learned offset ``(Δy, Δx)``, read by bilinear interpolation; v2 multiplies each sample by a
mask value. The samples form the im2col columns, and the rest is an ordinary convolution matmul.
Signature, offset layout and border rule follow ``torchvision.ops.deform_conv2d``:

* ``offset[n, 2·(g·K + k)]`` is ``Δy`` and ``offset[n, 2·(g·K + k) + 1]`` is ``Δx`` for offset
  group ``g`` and kernel tap ``k = i·K_w + j``;
* a sample point with ``y ≤ −1``, ``y ≥ H``, ``x ≤ −1`` or ``x ≥ W`` reads 0, and any of its
  four neighbours outside the image contributes 0 (zero padding); so does a point at an
  infinite or NaN offset (its offset gradient is 0, where torchvision's is NaN for the other
  coordinate).
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_tensor
from deepnotes.nn.calculators import _pair


def _bilinear_gather(x: torch.Tensor, py: torch.Tensor, px: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """Sample ``x (N, G, Cg, H, W)`` at ``(py, px) (N, G, P)`` → ``(N, G, P, Cg)``, zero outside.

    ``scale (N, G, P)`` (the DCN v2 mask) multiplies each sample; it is folded into the four
    bilinear weights so the gathered values are touched only once.
    """
    n, g, cg, h, w = x.shape
    # channels last: each gathered row is one contiguous Cg-vector, so one index_select does all taps
    rows = x.permute(0, 1, 3, 4, 2).reshape(n * g * h * w, cg)
    inside = (py > -1) & (py < h) & (px > -1) & (px < w)
    # points outside (infinite or NaN offsets included) read 0: park them at 0 so that no inf − inf
    # turns their zero weight into NaN
    py, px = torch.where(inside, py, 0.0), torch.where(inside, px, 0.0)
    y0, x0 = torch.floor(py), torch.floor(px)
    ly, lx = py - y0, px - x0  # fractional parts carry the gradient w.r.t. the offsets
    y0, x0 = y0.long(), x0.long()
    corner_y = torch.stack([y0, y0, y0 + 1, y0 + 1])  # (4, N, G, P): the four neighbours
    corner_x = torch.stack([x0, x0 + 1, x0, x0 + 1])
    weights = torch.stack([(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx])
    ok = inside & (corner_y >= 0) & (corner_y < h) & (corner_x >= 0) & (corner_x < w)
    base = (torch.arange(n * g, device=x.device) * (h * w)).view(1, n, g, 1)
    idx = base + corner_y.clamp(0, h - 1) * w + corner_x.clamp(0, w - 1)
    weights = weights * ok
    if scale is not None:
        weights = weights * scale
    weights = weights.unsqueeze(-1)
    vals = rows.index_select(0, idx.reshape(-1)).view(4, n, g, -1, cg)
    out = vals[0] * weights[0]
    for i in (1, 2, 3):  # accumulate corner by corner: no 4× temporary and no separate sum pass
        out = out.addcmul(vals[i], weights[i])
    return out


def deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = (1, 1),
    padding: int | tuple[int, int] = (0, 0),
    dilation: int | tuple[int, int] = (1, 1),
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Deformable 2-D convolution with ``torchvision.ops.deform_conv2d``'s signature.

    Parameters
    ----------
    input : Tensor[N, C_in, H, W]
    offset : Tensor[N, 2·offset_groups·K_h·K_w, H_out, W_out]
        ``offset_groups`` is inferred and must divide ``C_in``.
    weight : Tensor[C_out, C_in / groups, K_h, K_w]
        ``groups = C_in / weight.shape[1]``.
    bias : Tensor[C_out], optional
    stride, padding, dilation : int or (int, int)
    mask : Tensor[N, offset_groups·K_h·K_w, H_out, W_out], optional
        Modulation (DCN v2); ``None`` means all ones (DCN v1).

    Returns
    -------
    Tensor[N, C_out, H_out, W_out]
        With zero offsets and no mask this equals ``F.conv2d``.
    """
    check_tensor("input", input, ndim=4, floating=True)
    check_tensor("offset", offset, ndim=4, floating=True)
    check_tensor("weight", weight, ndim=4, floating=True)
    sh, sw = _pair("stride", stride, min=1)
    ph, pw = _pair("padding", padding, min=0)
    dh, dw = _pair("dilation", dilation, min=1)
    n, c, h, w = input.shape
    cout, cin_g, kh, kw = weight.shape
    kk = kh * kw
    if cin_g == 0 or c % cin_g:
        raise ValueError(f"weight.shape[1] ({cin_g}) must divide the input channels ({c})")
    groups = c // cin_g
    if cout % groups:
        raise ValueError(f"weight.shape[0] ({cout}) must be divisible by groups ({groups})")
    if dh * (kh - 1) + 1 > h + 2 * ph or dw * (kw - 1) + 1 > w + 2 * pw:
        raise ValueError(f"weight kernel {kh}x{kw} is larger than the padded input {h + 2 * ph}x{w + 2 * pw}")
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if offset.shape[0] != n or offset.shape[2:] != (oh, ow) or offset.shape[1] % (2 * kk) or offset.shape[1] == 0:
        raise ValueError(
            f"offset must have shape ({n}, 2·offset_groups·{kk}, {oh}, {ow}), got {tuple(offset.shape)}"
        )
    og = offset.shape[1] // (2 * kk)
    if c % og:
        raise ValueError(f"offset implies {og} offset groups, which must divide the input channels ({c})")
    if mask is not None:
        check_tensor("mask", mask, ndim=4, floating=True)
        if tuple(mask.shape) != (n, og * kk, oh, ow):
            raise ValueError(f"mask must have shape ({n}, {og * kk}, {oh}, {ow}), got {tuple(mask.shape)}")
    if bias is not None:
        check_tensor("bias", bias, ndim=1, floating=True)
        if bias.shape[0] != cout:
            raise ValueError(f"bias must have {cout} elements, got {bias.shape[0]}")

    dev, dt = input.device, input.dtype
    # regular sampling grid: base[k, p] for tap k = (i, j) and output position p = (oy, ox)
    iy = torch.arange(kh, device=dev, dtype=dt).repeat_interleave(kw) * dh
    ix = torch.arange(kw, device=dev, dtype=dt).repeat(kh) * dw
    oy = torch.arange(oh, device=dev, dtype=dt).repeat_interleave(ow) * sh - ph
    ox = torch.arange(ow, device=dev, dtype=dt).repeat(oh) * sw - pw
    off = offset.reshape(n, og, kk, 2, oh * ow)
    py = (iy[:, None] + oy[None, :]) + off[:, :, :, 0]  # (N, og, K, L)
    px = (ix[:, None] + ox[None, :]) + off[:, :, :, 1]
    scale = None if mask is None else mask.reshape(n, og, kk * oh * ow)
    samples = _bilinear_gather(input.reshape(n, og, c // og, h, w), py.flatten(2), px.flatten(2), scale)
    samples = samples.reshape(n, og, kk, oh * ow, c // og).permute(0, 1, 4, 2, 3)  # (N, og, Cg, K, L)
    cols = samples.reshape(n, groups, cin_g * kk, oh * ow)  # im2col columns, channel-major
    out = torch.matmul(weight.reshape(groups, cout // groups, cin_g * kk).unsqueeze(0), cols)
    out = out.reshape(n, cout, oh, ow)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


class DeformConv2d(nn.Module):
    """Deformable convolution layer with ``torchvision.ops.DeformConv2d``'s parameters.

    ``forward(input, offset, mask=None)``; the offsets (and mask) usually come from a plain conv
    on the same input, initialized to zero so training starts from a regular convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        cin = check_int("in_channels", in_channels, min=1)
        cout = check_int("out_channels", out_channels, min=1)
        groups = check_int("groups", groups, min=1)
        if cin % groups or cout % groups:
            raise ValueError(f"groups ({groups}) must divide in_channels ({cin}) and out_channels ({cout})")
        kh, kw = _pair("kernel_size", kernel_size, min=1)
        self.stride, self.padding = _pair("stride", stride, min=1), _pair("padding", padding, min=0)
        self.dilation, self.groups = _pair("dilation", dilation, min=1), groups
        self.weight = nn.Parameter(torch.empty(cout, cin // groups, kh, kw))
        self.bias = nn.Parameter(torch.empty(cout)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # same scheme as torchvision / nn.Conv2d: Kaiming-uniform with a = √5, fan-in bias bound
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / fan_in**0.5
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return deform_conv2d(input, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)
