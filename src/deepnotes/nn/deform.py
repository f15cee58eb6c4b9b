"""Deformable convolution (v1 with offsets, v2 with an extra modulation mask).

Each kernel tap ``k`` of each output position samples the input at its regular grid position
plus a learned offset ``(Δy, Δx)``, read by bilinear interpolation; v2 multiplies each sample by a
mask value. The samples form the im2col columns, and the rest is an ordinary convolution matmul.
Signature, offset layout and border rule follow ``torchvision.ops.deform_conv2d``:

* ``offset[n, 2·(g·K + k)]`` is ``Δy`` and ``offset[n, 2·(g·K + k) + 1]`` is ``Δx`` for offset
  group ``g`` and kernel tap ``k = i·K_w + j``;
* a sample point with ``y ≤ −1``, ``y ≥ H``, ``x ≤ −1`` or ``x ≥ W`` reads 0, and any of its
  four neighbours outside the image contributes 0 (zero padding).
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_tensor
from deepnotes.nn.calculators import _pair


def _bilinear_gather(x: torch.Tensor, py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Sample ``x (N, G, Cg, H, W)`` at ``(py, px) (N, G, P)`` → ``(N, G, Cg, P)``, zero outside."""
    n, g, cg, h, w = x.shape
    flat = x.reshape(n, g, cg, h * w)
    inside = (py > -1) & (py < h) & (px > -1) & (px < w)
    y0, x0 = torch.floor(py), torch.floor(px)
    ly, lx = py - y0, px - x0  # fractional parts carry the gradient w.r.t. the offsets
    y0, x0 = y0.long(), x0.long()
    out = 0
    for dy, dx, wgt in ((0, 0, (1 - ly) * (1 - lx)), (0, 1, (1 - ly) * lx), (1, 0, ly * (1 - lx)), (1, 1, ly * lx)):
        yy, xx = y0 + dy, x0 + dx
        ok = inside & (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        idx = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).unsqueeze(2).expand(n, g, cg, -1)
        vals = torch.gather(flat, 3, idx)
        out = out + vals * (wgt * ok).unsqueeze(2)
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
    samples = _bilinear_gather(input.reshape(n, og, c // og, h, w), py.flatten(2), px.flatten(2))
    samples = samples.reshape(n, og, c // og, kk, oh * ow)
    if mask is not None:
        samples = samples * mask.reshape(n, og, 1, kk, oh * ow)
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
