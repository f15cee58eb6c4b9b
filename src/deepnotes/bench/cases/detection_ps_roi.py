"""Position-sensitive RoI pooling (R-FCN) against torchvision's native kernel (float32, CPU).

* ``ps_roi_pool``: ours (integral image, four look-ups per bin) vs ``torchvision.ops.ps_roi_pool``
  — reported; an R-FCN-like setting: stride-8 score maps with ``k² · (C + 1)`` channels
  (k = 3, 4 classes), 300 RoIs.
"""

from __future__ import annotations

import torch

from deepnotes.bench.api import BenchItem, bench_case


def _problem(quick: bool):
    g = torch.Generator().manual_seed(0)
    n, s, k = (2, 16, 100) if quick else (2, 64, 300)
    c = 9 * 4
    x = torch.randn(n, c, s, s, generator=g)
    image = s * 8
    wh = 8 + torch.rand(k, 2, generator=g) * (image / 2)
    xy = torch.rand(k, 2, generator=g) * (image - wh)
    rois = torch.cat([torch.randint(0, n, (k, 1), generator=g).float(), xy, xy + wh], 1)
    return x, rois, f"{n}x{c}x{s}x{s}, {k} RoIs, 3x3"


@bench_case(
    "ps_roi_pool",
    reference="torchvision.ops.ps_roi_pool",
    requires=("torchvision",),
    target=None,
    description="position-sensitive RoI pooling forward (3x3, scale 1/8) vs torchvision's native kernel",
)
def ps_roi_pool_case(quick: bool) -> list[BenchItem]:
    import torchvision

    from deepnotes.detection.two_stage import ps_roi_pool

    x, rois, size = _problem(quick)
    torch.testing.assert_close(ps_roi_pool(x, rois, 3, 1 / 8), torchvision.ops.ps_roi_pool(x, rois, 3, 1 / 8),
                               rtol=1e-4, atol=1e-5)

    def ours():
        return ps_roi_pool(x, rois, 3, 1 / 8)

    def ref():
        return torchvision.ops.ps_roi_pool(x, rois, 3, 1 / 8)

    return [BenchItem(size=size, ours=ours, reference=ref)]
