"""The walk-through printer: its gradients equal torch's; every product is the chain rule."""

from __future__ import annotations

import pytest
import torch

from deepnotes.autograd import walkthrough
from deepnotes.cli import main
from tests._reference import assert_same_maths as _same


def assert_same_maths(a, b) -> None:
    # python floats and lists become float64 tensors (torch.as_tensor would pick float32)
    _same(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64))

CASES = [
    ("max(x*y, x+z)", {"x": 2.0, "y": -3.0, "z": 4.0},
     lambda x, y, z: torch.maximum(x * y, x + z)),
    ("sigmoid(w*x + b) + x*x", {"w": -3.0, "x": 2.0, "b": 1.0},
     lambda w, x, b: torch.sigmoid(w * x + b) + x * x),
    ("log(exp(a) + 1) - tanh(a/c)**2 + relu(-c)", {"a": 0.3, "c": -1.5},
     lambda a, c: torch.log(torch.exp(a) + 1) - torch.tanh(a / c) ** 2 + torch.relu(-c)),
]


@pytest.mark.parametrize("expr, values, ref", CASES)
def test_walkthrough_matches_torch(expr, values, ref):
    w = walkthrough(expr, **values)
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in values.items()}
    out = ref(**leaves)
    out.backward()
    assert_same_maths(w.output, out.item())
    for k, t in leaves.items():
        assert_same_maths(w.gradients[k], t.grad.item())
    # each backward row is local x upstream, and a leaf's rows add up to its gradient
    for r in w.backward:
        assert r.product == r.local * r.upstream
    for k in values:
        assert_same_maths(sum(r.product for r in w.backward if r.to == k), w.gradients[k])
    text = w.format()
    assert "forward pass" in text and "backward pass" in text


def test_worked_example_numbers():
    w = walkthrough("max(x*y, x+z)", x=2, y=-3, z=4)
    rows = {r.node: r.value for r in w.forward}
    assert rows["x * y"] == -6.0 and rows["x + z"] == 6.0 and w.output == 6.0
    assert w.gradients == {"x": 1.0, "y": 0.0, "z": 1.0}


@pytest.mark.parametrize(
    "expr, values",
    [("x +", {"x": 1.0}), ("x + q", {"x": 1.0}), ("foo(x)", {"x": 1.0}), ("x ** y", {"x": 1.0, "y": 2.0}),
     ("x[0]", {"x": 1.0}), ("max(x)", {"x": 1.0})],
)
def test_bad_expressions(expr, values):
    with pytest.raises(ValueError, match="expression"):
        walkthrough(expr, **values)


def test_expression_must_be_a_string():
    with pytest.raises(TypeError, match="expression"):
        walkthrough(3.0)


def test_cli(capsys):
    assert main(["autograd", "max(x*y, x+z)", "x=2", "y=-3", "z=4"]) == 0
    out = capsys.readouterr().out
    assert "d(out)/dx = 1" in out and "d(out)/dy = 0" in out
    assert main(["autograd", "x*y", "x=2", "y"]) == 2
    assert main(["autograd", "x*y", "x=2", "y=abc"]) == 2
    assert "values" in capsys.readouterr().err
