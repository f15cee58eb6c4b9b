"""Saliency, occlusion, guided backprop and Grad-CAM equal captum's on the same models and inputs."""

import warnings

import pytest
import torch
from captum.attr import GuidedBackprop, LayerAttribution, LayerGradCam, Occlusion, Saliency

from deepnotes.explain import (
    cam_overlay,
    grad_cam,
    guided_backprop,
    occlusion,
    saliency,
    upsample_cam,
)
from tests._reference import assert_same_maths
from tests.explain._models import images, models

MODELS = models()
IDS = [m[0] for m in MODELS]
TARGETS = torch.tensor([0, 3, 1])


def _fresh(model):
    # captum and ours must see the same weights but never share hooks: use a copy for captum
    import copy

    return copy.deepcopy(model)


@pytest.mark.parametrize("name,model,layer", MODELS, ids=IDS)
def test_saliency_equals_captum(name, model, layer):
    x = images()
    ours = saliency(model, x, TARGETS)
    ref = Saliency(_fresh(model)).attribute(x.clone().requires_grad_(), target=TARGETS, abs=True)
    assert ours.dtype == torch.float64
    assert_same_maths(ours, ref, rtol=1e-6, atol=1e-6)  # the 1e-6 bar
    assert float(ours.abs().sum()) > 0


@pytest.mark.parametrize("name,model,layer", MODELS, ids=IDS)
def test_guided_backprop_equals_captum(name, model, layer):
    x = images()
    ours = guided_backprop(model, x, TARGETS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum warns that it sets backward hooks
        ref = GuidedBackprop(_fresh(model)).attribute(x.clone().requires_grad_(), target=TARGETS)
    assert_same_maths(ours, ref, rtol=1e-6, atol=1e-6)
    # and it is not just the plain gradient
    plain = saliency(model, x, TARGETS)
    assert not torch.allclose(ours.abs(), plain)


@pytest.mark.parametrize("name,model,layer", MODELS, ids=IDS)
def test_grad_cam_equals_captum(name, model, layer):
    x = images()
    ours = grad_cam(model, layer, x, TARGETS)
    ref_model = _fresh(model)
    ref_layer = dict(ref_model.named_modules())[layer]
    ref = LayerGradCam(ref_model, ref_layer).attribute(x.clone(), target=TARGETS, relu_attributions=True)
    assert ours.shape == ref.shape and ours.shape[1] == 1
    assert_same_maths(ours, ref, rtol=1e-6, atol=1e-6)
    for mode in ("bilinear", "nearest"):
        assert_same_maths(upsample_cam(ours, (8, 8), mode), LayerAttribution.interpolate(ref, (8, 8), mode))


@pytest.mark.parametrize("name,model,layer", MODELS, ids=IDS)
@pytest.mark.parametrize("window,stride,baseline", [(3, 1, 0.0), (2, 2, 0.5), ((3, 2), (2, 1), -1.0), (4, 3, 0.0)])
def test_occlusion_equals_captum(name, model, layer, window, stride, baseline):
    x = images()
    ours = occlusion(model, x, TARGETS, window, stride, baseline=baseline, batch_size=7)
    w = window if isinstance(window, tuple) else (window, window)
    s = stride if isinstance(stride, tuple) else (stride, stride)
    ref = Occlusion(_fresh(model)).attribute(
        x.clone(), sliding_window_shapes=(x.shape[1], *w), strides=(1, *s), baselines=baseline, target=TARGETS
    )
    # captum casts its float64 sums to float32 before dividing by the counts (format_result's .float()),
    # so its map is float32: compare at the 1e-6, not dtype-for-dtype
    assert ours.dtype == torch.float64 and ref.dtype == torch.float32
    assert_same_maths(ours, ref.double(), rtol=1e-6, atol=1e-6)


def test_occlusion_does_not_depend_on_batch_size():
    _, model, _ = MODELS[0]
    x = images()
    a = occlusion(model, x, 2, 3, 1, batch_size=1)
    b = occlusion(model, x, 2, 3, 1, batch_size=1000)
    assert_same_maths(a, b, rtol=1e-12, atol=1e-12)


def test_cam_overlay_peaks_at_one_and_keeps_zero_maps_zero():
    cam = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    cam[0, 0, 1, 0] = 3.0
    out = cam_overlay(cam, (4, 4), "nearest")
    assert out.shape == (2, 4, 4)
    assert torch.equal(out[0], torch.tensor([[0.0] * 4] * 2 + [[1.0, 1.0, 0.0, 0.0]] * 2, dtype=torch.float64))
    assert torch.equal(out[1], torch.zeros(4, 4, dtype=torch.float64))
