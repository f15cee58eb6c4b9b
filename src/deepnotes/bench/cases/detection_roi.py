"""RoI operators against torchvision's native kernels (float32, CPU).

* ``roi_align``: ours (bilinear weights as a sparse matrix × channels-last features) vs
  ``torchvision.ops.roi_align`` — target <= 2.0; a Faster R-CNN-like setting: stride-16 features,
  RoIs of 16–256 image pixels, 7 × 7 bins, ``sampling_ratio=2``;
* ``roi_pool``: ours (padded window gather + first argmax) vs ``torchvision.ops.roi_pool`` — reported.
"""

from __future__ import annotations

import torch

from deepnotes.bench.api import BenchItem, bench_case
from deepnotes.bench.cases.classic import single_thread


def _problem(quick: bool):
    g = torch.Generator().manual_seed(0)
    n, c, s, k = (2, 64, 32, 128) if quick else (2, 256, 64, 512)
    image = s * 16
    x = torch.randn(n, c, s, s, generator=g)
    wh = 16 + torch.rand(k, 2, generator=g) * 240
    xy = torch.rand(k, 2, generator=g) * (image - wh)
    rois = torch.cat([torch.randint(0, n, (k, 1), generator=g).float(), xy, xy + wh], 1)
    return x, rois, f"{n}x{c}x{s}x{s}, {k} RoIs, 7x7"


@bench_case(
    "roi_align",
    reference="torchvision.ops.roi_align",
    requires=("torchvision",),
    target=2.0,
    description="RoI Align forward (7x7, sampling_ratio=2, scale 1/16) vs torchvision's native kernel",
)
def roi_align_case(quick: bool) -> list[BenchItem]:
    import torchvision

    from deepnotes.detection import roi_align

    x, rois, size = _problem(quick)
    torch.testing.assert_close(
        roi_align(x, rois, 7, 1 / 16, 2), torchvision.ops.roi_align(x, rois, 7, 1 / 16, 2), rtol=1e-4, atol=1e-5
    )

    def ours():
        return roi_align(x, rois, 7, 1 / 16, 2)

    def ref():
        return torchvision.ops.roi_align(x, rois, 7, 1 / 16, 2)

    return [BenchItem(size=size, ours=ours, reference=ref),
            BenchItem(size=size + ", 1 thread", ours=single_thread(ours), reference=single_thread(ref))]


@bench_case(
    "roi_pool",
    reference="torchvision.ops.roi_pool",
    requires=("torchvision",),
    target=None,
    description="RoI max pooling forward (7x7, scale 1/16) vs torchvision's native kernel",
)
def roi_pool_case(quick: bool) -> list[BenchItem]:
    import torchvision

    from deepnotes.detection import roi_pool

    x, rois, size = _problem(quick)
    torch.testing.assert_close(roi_pool(x, rois, 7, 1 / 16), torchvision.ops.roi_pool(x, rois, 7, 1 / 16))

    def ours():
        return roi_pool(x, rois, 7, 1 / 16)

    def ref():
        return torchvision.ops.roi_pool(x, rois, 7, 1 / 16)

    return [BenchItem(size=size, ours=ours, reference=ref)]
