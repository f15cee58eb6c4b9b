"""Convolution as a matrix product (im2col) and transposed convolution as its adjoint (col2im).

A 2-D convolution takes the dot product of every flattened input patch with every flattened
kernel. ``F.unfold`` lays the patches out as columns (im2col), so the whole layer is one batched
matrix product. The transposed convolution is the adjoint of that linear map: multiply by the
transposed kernel matrix, then scatter-add the columns back onto the image with ``F.fold``
(col2im). Both follow ``torch.nn.functional.conv2d`` / ``conv_transpose2d`` argument by argument.

Example
-------
>>> import torch
>>> x, w = torch.randn(2, 4, 9, 9), torch.randn(6, 2, 3, 3)
>>> y = conv2d_im2col(x, w, stride=2, padding=1, groups=2)
>>> tuple(y.shape)
(2, 6, 5, 5)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.core.checks import check_int, check_tensor
from deepnotes.nn.calculators import _pair


def _check_conv_args(input: torch.Tensor, weight: torch.Tensor, bias, groups: int, transposed: bool):
    check_tensor("input", input, ndim=4, floating=True)
    check_tensor("weight", weight, ndim=4, floating=True)
    groups = check_int("groups", groups, min=1)
    c = input.shape[1]
    if c % groups:
        raise ValueError(f"groups ({groups}) must divide the input channels ({c})")
    want = weight.shape[0] if transposed else weight.shape[1] * groups
    if c != want:
        kind = "weight.shape[0]" if transposed else "weight.shape[1]·groups"
        raise ValueError(f"input has {c} channels but {kind} = {want}; check weight and groups")
    out_c = weight.shape[1] * groups if transposed else weight.shape[0]
    if not transposed and out_c % groups:
        raise ValueError(f"groups ({groups}) must divide weight.shape[0] ({out_c})")
    if bias is not None:
        check_tensor("bias", bias, ndim=1, floating=True)
        if bias.shape[0] != out_c:
            raise ValueError(f"bias must have {out_c} elements, got {bias.shape[0]}")
    return groups, out_c


def conv2d_im2col(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """2-D convolution (cross-correlation) as unfold → matmul → reshape.

    Parameters
    ----------
    input : Tensor[N, C_in, H, W]
    weight : Tensor[C_out, C_in / groups, K_h, K_w]
    bias : Tensor[C_out], optional
    stride, dilation : int or (int, int)
    padding : int, (int, int), ``"valid"`` or ``"same"`` (stride 1 only; extra padding goes
        right/bottom, like ``F.conv2d``)
    groups : int
        Channels are split into ``groups`` independent convolutions.

    Returns
    -------
    Tensor[N, C_out, H_out, W_out]
        ``H_out = (H + 2·P − D·(K − 1) − 1) // S + 1``.

    Raises
    ------
    ValueError
        Channel/groups mismatch, or a kernel larger than the padded input (names ``weight``).
    """
    groups, out_c = _check_conv_args(input, weight, bias, groups, transposed=False)
    sh, sw = _pair("stride", stride, min=1)
    dh, dw = _pair("dilation", dilation, min=1)
    kh, kw = weight.shape[-2:]
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid', 'same' or int(s), got {padding!r}")
        if padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError("padding='same' needs stride 1 (as in torch)")
            th, tw = dh * (kh - 1), dw * (kw - 1)
            # asymmetric total padding: the extra pixel goes to the bottom/right
            input = F.pad(input, (tw // 2, tw - tw // 2, th // 2, th - th // 2))
        ph = pw = 0
    else:
        ph, pw = _pair("padding", padding, min=0)
    n, c, h, w = input.shape
    if dh * (kh - 1) + 1 > h + 2 * ph or dw * (kw - 1) + 1 > w + 2 * pw:
        raise ValueError(
            f"weight has kernel {kh}x{kw} (dilation {dh}x{dw}) larger than the padded input "
            f"{h + 2 * ph}x{w + 2 * pw}"
        )
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = F.unfold(input, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
    # cols: (N, C·Kh·Kw, L) — each column is one flattened receptive field
    cols = cols.view(n, groups, (c // groups) * kh * kw, oh * ow)
    wmat = weight.reshape(groups, out_c // groups, -1)
    out = torch.matmul(wmat.unsqueeze(0), cols)  # (N, G, C_out/G, L): patch · kernel for all pairs
    out = out.reshape(n, out_c, oh, ow)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def conv_transpose2d_col2im(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> torch.Tensor:
    """Transposed convolution written as the adjoint of :func:`conv2d_im2col`.

    ``cols = Wᵀ·x`` spreads every input pixel over a ``K_h × K_w`` patch of every output channel;
    ``F.fold`` (col2im) sums the overlapping patches into the output image. This is exactly the
    gradient of the convolution with respect to its input, which is why it upsamples.

    Parameters
    ----------
    input : Tensor[N, C_in, H, W]
    weight : Tensor[C_in, C_out / groups, K_h, K_w]  (torch's layout for transposed convs)
    bias : Tensor[C_out], optional
    stride, padding, output_padding, dilation : int or (int, int)
        ``output_padding`` must be smaller than ``stride`` or ``dilation`` (as in torch).
    groups : int

    Returns
    -------
    Tensor[N, C_out, H_out, W_out]
        ``H_out = (H − 1)·S − 2·P + D·(K − 1) + output_padding + 1``.
    """
    groups, out_c = _check_conv_args(input, weight, bias, groups, transposed=True)
    sh, sw = _pair("stride", stride, min=1)
    ph, pw = _pair("padding", padding, min=0)
    oph, opw = _pair("output_padding", output_padding, min=0)
    dh, dw = _pair("dilation", dilation, min=1)
    if (oph >= sh and oph >= dh) or (opw >= sw and opw >= dw):
        raise ValueError("output_padding must be smaller than either stride or dilation")
    n, c, h, w = input.shape
    kh, kw = weight.shape[-2:]
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"padding {ph}x{pw} is too large: the output would be {oh}x{ow}")
    x = input.reshape(n, groups, c // groups, h * w)
    wmat = weight.reshape(groups, c // groups, -1).transpose(1, 2)  # (G, C_out/G·Kh·Kw, C_in/G)
    cols = torch.matmul(wmat.unsqueeze(0), x).reshape(n, out_c * kh * kw, h * w)
    out = F.fold(cols, (oh, ow), (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


class Im2colConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, same initialization) whose forward is :func:`conv2d_im2col`."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            raise ValueError("padding_mode must be 'zeros' for Im2colConv2d")
        return conv2d_im2col(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Col2imConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` whose forward is :func:`conv_transpose2d_col2im`."""

    def forward(self, input: torch.Tensor, output_size=None) -> torch.Tensor:
        if output_size is not None:
            raise ValueError("output_size is not supported; pass output_padding instead")
        return conv_transpose2d_col2im(
            input, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )
