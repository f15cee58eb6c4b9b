"""Our optimizers against their ``torch.optim`` twins: identical float64 trajectories."""

from __future__ import annotations

import copy
import inspect
import math

import pytest
import torch

from deepnotes.core.registry import OPTIMIZERS
from deepnotes.optim import SGD, Adagrad, Adam, Momentum, RMSProp
from tests._reference import assert_iterative

# (our class, torch twin, shared kwargs); each runs with two groups whose hyperparameters differ
CONFIGS = [
    (SGD, torch.optim.SGD, {"lr": 0.01}),
    (SGD, torch.optim.SGD, {"lr": 0.01, "weight_decay": 0.1, "maximize": False}),
    (SGD, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "dampening": 0.3}),
    (SGD, torch.optim.SGD, {"lr": 0.01, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    (Momentum, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
    (Momentum, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    (Adagrad, torch.optim.Adagrad, {"lr": 0.05}),
    (Adagrad, torch.optim.Adagrad,
     {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.2}),
    (RMSProp, torch.optim.RMSprop, {"lr": 0.01}),
    (RMSProp, torch.optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.5}),
    (RMSProp, torch.optim.RMSprop, {"lr": 0.005, "alpha": 0.9, "weight_decay": 0.1, "momentum": 0.9}),
    (Adam, torch.optim.Adam, {"lr": 0.01}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "amsgrad": True, "eps": 1e-6}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "maximize": True}),
]
IDS = [f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(CONFIGS)]


def make_params(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (5,), (2, 2, 3), (7,)]
    return [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]


# gradient scales from 1e-12 to 1e3, so tiny and huge gradients are both exercised; the
# curvature is capped at about 2 so every run is stable (a chaotic run would amplify rounding
# differences and compare nothing)
SCALES = [1e-12, 1e-4, 1.0, 1e3]


def loss_fn(params: list[torch.Tensor], sign: float = 1.0) -> torch.Tensor:
    total = 0.0
    for s, p in zip(SCALES, params):
        total = total + s * p.sum() + min(s, 1.0) * (0.5 * p.pow(2) + 0.3 * torch.sin(3 * p)).sum()
    return sign * total


def make_groups(params, kw, twin: bool):
    second = {"lr": kw["lr"] * 0.5}
    if "weight_decay" in kw:
        second["weight_decay"] = kw["weight_decay"] * 2
    return [{"params": params[:2]}, {"params": params[2:], **second}]


def run(opt_cls, kw, params, steps: int, sign: float = 1.0, opt_state=None):
    params = [p.clone().requires_grad_(True) for p in params]
    opt = opt_cls(make_groups(params, kw, False), **kw)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    traj = []
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(params, sign).backward()
        opt.step()
        traj.append(torch.cat([p.detach().flatten() for p in params]))
    return torch.stack(traj), params, opt


@pytest.mark.parametrize("ours, twin, kw", CONFIGS, ids=IDS)
def test_trajectory_matches_torch(ours, twin, kw):
    p0 = make_params()
    sign = -1.0 if kw.get("maximize") else 1.0
    a, _, _ = run(ours, kw, p0, 120, sign)
    b, _, _ = run(twin, {**kw, "foreach": False}, p0, 120, sign)
    assert torch.isfinite(a).all()
    assert (a[-1] - p0_flat(p0)).abs().max() > 1e-3  # the run actually moved
    assert_iterative(a, b)


def p0_flat(params):
    return torch.cat([p.flatten() for p in params])


@pytest.mark.parametrize("ours, twin, kw", CONFIGS, ids=IDS)
def test_state_dict_resume_equals_uninterrupted(ours, twin, kw):
    p0 = make_params(1)
    sign = -1.0 if kw.get("maximize") else 1.0
    full, _, _ = run(ours, kw, p0, 60, sign)
    first, params, opt = run(ours, kw, p0, 30, sign)
    state = copy.deepcopy(opt.state_dict())
    rest, _, _ = run(ours, kw, [p.detach() for p in params], 30, sign, opt_state=state)
    torch.testing.assert_close(torch.cat([first, rest]), full, rtol=0, atol=0)


@pytest.mark.parametrize("ours, twin, kw", CONFIGS[::3], ids=IDS[::3])
def test_step_with_closure(ours, twin, kw):
    results = []
    for cls in (ours, twin):
        params = [p.clone().requires_grad_(True) for p in make_params(2)]
        opt = cls(params, **kw)
        sign = -1.0 if kw.get("maximize") else 1.0
        losses = []
        for _ in range(20):
            def closure(opt=opt, params=params, sign=sign):
                opt.zero_grad()
                loss = loss_fn(params, sign)
                loss.backward()
                return loss
            losses.append(opt.step(closure).item())
        results.append((torch.tensor(losses), p0_flat([p.detach() for p in params])))
    assert_iterative(results[0][0], results[1][0])
    assert_iterative(results[0][1], results[1][1])


def test_params_without_grad_are_left_alone():
    a = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    b = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = Adam([a, b], lr=0.1)
    a.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(3, dtype=torch.float64))
    assert b not in opt.state
    assert not torch.equal(a.detach(), torch.ones(3, dtype=torch.float64))


def test_grad_tensor_is_not_modified_by_weight_decay():
    p = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = SGD([p], lr=0.1, weight_decay=0.5, momentum=0.9)
    p.grad = torch.full((2,), 2.0, dtype=torch.float64)
    opt.step()
    assert torch.equal(p.grad, torch.full((2,), 2.0, dtype=torch.float64))


@pytest.mark.parametrize(
    "ours, twin", [(SGD, torch.optim.SGD), (Adagrad, torch.optim.Adagrad),
                   (RMSProp, torch.optim.RMSprop), (Adam, torch.optim.Adam)]
)
def test_defaults_equal_torch(ours, twin):
    mine = inspect.signature(ours.__init__).parameters
    theirs = inspect.signature(twin.__init__).parameters
    for name, param in mine.items():
        if name in ("self", "params"):
            continue
        assert name in theirs, name
        assert param.default == theirs[name].default, name


@pytest.mark.parametrize(
    "name, twin, twin_kw",
    [
        ("sgd", torch.optim.SGD, {}),
        ("momentum", torch.optim.SGD, {"momentum": 0.9}),
        ("nesterov", torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
        ("adagrad", torch.optim.Adagrad, {}),
        ("rmsprop", torch.optim.RMSprop, {}),
        ("adam", torch.optim.Adam, {}),
    ],
)
def test_registry_creates_the_twin_of_torch(name, twin, twin_kw):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).double()
    ref = copy.deepcopy(model)
    opt = OPTIMIZERS.create(name, model.parameters(), lr=0.05)
    assert isinstance(opt, torch.optim.Optimizer)
    opt_ref = twin(ref.parameters(), lr=0.05, foreach=False, **twin_kw)
    x = torch.randn(8, 4, dtype=torch.float64)
    for m, o in ((model, opt), (ref, opt_ref)):
        for _ in range(10):
            o.zero_grad()
            m(x).pow(2).sum().backward()
            o.step()
    for a, b in zip(model.parameters(), ref.parameters()):
        assert_iterative(a, b)


def _p():
    return [torch.nn.Parameter(torch.zeros(2))]


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: SGD(_p(), lr=-0.1), "lr"),
        (lambda: SGD(_p(), lr=0.1, momentum=-0.5), "momentum"),
        (lambda: SGD(_p(), lr=0.1, weight_decay=-1.0), "weight_decay"),
        (lambda: SGD(_p(), lr=0.1, nesterov=True), "nesterov"),
        (lambda: SGD(_p(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
        (lambda: Momentum(_p(), lr=0.1, momentum=0.0), "momentum"),
        (lambda: Momentum(_p(), lr=-1.0), "lr"),
        (lambda: Adagrad(_p(), lr=-0.1), "lr"),
        (lambda: Adagrad(_p(), eps=0.0), "eps"),
        (lambda: Adagrad(_p(), lr_decay=-1.0), "lr_decay"),
        (lambda: Adagrad(_p(), initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda: RMSProp(_p(), lr=-0.1), "lr"),
        (lambda: RMSProp(_p(), eps=-1e-8), "eps"),
        (lambda: RMSProp(_p(), alpha=1.5), "alpha"),
        (lambda: RMSProp(_p(), momentum=-0.1), "momentum"),
        (lambda: Adam(_p(), lr=-1e-3), "lr"),
        (lambda: Adam(_p(), betas=(1.0, 0.999)), "betas"),
        (lambda: Adam(_p(), betas=(0.9, -0.1)), "betas"),
        (lambda: Adam(_p(), eps=0.0), "eps"),
        (lambda: Adam(_p(), eps=-1e-8), "eps"),
        (lambda: Adam(_p(), weight_decay=-0.1), "weight_decay"),
        (lambda: Adam(_p(), lr=math.nan), "lr"),
        (lambda: SGD(_p(), lr=0.1, momentum=0.9, dampening=math.inf), "dampening"),
        (lambda: Adagrad(_p(), weight_decay=-1.0), "weight_decay"),
        (lambda: RMSProp(_p(), weight_decay=-1.0), "weight_decay"),
        (lambda: Adam(_p(), betas=(0.9, 0.999, 0.1)), "betas"),
    ],
)
def test_bad_hyperparameters_raise_value_error(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="betas"):
        Adam(_p(), betas=0.9)
    with pytest.raises(TypeError, match="betas"):
        Adam(_p(), betas=(0.9, "0.999"))
    with pytest.raises(TypeError, match="lr"):
        SGD(_p(), lr="0.1")


def test_sparse_gradient_is_rejected():
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(ValueError, match="grad"):
        Adam([p]).step()


def test_works_with_torch_lr_schedulers():
    trajs = []
    for cls in (Adam, torch.optim.Adam):
        params = [p.clone().requires_grad_(True) for p in make_params(4)]
        opt = cls(params, lr=0.05)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
        out = []
        for _ in range(40):
            opt.zero_grad()
            loss_fn(params).backward()
            opt.step()
            sched.step()
            out.append(p0_flat([p.detach() for p in params]))
        trajs.append(torch.stack(out))
    assert_iterative(trajs[0], trajs[1])
