"""Explanation maps on a small CNN vs captum: occlusion, saliency and Grad-CAM on the same batch.

Both sides score the same occluded images in batches of the same size (captum's
``perturbations_per_eval`` = our ``batch_size`` / N), so the ratio compares the bookkeeping
around the model, not the model itself. Reported, not targeted.
"""

from __future__ import annotations

import torch

from deepnotes.bench.api import BenchItem, bench_case


def _setup(n: int, size: int):
    from deepnotes.models.basic import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN((3, size, size), 10, width=8).eval()
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))
    return model, x


@bench_case("explain_maps", reference="captum.attr Occlusion, Saliency, LayerGradCam", requires=("captum",))
def explain_case(quick: bool) -> list[BenchItem]:
    from captum.attr import LayerGradCam, Occlusion, Saliency

    from deepnotes.explain import grad_cam, occlusion, saliency

    n, size, win, stride = 8, 32, 8, 4
    model, x = _setup(n, size)
    per_eval = 8  # occluded copies per image per forward pass, on both sides
    target = torch.arange(n) % 10
    ref_occ, ref_sal = Occlusion(model), Saliency(model)
    ref_cam = LayerGradCam(model, model.features[7])
    reps = 3 if quick else 7
    return [
        BenchItem(
            size=f"occlusion {n}×3×{size}×{size}, window {win}, stride {stride}",
            ours=lambda: occlusion(model, x, target, win, stride, batch_size=per_eval * n),
            reference=lambda: ref_occ.attribute(x, sliding_window_shapes=(3, win, win), strides=(1, stride, stride),
                                                target=target, perturbations_per_eval=per_eval),
            repeats=reps,
        ),
        BenchItem(size=f"saliency {n}×3×{size}×{size}", ours=lambda: saliency(model, x, target),
                  reference=lambda: ref_sal.attribute(x.clone().requires_grad_(), target=target, abs=True), repeats=reps),
        BenchItem(size=f"Grad-CAM {n}×3×{size}×{size}", ours=lambda: grad_cam(model, "features.7", x, target),
                  reference=lambda: ref_cam.attribute(x, target=target, relu_attributions=True), repeats=reps),
    ]
