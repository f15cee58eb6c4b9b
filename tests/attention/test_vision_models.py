"""ViT, Swin and PVT: parameter counts and outputs against torchvision with copied weights (float64),
shifted-window masking against its definition, spatial-reduction attention against torch's MHA."""

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import swin_transformer as tv_swin

from deepnotes.attention import (
    PatchMerging,
    PyramidVisionTransformer,
    SpatialReductionAttention,
    SwinTransformer,
    VisionTransformer,
    shifted_window_attention,
    swin_t,
    vit_b_16,
)
from deepnotes.attention.swin import relative_position_index
from deepnotes.core.registry import MODELS
from tests._reference import assert_same_maths

D = torch.float64


def _count(m):
    return sum(p.numel() for p in m.parameters())


def _perturb(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _compare_models(ours, ref, x):
    ours.eval()
    ref.eval()
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    o1, o2 = ours(x1), ref(x2)
    assert_same_maths(o1, o2)
    go = torch.randn_like(o2)
    g1 = torch.autograd.grad((o1 * go).sum(), [x1, *ours.parameters()])
    g2 = torch.autograd.grad((o2 * go).sum(), [x2, *ref.parameters()])
    for a, b in zip(g1, g2):
        assert_same_maths(a, b)


# --- standard configurations: counted, on the meta device (no memory, no weights downloaded) ---


def test_vit_b_16_parameter_count_equals_torchvision():
    with torch.device("meta"):
        ours, ref = vit_b_16((3, 224, 224), 1000), torchvision.models.vit_b_16()
    assert _count(ours) == _count(ref) == 86_567_656
    assert list(ours.state_dict()) == list(ref.state_dict())


def test_swin_t_parameter_count_equals_torchvision():
    with torch.device("meta"):
        ours, ref = swin_t((3, 224, 224), 1000), torchvision.models.swin_t()
    assert _count(ours) == _count(ref) == 28_288_354
    assert list(ours.state_dict()) == list(ref.state_dict())


def test_pvt_tiny_parameter_count_is_the_papers():
    with torch.device("meta"):
        m = MODELS.create("pvt_tiny", (3, 224, 224), 1000)
    assert round(_count(m) / 1e6, 1) == 13.2  # PVT paper, Table 2: PVT-Tiny 13.2M


# --- small configurations: equal outputs and gradients with torchvision's weights ---


def test_vit_matches_torchvision():
    torch.manual_seed(0)
    ref = torchvision.models.VisionTransformer(16, 4, 2, 2, 8, 16, num_classes=5).double()
    _perturb(ref)  # torchvision's head starts at zero; move it so that the output depends on everything
    ours = VisionTransformer(16, 4, 2, 2, 8, 16, num_classes=5).double()
    ours.load_state_dict(ref.state_dict())
    _compare_models(ours, ref, torch.randn(3, 3, 16, 16, dtype=D))


def test_vit_attention_maps_are_the_layers_weights():
    torch.manual_seed(0)
    vit = VisionTransformer(8, 2, 2, 2, 8, 16, num_classes=3, in_channels=1).double().eval()
    x = torch.rand(2, 1, 8, 8, dtype=D)
    maps = vit.attention_maps(x)
    assert [tuple(m.shape) for m in maps] == [(2, 2, 17, 17)] * 2
    assert_same_maths(maps[0].sum(-1), torch.ones(2, 2, 17, dtype=D))
    h = vit.encoder.layers[0].ln_1(vit.tokens(x) + vit.encoder.pos_embedding)
    _, w = vit.encoder.layers[0].self_attention(h, h, h, average_attn_weights=False)
    assert_same_maths(maps[0], w)


@pytest.mark.parametrize("size,window", [(24, 3), (20, 3), (26, 3), (16, 8)])
def test_swin_matches_torchvision(size, window):
    """Divisible maps, maps padded to whole windows, and a window as large as the map (no shift)."""
    torch.manual_seed(0)
    args = ([2, 2], 16, [2, 2, 2], [2, 4, 4], [window, window])
    ref = torchvision.models.SwinTransformer(*args, num_classes=5).double()
    _perturb(ref)
    ours = SwinTransformer(*args, num_classes=5).double()
    ours.load_state_dict(ref.state_dict())
    _compare_models(ours, ref, torch.randn(2, 3, size, size, dtype=D))


def test_swin_block_rectangular_window_matches_torchvision():
    torch.manual_seed(1)
    ref = tv_swin.SwinTransformerBlock(8, 2, [2, 4], [1, 2]).double()
    _perturb(ref)
    from deepnotes.attention import SwinTransformerBlock

    ours = SwinTransformerBlock(8, 2, [2, 4], [1, 2]).double()
    ours.load_state_dict(ref.state_dict())
    _compare_models(ours, ref, torch.randn(2, 6, 8, 8, dtype=D))


def test_patch_merging_matches_torchvision():
    ref = tv_swin.PatchMerging(6).double()
    _perturb(ref)
    ours = PatchMerging(6).double()
    ours.load_state_dict(ref.state_dict())
    for hw in ((4, 6), (5, 7)):  # odd sides are zero-padded
        _compare_models(ours, ref, torch.randn(2, *hw, 6, dtype=D))


def test_relative_position_index_loop():
    mh, mw = 2, 3
    idx = relative_position_index((mh, mw)).reshape(6, 6)
    pos = [(y, x) for y in range(mh) for x in range(mw)]
    for i, (yi, xi) in enumerate(pos):
        for j, (yj, xj) in enumerate(pos):
            assert idx[i, j] == (yi - yj + mh - 1) * (2 * mw - 1) + (xi - xj + mw - 1)


def test_shifted_windows_see_exactly_their_region():
    """8×8 map, 4×4 windows shifted by 2: rows (and columns) group as {0,1}, {2..5}, {6,7} — the
    cyclic roll must not let the wrapped-around border pixels see each other. Checked through the
    Jacobian: output (r, c) depends on input (r', c') iff both lie in the same groups."""
    torch.manual_seed(0)
    qkv, proj = nn.Linear(4, 12).double(), nn.Linear(4, 4).double()
    bias = torch.zeros(2, 16, 16, dtype=D)
    x = torch.randn(1, 8, 8, 4, dtype=D)

    def f(inp):
        return shifted_window_attention(inp, qkv, proj, bias, (4, 4), (2, 2), 2)

    jac = torch.autograd.functional.jacobian(f, x)[0, :, :, :, 0]  # (8, 8, 4, 8, 8, 4)
    influence = jac.abs().sum(dim=(2, 5)) > 0  # (r, c, r', c')
    group = torch.tensor([0, 0, 1, 1, 1, 1, 2, 2])
    same = (group[:, None] == group[None, :])
    expected = same[:, None, :, None] & same[None, :, None, :]
    assert torch.equal(influence, expected)
    # without the shift: plain 4×4 blocks
    jac0 = torch.autograd.functional.jacobian(
        lambda inp: shifted_window_attention(inp, qkv, proj, bias, (4, 4), (0, 0), 2), x
    )[0, :, :, :, 0]
    block = torch.arange(8) // 4
    same0 = block[:, None] == block[None, :]
    assert torch.equal(jac0.abs().sum(dim=(2, 5)) > 0, same0[:, None, :, None] & same0[None, :, None, :])


@pytest.mark.parametrize("sr_ratio", [1, 2])
def test_spatial_reduction_attention_matches_torch_mha(sr_ratio):
    torch.manual_seed(0)
    sra = SpatialReductionAttention(8, 2, sr_ratio=sr_ratio).double()
    _perturb(sra)
    mha = nn.MultiheadAttention(8, 2, batch_first=True, dtype=D)
    mha.load_state_dict({
        "in_proj_weight": torch.cat([sra.q.weight, sra.kv.weight]),
        "in_proj_bias": torch.cat([sra.q.bias, sra.kv.bias]),
        "out_proj.weight": sra.proj.weight,
        "out_proj.bias": sra.proj.bias,
    })
    x = torch.randn(3, 16, 8, dtype=D)

    def ref(inp):
        if sr_ratio == 1:
            kv = inp
        else:
            grid = inp.transpose(1, 2).reshape(3, 8, 4, 4)
            kv = sra.norm(sra.sr(grid).flatten(2).transpose(1, 2))
        return mha(inp, kv, kv, need_weights=False)[0]

    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    o1, o2 = sra(x1, 4, 4), ref(x2)
    assert_same_maths(o1, o2)
    assert o1.shape == (3, 16, 8) and sra.reduced(x, 4, 4).shape == (3, 16 // sr_ratio**2, 8)
    go = torch.randn_like(o1)
    assert_same_maths(torch.autograd.grad((o1 * go).sum(), x1)[0], torch.autograd.grad((o2 * go).sum(), x2)[0])


def test_pvt_pyramid_shapes():
    m = MODELS.create("pvt", (1, 8, 8), 10)
    maps = m.pyramid(torch.rand(2, 1, 8, 8))
    assert [tuple(f.shape) for f in maps] == [(2, 32, 4, 4), (2, 64, 2, 2)]
    with torch.device("meta"):
        big = MODELS.create("pvt_tiny", (3, 224, 224), 1000)
        assert [tuple(f.shape[1:]) for f in big.pyramid(torch.empty(1, 3, 224, 224))] == [
            (64, 56, 56), (128, 28, 28), (320, 14, 14), (512, 7, 7)]


# --- registry contract for the models registered here ---

SMALL = ["vit", "swin", "pvt"]


@pytest.mark.parametrize("name", SMALL)
def test_registered_model_contract(name):
    torch.manual_seed(0)
    model = MODELS.create(name, (1, 8, 8), 3)
    x = torch.rand(2, 1, 8, 8)
    out = model(x)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    if name == "vit":  # the zero-initialized head blocks every other gradient at step 0
        nn.init.normal_(model.heads.head.weight)
        out = model(x)
    out.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x))


def test_standard_models_run_on_the_meta_device():
    with torch.device("meta"):
        for name in ("vit_b_16", "swin_t"):
            m = MODELS.create(name, (3, 224, 224), 7)
            assert m(torch.empty(2, 3, 224, 224)).shape == (2, 7)


# --- bad input ---


def test_vit_image_not_divisible_by_patch_raises():
    with pytest.raises(ValueError, match="must be divisible by patch_size"):
        VisionTransformer(10, 4, 1, 2, 8, 16)


def test_vit_wrong_input_size_raises():
    m = MODELS.create("vit", (1, 8, 8), 3)
    with pytest.raises(ValueError, match=r"input images must be \(8, 8\)"):
        m(torch.rand(2, 1, 12, 12))


def test_vit_heads_not_dividing_width_raises():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        MODELS.create("vit", (1, 8, 8), 3, hidden_dim=30, num_heads=4)


def test_swin_depths_heads_length_mismatch_raises():
    with pytest.raises(ValueError, match="depths and num_heads"):
        SwinTransformer(2, 16, [2, 2], [2], 4)


def test_swin_heads_not_dividing_stage_width_raises():
    with pytest.raises(ValueError, match=r"stage 1 width 32 must be divisible by num_heads\[1\] = 3"):
        SwinTransformer(2, 16, [2, 2], [2, 3], 4)


def test_swin_wrong_channels_raises():
    m = MODELS.create("swin", (1, 8, 8), 3)
    with pytest.raises(ValueError, match="3 channels but SwinTransformer expects 1"):
        m(torch.rand(2, 3, 8, 8))


def test_pvt_grid_smaller_than_reduction_raises():
    with pytest.raises(ValueError, match="smaller than sr_ratios"):
        PyramidVisionTransformer(8, patch_sizes=(4,), embed_dims=(8,), num_heads=(1,), mlp_ratios=(2,), depths=(1,),
                                 sr_ratios=(4,))


def test_pvt_lists_of_different_length_raise():
    with pytest.raises(ValueError, match="same non-zero length"):
        PyramidVisionTransformer(8, patch_sizes=(2, 2), embed_dims=(8,), num_heads=(1,), mlp_ratios=(2,),
                                 depths=(1,), sr_ratios=(1,))


def test_pvt_image_not_divisible_raises():
    with pytest.raises(ValueError, match="divisible by the total patch stride 4"):
        MODELS.create("pvt", (1, 10, 10), 3)
