"""The scalar engine against torch.autograd in float64: values and every gradient."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.autograd import MLP, Value, vmax, vsum
from tests._reference import assert_same_maths as _same


def assert_same_maths(a, b) -> None:
    # python floats and lists become float64 tensors (torch.as_tensor would pick float32)
    _same(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64))

OPS = ("add", "sub", "mul", "div", "pow2", "pow3", "sqrt", "exp", "log", "tanh", "sigmoid", "relu", "max", "neg")


def apply(op: str, a, b, lib: str):
    """The same op on two Values (lib='v') or two float64 scalar tensors (lib='t')."""
    t = lib == "t"
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / b
    if op == "pow2":
        return a**2
    if op == "pow3":
        return a**3
    if op == "sqrt":
        return a**0.5
    if op == "neg":
        return -a
    if op == "max":
        return torch.maximum(a, b) if t else vmax(a, b)
    if op in ("exp", "log", "tanh", "sigmoid", "relu"):
        return getattr(torch, op)(a) if t else getattr(a, op)()
    raise AssertionError(op)


def valid(op: str, a: float, b: float) -> bool:
    # keep every op inside its domain and every value moderate, so both sides stay finite
    return {
        "div": abs(b) > 0.2,
        "sqrt": a > 0.1,
        "log": a > 0.1,
        "exp": a < 4,
        "pow3": abs(a) < 5,
        "pow2": abs(a) < 20,
        "mul": abs(a * b) < 100,
    }.get(op, True)


programs = st.tuples(
    st.lists(st.floats(-2, 2, allow_nan=False), min_size=1, max_size=4),
    st.lists(
        st.tuples(st.sampled_from(OPS), st.integers(0, 10**6), st.integers(0, 10**6)),
        min_size=1,
        max_size=25,
    ),
)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(programs)
def test_random_expression_graphs_match_torch(program):
    inputs, steps = program
    vals = [Value(x) for x in inputs]
    tens = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    vpool, tpool = list(vals), list(tens)
    for op, i, j in steps:
        i, j = i % len(vpool), j % len(vpool)  # operands may repeat: a value used twice
        if not valid(op, vpool[i].data, vpool[j].data):
            op = "add"
        vpool.append(apply(op, vpool[i], vpool[j], "v"))
        tpool.append(apply(op, tpool[i], tpool[j], "t"))
    # the output combines several nodes, so gradients reach many paths
    out_v = vsum(vpool[-3:]) * 0.5
    out_t = sum(tpool[-3:]) * 0.5
    out_v.backward()
    out_t.backward()
    assert_same_maths(out_v.data, out_t.item())
    for v, t in zip(vals, tens):
        expected = 0.0 if t.grad is None else t.grad.item()
        assert_same_maths(v.grad, expected)


def test_mlp_matches_torch_values_and_every_gradient():
    net = MLP(3, [4, 4, 2], activation="tanh", seed=3)
    layers = []
    for k, layer in enumerate(net.layers):
        lin = torch.nn.Linear(len(layer.neurons[0].w), len(layer.neurons)).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons]))
            lin.bias.copy_(torch.tensor([n.b.data for n in layer.neurons]))
        layers.append(lin)
        if k < len(net.layers) - 1:
            layers.append(torch.nn.Tanh())
    ref = torch.nn.Sequential(*layers)
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(5, 3, generator=g, dtype=torch.float64)
    ys = torch.randn(5, 2, generator=g, dtype=torch.float64)
    # mean squared error over a batch of 5, one graph
    loss_v = vsum((o - float(y)) ** 2 for x, yy in zip(xs, ys) for o, y in zip(net(x.tolist()), yy)) / 10
    loss_t = ((ref(xs) - ys) ** 2).mean()
    loss_v.backward()
    loss_t.backward()
    assert_same_maths(loss_v.data, loss_t.item())
    for layer, lin in zip(net.layers, [m for m in ref if isinstance(m, torch.nn.Linear)]):
        assert_same_maths([[w.grad for w in n.w] for n in layer.neurons], lin.weight.grad)
        assert_same_maths([n.b.grad for n in layer.neurons], lin.bias.grad)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "linear"])
def test_mlp_other_activations_match_torch(activation):
    net = MLP(2, [3, 1], activation=activation, seed=1)
    w1 = torch.tensor([[w.data for w in n.w] for n in net.layers[0].neurons], dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor([[w.data for w in n.w] for n in net.layers[1].neurons], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([0.7, -1.3], dtype=torch.float64)
    act = {"relu": torch.relu, "sigmoid": torch.sigmoid, "linear": lambda z: z}[activation]
    out_t = (w2 @ act(w1 @ x)).sum()
    out_v = net(x.tolist())[0]
    out_t.backward()
    out_v.backward()
    assert_same_maths(out_v.data, out_t.item())
    assert_same_maths([[w.grad for w in n.w] for n in net.layers[0].neurons], w1.grad)


def test_gate_rules():
    x, y = Value(3.0), Value(-2.0)
    (x + y).backward()
    assert (x.grad, y.grad) == (1.0, 1.0)  # add: passes the gradient unchanged
    x, y = Value(3.0), Value(-2.0)
    (x * y).backward()
    assert (x.grad, y.grad) == (-2.0, 3.0)  # multiply: scaled by the other input
    x, y = Value(3.0), Value(-2.0)
    vmax(x, y).backward()
    assert (x.grad, y.grad) == (1.0, 0.0)  # max: only the winner
    x = Value(3.0)
    (x * 2.0 + x * 5.0).backward()
    assert x.grad == 7.0  # used twice: the gradients add


def test_ties_and_kinks_follow_torch():
    a, b = Value(1.5), Value(1.5)
    vmax(a, b).backward()
    ta = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    torch.maximum(ta, tb).backward()
    assert (a.grad, b.grad) == (ta.grad.item(), tb.grad.item())
    z = Value(0.0)
    z.relu().backward()
    tz = torch.zeros((), dtype=torch.float64, requires_grad=True)
    torch.relu(tz).backward()
    assert z.grad == tz.grad.item()


def test_extreme_values_stay_finite_where_torch_does():
    for x in (-800.0, 800.0):
        s = Value(x).sigmoid()
        assert s.data == torch.sigmoid(torch.tensor(x, dtype=torch.float64)).item()
    assert Value(800.0).exp().data == math.inf


def test_hundred_thousand_node_chain_backpropagates_without_recursion():
    x = Value(0.5)
    y = x
    for _ in range(100_000):
        y = -y  # one node per step, local derivative -1
    y.backward()
    assert x.grad == 1.0  # (-1) ** 100000
    assert len(y.topological_order()) == 100_001


def test_backward_accumulates_and_zero_grad_resets():
    x = Value(2.0)
    y = x * x
    y.backward()
    y.backward()
    assert x.grad == 8.0  # accumulates like torch
    y.zero_grad()
    assert x.grad == 0.0 and y.grad == 0.0
    net = MLP(2, [2, 1])
    net([1.0, 2.0])[0].backward()
    assert any(p.grad != 0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad == 0 for p in net.parameters())


def test_python_numbers_on_either_side():
    x = Value(4.0)
    out = 1 + x - 2 * x / 8 + (3 - x) + 10 / x
    out.backward()
    t = torch.tensor(4.0, dtype=torch.float64, requires_grad=True)
    ref = 1 + t - 2 * t / 8 + (3 - t) + 10 / t
    ref.backward()
    assert_same_maths(out.data, ref.item())
    assert_same_maths(x.grad, t.grad.item())


def test_bad_inputs():
    with pytest.raises(TypeError, match="data"):
        Value("1.0")
    with pytest.raises(TypeError, match="data"):
        Value(True)
    with pytest.raises(TypeError, match="other"):
        Value(1.0) + "x"
    with pytest.raises(TypeError, match="other"):
        Value(1.0) * [2.0]
    with pytest.raises(TypeError, match="exponent"):
        Value(2.0) ** Value(2.0)
    with pytest.raises(TypeError, match="b"):
        vmax(Value(1.0), None)
    with pytest.raises(ValueError, match="log"):
        Value(0.0).log()
    with pytest.raises(ZeroDivisionError):
        Value(1.0) / 0.0
    with pytest.raises(ZeroDivisionError):
        Value(0.0) ** -1
    with pytest.raises(ValueError, match="complex"):
        Value(-2.0) ** 0.5
    with pytest.raises(ValueError, match="activation"):
        MLP(2, [2], activation="gelu")
    with pytest.raises(ValueError, match="x"):
        MLP(2, [2])([1.0])
    with pytest.raises(ValueError, match="sizes"):
        MLP(2, [])
    with pytest.raises(ValueError, match="sizes"):
        MLP(2, [3, 0])
    with pytest.raises(ValueError, match="n_inputs"):
        MLP(0, [2])
    with pytest.raises(ValueError, match="seed"):
        MLP(2, [2], seed=-1)


def test_exp_is_finite_up_to_the_float64_limit():
    """exp(709.5) ≈ 1.35e308 fits in float64 (it gave inf); the derivative too; beyond, inf."""
    for x in (709.0, 709.5, 709.78):
        v = Value(x)
        out = v.exp()
        out.backward()
        assert out.data == math.exp(x) == v.grad and math.isfinite(out.data)
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        torch.exp(t).backward()
        assert out.data == t.exp().item() and v.grad == t.grad.item()
    assert Value(709.8).exp().data == math.inf == torch.tensor(709.8, dtype=torch.float64).exp().item()
