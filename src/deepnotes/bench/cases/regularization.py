"""Our written-out ``BatchNorm2d`` and ``Dropout`` against torch's fused kernels, forward + backward.

Ours runs several elementwise ops and reductions (mean, variance, normalize, affine; mask, scale)
that autograd differentiates one by one; torch's native batch norm and dropout do each in one
kernel with a hand-written backward. The ratio shows what writing the layer out costs.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.bench.api import BenchItem, bench_case
from deepnotes.nn.batchnorm import BatchNorm2d
from deepnotes.nn.dropout import Dropout


def _fwd_bwd(layer: nn.Module, x: torch.Tensor, go: torch.Tensor):
    def run():
        x.grad = None
        layer(x).backward(go)
        return x.grad

    return run


@bench_case("batchnorm2d", reference="torch.nn.BatchNorm2d",
            description="train-mode forward + backward of BatchNorm2d on (N, C, H, W) float32")
def batchnorm2d_case(quick: bool) -> list[BenchItem]:
    n, c, hw = (32, 32, 16) if quick else (64, 64, 32)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, hw, hw, generator=g, requires_grad=True)
    go = torch.randn(n, c, hw, hw, generator=g)
    return [BenchItem(size=f"({n}, {c}, {hw}, {hw})", ours=_fwd_bwd(BatchNorm2d(c), x, go),
                      reference=_fwd_bwd(nn.BatchNorm2d(c), x, go))]


@bench_case("dropout", reference="torch.nn.Dropout", description="train-mode forward + backward of Dropout(0.5)")
def dropout_case(quick: bool) -> list[BenchItem]:
    n = 1 << (20 if quick else 22)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, generator=g, requires_grad=True)
    go = torch.randn(n, generator=g)
    return [BenchItem(size=f"{n} elements", ours=_fwd_bwd(Dropout(0.5), x, go),
                      reference=_fwd_bwd(nn.Dropout(0.5), x, go))]
