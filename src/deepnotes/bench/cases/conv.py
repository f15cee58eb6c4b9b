"""Convolution ops against their native kernels (float32, CPU or the default device).

* ``deform_conv2d``: ours (bilinear gather + matmul) vs ``torchvision.ops.deform_conv2d`` — target <= 3;
* ``conv2d_im2col``: unfold + matmul vs ``F.conv2d`` (oneDNN / cuDNN) — reported only.
"""

from __future__ import annotations

import torch

from deepnotes.bench.api import BenchItem, bench_case
from deepnotes.bench.cases.classic import single_thread


@bench_case(
    "deform_conv2d",
    reference="torchvision.ops.deform_conv2d",
    requires=("torchvision",),
    target=3.0,
    description="deformable conv (offsets + mask) forward vs torchvision's native kernel",
)
def deform_case(quick: bool) -> list[BenchItem]:
    import torchvision

    from deepnotes.nn import deform_conv2d

    n, c, s = (2, 16, 16) if quick else (4, 32, 32)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, s, s, generator=g)
    w = torch.randn(c, c, 3, 3, generator=g)
    off = torch.randn(n, 18, s, s, generator=g)
    mask = torch.rand(n, 9, s, s, generator=g)
    torch.testing.assert_close(
        deform_conv2d(x, off, w, padding=1, mask=mask),
        torchvision.ops.deform_conv2d(x, off, w, padding=1, mask=mask),
        rtol=1e-4,
        atol=1e-4,
    )
    def ours():
        return deform_conv2d(x, off, w, padding=1, mask=mask)

    def ref():
        return torchvision.ops.deform_conv2d(x, off, w, padding=1, mask=mask)

    size = f"{n}x{c}x{s}x{s}, 3x3, {c} out"
    return [BenchItem(size=size, ours=ours, reference=ref),
            BenchItem(size=size + ", 1 thread", ours=single_thread(ours), reference=single_thread(ref))]


@bench_case(
    "conv2d_im2col",
    reference="torch.nn.functional.conv2d",
    requires=(),
    target=None,
    description="im2col convolution (unfold + matmul) vs F.conv2d",
)
def im2col_case(quick: bool) -> list[BenchItem]:
    import torch.nn.functional as F

    from deepnotes.nn import conv2d_im2col

    n, c, s = (4, 32, 16) if quick else (8, 64, 32)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, s, s, generator=g)
    w = torch.randn(c, c, 3, 3, generator=g)
    def ours():
        return conv2d_im2col(x, w, padding=1)

    def ref():
        return F.conv2d(x, w, padding=1)

    size = f"{n}x{c}x{s}x{s}, 3x3, {c} out"
    return [BenchItem(size=size, ours=ours, reference=ref),
            BenchItem(size=size + ", 1 thread", ours=single_thread(ours), reference=single_thread(ref))]
