import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from deepnotes.nn.batchnorm import BatchNorm1d, BatchNorm2d, batch_norm
from deepnotes.nn.dropout import DropConnectLinear, Dropout, Dropout2d, dropout, dropout2d
from deepnotes.nn.fractional_pool import FractionalMaxPool2d, fractional_max_pool2d
from deepnotes.nn.regularizers import (
    add_penalty_grad_,
    elastic_net_penalty,
    l1_penalty,
    l2_penalty,
    max_norm_,
)
from deepnotes.nn.stochastic_depth import StochasticDepth, stochastic_depth
from tests._reference import assert_forward_backward, assert_same_maths

pytestmark = pytest.mark.usefixtures("one_thread")


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _seeded(fn, seed=7):
    def run(*a):
        torch.manual_seed(seed)
        return fn(*a)
    return run


# -- dropout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_matches_torch_with_same_seed(p):
    x = _x(6, 5, 4)
    assert_forward_backward(_seeded(lambda t: dropout(t, p)), _seeded(lambda t: F.dropout(t, p, True)), x)
    assert_forward_backward(_seeded(lambda t: dropout2d(t, p)), _seeded(lambda t: F.dropout2d(t, p, True)),
                            _x(3, 4, 5, 5))
    m, ref = Dropout(p), nn.Dropout(p)
    assert_forward_backward(_seeded(m), _seeded(ref), x)


def test_dropout_statistics_and_exact_cases():
    g = torch.Generator().manual_seed(0)
    x = torch.ones(200_000, dtype=torch.float64)
    for p in (0.2, 0.5, 0.9):
        out = dropout(x, p, generator=g)
        kept = int((out != 0).sum())
        n = x.numel()
        # binomial(n, 1-p): |kept - n(1-p)| below 5 standard deviations
        assert abs(kept - n * (1 - p)) < 5 * math.sqrt(n * p * (1 - p))
        assert torch.all((out == 0) | (out == 1 / (1 - p)))
        assert abs(out.mean().item() - 1) < 5 * math.sqrt(p / (1 - p) / n)
    assert torch.equal(dropout(x, 0.0), x)
    m = Dropout(0.7).eval()
    assert torch.equal(m(x), x)
    maps = dropout2d(torch.ones(50, 40, 3, 3), 0.5, generator=g)
    per_map = maps.flatten(2)
    assert torch.all((per_map == per_map[..., :1]).all(-1))  # whole channels kept or dropped
    assert 0.4 < (per_map[..., 0] > 0).double().mean() < 0.6


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_p_outside_0_1(p):
    for make in (lambda: Dropout(p), lambda: Dropout2d(p), lambda: DropConnectLinear(3, 2, p=p),
                 lambda: dropout(torch.ones(2), p)):
        with pytest.raises(ValueError, match="p must be"):
            make()
    with pytest.raises(ValueError, match="input must have 3 or 4"):
        dropout2d(torch.ones(2, 3), 0.5)


def test_dropconnect_is_linear_with_a_masked_weight():
    torch.manual_seed(0)
    layer = DropConnectLinear(5, 4, p=0.4, dtype=torch.float64)
    x = _x(7, 5)
    g = torch.Generator().manual_seed(3)
    layer.generator = g
    out = layer(x)
    mask = torch.empty(4, 5, dtype=torch.float64).bernoulli_(0.6, generator=torch.Generator().manual_seed(3))
    assert_same_maths(out, F.linear(x, layer.weight * mask / 0.6, layer.bias))
    layer.eval()
    assert_same_maths(layer(x), F.linear(x, layer.weight, layer.bias))
    # expectation over many masks equals the plain layer
    layer.train()
    mean = torch.stack([layer(x) for _ in range(3000)]).mean(0)
    assert torch.allclose(mean, F.linear(x, layer.weight, layer.bias), atol=0.15)


# -- batch norm ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("ours_cls", "ref_cls", "shape"), [
    (BatchNorm1d, nn.BatchNorm1d, (8, 3)), (BatchNorm1d, nn.BatchNorm1d, (8, 3, 5)),
    (BatchNorm2d, nn.BatchNorm2d, (4, 3, 5, 6)),
])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_matches_torch_train_and_eval(ours_cls, ref_cls, shape, momentum):
    ref = ref_cls(3, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(_x(3, seed=1))
        ref.bias.copy_(_x(3, seed=2))
    ours = ours_cls(3, momentum=momentum, dtype=torch.float64)
    ours.load_state_dict(ref.state_dict())  # strict: same keys
    assert list(ours.state_dict()) == list(ref.state_dict())
    for step in range(3):
        x = _x(*shape, seed=10 + step) * 2 + 1
        assert_forward_backward(ours, ref, x)  # two forward passes each: stats updated twice on both
        for k, v in ref.state_dict().items():
            assert_same_maths(ours.state_dict()[k], v)
    ours.eval()
    ref.eval()
    assert_forward_backward(ours, ref, _x(*shape, seed=99))
    # gradients w.r.t. the affine parameters
    x = _x(*shape, seed=5)
    ours.train()
    ref.train()
    go = _x(*shape, seed=6)
    (ours(x) * go).sum().backward()
    (ref(x) * go).sum().backward()
    assert_same_maths(ours.weight.grad, ref.weight.grad)
    assert_same_maths(ours.bias.grad, ref.bias.grad)


def test_batchnorm_without_tracking_and_without_affine():
    x = _x(6, 4, 3, 3)
    ours = BatchNorm2d(4, affine=False, track_running_stats=False, dtype=torch.float64).eval()
    ref = nn.BatchNorm2d(4, affine=False, track_running_stats=False, dtype=torch.float64).eval()
    assert list(ours.state_dict()) == list(ref.state_dict()) == []
    assert_forward_backward(ours, ref, x)
    assert_same_maths(batch_norm(x, None, None, training=True), F.batch_norm(x, None, None, training=True))


def test_batchnorm_bad_inputs():
    with pytest.raises(ValueError, match="num_features"):
        BatchNorm2d(0)
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm2d(3, momentum=1.5)
    with pytest.raises(ValueError, match="input must have 3 channels"):
        BatchNorm2d(3)(torch.ones(2, 4, 2, 2))
    with pytest.raises(ValueError, match="input must have 4"):
        BatchNorm2d(3)(torch.ones(2, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(3)(torch.ones(1, 3))


@pytest.mark.parametrize("name", ["running_mean", "running_var", "weight", "bias"])
def test_batch_norm_checks_every_argument_before_updating_the_buffers(name):
    """A wrong-length running mean raised only after the caller's buffers had been modified."""
    x = torch.randn(8, 3, 4, dtype=torch.float64)
    args = {"running_mean": torch.zeros(3, dtype=torch.float64), "running_var": torch.ones(3, dtype=torch.float64),
            "weight": torch.ones(3, dtype=torch.float64), "bias": torch.zeros(3, dtype=torch.float64)}
    args[name] = torch.ones(4, dtype=torch.float64)
    before = {k: v.clone() for k, v in args.items()}
    with pytest.raises(ValueError, match=f"{name} must be a tensor of shape \\(3,\\)"):
        batch_norm(x, args["running_mean"], args["running_var"], args["weight"], args["bias"], training=True)
    for k, v in args.items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(ValueError, match="together"):
        batch_norm(x, torch.zeros(3, dtype=torch.float64), None, training=True)


# -- stochastic depth -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["row", "batch"])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_stochastic_depth_matches_torchvision(mode, p):
    x = _x(16, 3, 4)
    assert_forward_backward(_seeded(lambda t: stochastic_depth(t, p, mode)),
                            _seeded(lambda t: torchvision.ops.stochastic_depth(t, p, mode)), x)
    m, ref = StochasticDepth(p, mode), torchvision.ops.StochasticDepth(p, mode)
    assert_forward_backward(_seeded(m), _seeded(ref), x)
    m.eval()
    assert torch.equal(m(x), x)


def test_stochastic_depth_row_statistics_and_errors():
    g = torch.Generator().manual_seed(1)
    out = stochastic_depth(torch.ones(20_000, 3), 0.25, "row", generator=g)
    rows = out[:, 0]
    assert torch.all(out == rows[:, None])
    kept = int((rows > 0).sum())
    assert abs(kept - 15_000) < 5 * math.sqrt(20_000 * 0.25 * 0.75)
    with pytest.raises(ValueError, match="p must be"):
        stochastic_depth(out, 1.5, "row")
    with pytest.raises(ValueError, match="mode must be one of"):
        StochasticDepth(0.1, "column")


# -- fractional max pooling ------------------------------------------------------------------------
@pytest.mark.parametrize(("kernel", "size", "ratio"), [(2, (5, 6), None), (3, None, (0.5, 0.5)), ((2, 3), (10, 4), None),
                                                       (2, (1, 1), None)])
def test_fractional_max_pool_matches_torch(kernel, size, ratio):
    x = _x(2, 3, 11, 13)
    samples = torch.rand(2, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    kw = {"output_size": size, "output_ratio": ratio, "_random_samples": samples}
    assert_forward_backward(lambda t: fractional_max_pool2d(t, kernel, **kw),
                            lambda t: F.fractional_max_pool2d(t, kernel, **kw), x)
    out, idx = fractional_max_pool2d(x, kernel, return_indices=True, **kw)
    ref_out, ref_idx = F.fractional_max_pool2d(x, kernel, return_indices=True, **kw)
    assert torch.equal(idx, ref_idx)
    # same global seed, no explicit samples: same draws as torch's module
    torch.manual_seed(5)
    a = FractionalMaxPool2d(kernel, output_size=size, output_ratio=ratio)(x)
    torch.manual_seed(5)
    b = nn.FractionalMaxPool2d(kernel, output_size=size, output_ratio=ratio)(x)
    assert torch.equal(a, b)


def test_fractional_pool_region_properties():
    # consecutive starts differ by floor or ceil of alpha, the last window touches the border
    from deepnotes.nn.fractional_pool import fractional_intervals

    u = torch.rand(500, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    starts = fractional_intervals(u, 25, 9, 2)
    alpha = (25 - 2) / 8
    steps = starts.diff(dim=-1)
    assert set(steps.unique().tolist()) <= {math.floor(alpha), math.ceil(alpha)}
    assert torch.all(starts[:, 0] == 0) and torch.all(starts[:, -1] == 23)
    out = fractional_max_pool2d(_x(3, 13, 13), 2, output_size=6)  # unbatched input
    assert out.shape == (3, 6, 6)
    with pytest.raises(ValueError, match="does not fit"):
        fractional_max_pool2d(_x(1, 1, 5, 5), 3, output_size=4)
    with pytest.raises(ValueError, match="exactly one of"):
        fractional_max_pool2d(_x(1, 1, 5, 5), 2)
    with pytest.raises(ValueError, match="_random_samples must have shape"):
        fractional_max_pool2d(_x(1, 1, 5, 5), 2, output_size=2, _random_samples=torch.rand(1, 2, 2))


# -- penalties and max-norm --------------------------------------------------------------------------
def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()


def test_l2_penalty_equals_torch_weight_decay_over_steps():
    ours, ref = _net(), _net()
    for layer in (ours, ref):  # biases would also be decayed by torch: keep them out of both
        for m in layer:
            if isinstance(m, nn.Linear):
                m.bias.requires_grad_(False)
    x, y = _x(10, 5), _x(10, 3, seed=1)
    opt_ours = torch.optim.SGD([p for p in ours.parameters() if p.requires_grad], lr=0.1)
    opt_ref = torch.optim.SGD([p for p in ref.parameters() if p.requires_grad], lr=0.1, weight_decay=0.3)
    for _ in range(60):
        opt_ours.zero_grad()
        (F.mse_loss(ours(x), y) + l2_penalty(ours, 0.3)).backward()
        opt_ours.step()
        opt_ref.zero_grad()
        F.mse_loss(ref(x), y).backward()
        opt_ref.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_penalty_values_and_grad_helper():
    net = _net()
    ws = [net[0].weight, net[2].weight]
    assert_same_maths(l1_penalty(net, 0.2), 0.2 * sum(w.abs().sum() for w in ws))
    assert_same_maths(l2_penalty(net, 0.2), 0.1 * sum((w**2).sum() for w in ws))
    assert_same_maths(elastic_net_penalty(net, 0.2, 0.3), 0.06 * sum(w.abs().sum() for w in ws)
                      + 0.07 * sum((w**2).sum() for w in ws))
    x = _x(4, 5)
    a, b = _net(), _net()
    with torch.no_grad():
        a[0].weight[0, 0] = 0.0
        b[0].weight[0, 0] = 0.0
    (a(x).sum() + l1_penalty(a, 0.05) + l2_penalty(a, 0.2)).backward()
    b(x).sum().backward()
    add_penalty_grad_(b, l1=0.05, l2=0.2)
    for p, q in zip(a.parameters(), b.parameters()):
        assert_same_maths(p.grad, q.grad)
    for fn in (l1_penalty, l2_penalty, elastic_net_penalty):
        with pytest.raises(ValueError, match="weight must be >= 0"):
            fn(net, -0.1)
    with pytest.raises(ValueError, match="l1 must be >= 0"):
        add_penalty_grad_(net, l1=-1.0)
    with pytest.raises(ValueError, match="l1_ratio"):
        elastic_net_penalty(net, 0.1, 1.5)


def test_max_norm_matches_torch_renorm():
    w = _x(6, 4) * 3
    conv = _x(5, 2, 3, 3)
    for t in (w, conv):
        ours = t.clone()
        max_norm_([ours], 2.0, eps=1e-7)
        assert_same_maths(ours, torch.renorm(t, p=2, dim=0, maxnorm=2.0))
    small = _x(3, 2) * 1e-3
    kept = small.clone()
    max_norm_([kept], 2.0)
    assert torch.equal(kept, small)  # rows inside the ball are untouched bit for bit
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        max_norm_([w], 0.0)


def test_batchnorm_handwritten_backward_gradcheck():
    x = _x(4, 3, 2, 2).requires_grad_()
    w = _x(3, seed=1).requires_grad_()
    b = _x(3, seed=2).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w, b: batch_norm(x, None, None, w, b, training=True), (x, w, b))
    assert torch.autograd.gradcheck(lambda x: batch_norm(x, None, None, training=True), (_x(5, 2).requires_grad_(),))


@settings(max_examples=30, derandomize=True, deadline=None)
@given(scale=st.floats(0.01, 100.0), shift=st.floats(-100.0, 100.0), seed=st.integers(0, 2**16))
def test_batchnorm_training_output_is_invariant_to_input_affine_maps(scale, shift, seed):
    # normalizing by the batch's own mean and std removes any positive scale and any shift
    x = _x(6, 3, 2, 2, seed=seed)
    bn = BatchNorm2d(3, eps=1e-12, dtype=torch.float64)
    torch.testing.assert_close(bn(x * scale + shift), bn(x), rtol=1e-6, atol=1e-6)


@settings(max_examples=30, derandomize=True, deadline=None)
@given(p=st.floats(0.0, 0.95), seed=st.integers(0, 2**16))
def test_dropout_output_is_zero_or_scaled_input(p, seed):
    x = _x(50, seed=seed)
    out = dropout(x, p, generator=torch.Generator().manual_seed(seed))
    kept = out != 0
    torch.testing.assert_close(out[kept], x[kept] / (1 - p), rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("offset", [0.0, 1e2, 1e4, 1e5])
def test_float32_batchnorm_is_as_accurate_as_torch_against_float64(offset):
    """Mean and centring in the input type made float32 BatchNorm 2–6× less accurate than
    torch's under large offsets; the statistics are now accumulated in float64."""
    g = torch.Generator().manual_seed(int(offset) % 97)
    x = (torch.randn(32, 6, 8, 8, generator=g, dtype=torch.float64) * 0.5 + offset).float()
    ref = F.batch_norm(x.double(), None, None, training=True)
    err = {}
    for name, fn in (("ours", batch_norm), ("torch", F.batch_norm)):
        rm, rv = torch.zeros(6), torch.ones(6)
        rm64, rv64 = torch.zeros(6, dtype=torch.float64), torch.ones(6, dtype=torch.float64)
        out = fn(x, rm, rv, training=True, momentum=0.3)
        F.batch_norm(x.double(), rm64, rv64, training=True, momentum=0.3)
        err[name] = (float((out.double() - ref).abs().max()), float((rm.double() - rm64).abs().max()),
                     float((rv.double() - rv64).abs().max()))
    for ours, theirs in zip(err["ours"], err["torch"]):
        assert ours <= theirs * 1.01 + 1e-12, err
