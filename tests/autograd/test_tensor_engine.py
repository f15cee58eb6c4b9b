"""The small-tensor engine against torch.autograd: broadcasting, matmul, reductions, an MLP."""

from __future__ import annotations

import pytest
import torch

from deepnotes.autograd import Tensor
from tests._reference import assert_same_maths

OPS = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0)),
    "rdiv": (lambda a, b: 2.0 / (a * a + 0.5) - b, lambda a, b: 2.0 / (a * a + 0.5) - b),
    "funcs": (lambda a, b: (a.tanh() * b.sigmoid()).exp() + (a * a + 1.0).log() - b.relu() ** 2,
              lambda a, b: torch.exp(torch.tanh(a) * torch.sigmoid(b)) + torch.log(a * a + 1) - torch.relu(b) ** 2),
    "neg_rsub": (lambda a, b: -a + (3.0 - b) * 0.5, lambda a, b: -a + (3.0 - b) * 0.5),
}
SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3))]


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("shapes", SHAPES)
def test_broadcasting_ops_match_torch(op, shapes):
    g = torch.Generator().manual_seed(0)
    a0 = torch.randn(shapes[0], generator=g, dtype=torch.float64)
    b0 = torch.randn(shapes[1], generator=g, dtype=torch.float64)
    ours_fn, ref_fn = OPS[op]
    a, b = Tensor(a0), Tensor(b0)
    out = ours_fn(a, b)
    ta, tb = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    ref = ref_fn(ta, tb)
    go = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    out.backward(go)
    ref.backward(go)
    assert_same_maths(out.data, ref.detach())
    assert_same_maths(a.grad, ta.grad)
    assert_same_maths(b.grad, tb.grad)


def test_mlp_with_matmul_and_reductions_matches_torch():
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    w10 = torch.randn(3, 4, generator=g, dtype=torch.float64)
    b10 = torch.randn(4, generator=g, dtype=torch.float64)
    w20 = torch.randn(4, generator=g, dtype=torch.float64)
    x, w1, b1, w2 = Tensor(x0), Tensor(w10), Tensor(b10), Tensor(w20)
    loss = ((x @ w1 + b1).tanh() @ w2).sigmoid().mean() + (w1 * w1).sum(dim=0).mean() * 0.1
    tx, tw1, tb1, tw2 = (t.clone().requires_grad_(True) for t in (x0, w10, b10, w20))
    ref = torch.sigmoid(torch.tanh(tx @ tw1 + tb1) @ tw2).mean() + (tw1 * tw1).sum(0).mean() * 0.1
    loss.backward()
    ref.backward()
    assert_same_maths(loss.data, ref.detach())
    for ours, theirs in ((x, tx), (w1, tw1), (b1, tb1), (w2, tw2)):
        assert_same_maths(ours.grad, theirs.grad)


def test_sum_keepdim_and_reuse():
    a0 = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    a = Tensor(a0)
    out = (a.sum(dim=1, keepdim=True) * a).sum()  # a used twice
    out.backward()
    ta = a0.clone().requires_grad_(True)
    (ta.sum(1, keepdim=True) * ta).sum().backward()
    assert_same_maths(a.grad, ta.grad)


def test_leaves_accumulate_and_interior_nodes_restart():
    a = Tensor([1.0, 2.0])
    y = (a * a).sum()
    y.backward()
    y.backward()
    assert a.grad.tolist() == [4.0, 8.0]


def test_long_chain_without_recursion():
    a = Tensor([0.5])
    y = a
    for _ in range(20_000):
        y = -y
    y.sum().backward()
    assert a.grad.tolist() == [1.0]


def test_bad_inputs():
    with pytest.raises(TypeError, match="data"):
        Tensor("abc")
    with pytest.raises(TypeError, match="other"):
        Tensor([1.0]) + "x"
    with pytest.raises(TypeError, match="exponent"):
        Tensor([1.0]) ** Tensor([2.0])
    with pytest.raises(ValueError, match="gradient"):
        Tensor([1.0, 2.0]).exp().backward()
    with pytest.raises(ValueError, match="gradient"):
        Tensor([1.0, 2.0]).exp().backward(torch.ones(3))
    with pytest.raises(ValueError, match="other"):
        Tensor([1.0, 2.0]) @ Tensor([1.0, 2.0])
