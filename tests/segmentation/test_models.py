"""Segmentation models: shape/gradient contract over the registry, architecture facts, the loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from deepnotes.core.registry import MODELS
from deepnotes.segmentation import (
    FCN,
    DeepLabV3Plus,
    SegNet,
    SeparableConv2d,
    bilinear_kernel,
    pixel_cross_entropy,
)
from deepnotes.segmentation.blocks import Encoder

SEGMENT = ["deeplabv1", "deeplabv2", "deeplabv3", "deeplabv3plus", "fcn16s", "fcn32s", "fcn8s", "segnet", "unet"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_registry_lists_every_segmentation_model():
    assert sorted(n for n in MODELS.names() if MODELS.meta(n).get("task") == "segment") == SEGMENT


@pytest.mark.parametrize("name", SEGMENT)
@pytest.mark.parametrize("size", [(32, 32), (37, 45)])
def test_segment_model_contract(name, size):
    torch.manual_seed(0)
    model = MODELS.create(name, (3, *size), 4, width=4)
    x = torch.rand(2, 3, *size)
    out = model(x)
    assert out.shape == (2, 4, *size)
    assert bool(torch.isfinite(out).all())
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    model.eval()
    with torch.no_grad():  # one image alone gives the same output as in a batch (eval mode)
        torch.testing.assert_close(model(x[:1]), model(x)[:1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", SEGMENT)
def test_segment_model_rejects_wrong_channels(name):
    model = MODELS.create(name, (3, 32, 32), 2, width=4)
    with pytest.raises(ValueError, match="expects 3"):
        model(torch.rand(1, 1, 32, 32))


def test_fcn32s_rejects_inputs_below_its_stride():
    with pytest.raises(ValueError, match="minimum input size 32x32"):
        MODELS.create("fcn32s", (3, 16, 16), 2)
    model = MODELS.create("fcn32s", (3, 32, 32), 2, width=4)
    with pytest.raises(ValueError, match="smaller than the minimum size 32x32"):
        model(torch.rand(1, 3, 16, 40))


def test_encoder_strides_and_atrous_keep_resolution():
    x = torch.rand(1, 3, 64, 64)
    for os_, expected in ((32, [32, 16, 8, 4, 2]), (16, [32, 16, 8, 4, 4]), (8, [32, 16, 8, 8, 8])):
        enc = Encoder(3, 4, output_stride=os_)
        assert [f.shape[-1] for f in enc(x)] == expected
    dilations = [m.dilation[0] for m in Encoder(3, 4, output_stride=8).modules() if isinstance(m, torch.nn.Conv2d)]
    assert dilations == [1, 1, 1, 1, 1, 1, 2, 2]  # stage 4 at rate 2 (stage 5: rate 4 in its pool slot)


def test_fcn_skip_scorers_start_at_zero_so_8s_equals_32s_path_at_init():
    torch.manual_seed(0)
    m = FCN(3, 3, variant=8, width=4).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        feats = m.encoder(x)
        s = m.score32(m.head(feats[4]))
        coarse = m.up[1](m.up[0](s))  # two bilinear 2x upsamplings, no skip contribution
        torch.testing.assert_close(m.logits(x), coarse)


def test_bilinear_kernel_upsamples_like_interpolate_inside():
    x = torch.rand(1, 2, 6, 6, dtype=torch.float64)
    up = F.conv_transpose2d(x, bilinear_kernel(2, 2).double(), stride=2, padding=1, groups=2)
    ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(up[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1])


def test_segnet_decoder_unpools_at_the_encoders_max_positions():
    torch.manual_seed(0)
    m = SegNet(1, 2, width=2, depth=1)
    seen = {}

    def grab(module, inputs, output):
        seen["unpooled"] = inputs[0]

    m.dec[0].register_forward_hook(grab)
    x = torch.rand(1, 1, 8, 8)
    m(x)
    enc = m.enc[0](x)
    pooled, idx = F.max_pool2d(enc, 2, 2, return_indices=True)
    expected = F.max_unpool2d(pooled, idx, 2, 2, output_size=enc.shape[-2:])
    torch.testing.assert_close(seen["unpooled"], expected)
    # only the argmax position of each 2x2 window may be non-zero
    windows = F.unfold(seen["unpooled"].flatten(0, 1).unsqueeze(1), 2, stride=2)
    assert bool(((windows != 0).sum(1) <= 1).all())


def test_separable_conv_has_fewer_weights_than_a_full_conv():
    sep = SeparableConv2d(32, 64)
    conv_weights = [p.numel() for n, p in sep.named_parameters() if n.endswith("weight") and p.dim() == 4]
    assert conv_weights == [32 * 9, 32 * 64]
    assert sum(conv_weights) < 32 * 64 * 9
    assert any(isinstance(m, SeparableConv2d) for m in DeepLabV3Plus(3, 2, width=4).aspp.modules())


# --- loss ----------------------------------------------------------------------------------------


def test_pixel_cross_entropy_equals_torch_with_ignore():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 4, (2, 5, 6), generator=g)
    target[0, 0, :3] = 255
    ours = pixel_cross_entropy(logits, target)
    ref = F.cross_entropy(logits, target, ignore_index=255)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    (g1,) = torch.autograd.grad(ours, logits)
    (g2,) = torch.autograd.grad(F.cross_entropy(logits, target, ignore_index=255), logits)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)


def test_pixel_cross_entropy_all_ignored_is_zero_not_nan():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = pixel_cross_entropy(logits, torch.full((1, 2, 2), 255))
    assert loss.item() == 0.0
    loss.backward()
    assert bool((logits.grad == 0).all())


def test_pixel_cross_entropy_rejects_label_out_of_range():
    with pytest.raises(ValueError, match=r"target labels must lie in \[0, 3\)"):
        pixel_cross_entropy(torch.randn(1, 3, 2, 2), torch.full((1, 2, 2), 3))


def test_pixel_cross_entropy_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"target must have shape \(1, 2, 2\)"):
        pixel_cross_entropy(torch.randn(1, 3, 2, 2), torch.zeros(1, 3, 2, dtype=torch.long))


def test_pixel_cross_entropy_rejects_float_target():
    with pytest.raises(TypeError, match="target must hold integer class labels"):
        pixel_cross_entropy(torch.randn(1, 3, 2, 2), torch.zeros(1, 2, 2))
