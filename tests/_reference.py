"""Comparison helpers shared by the reference tests (see DESIGN.md, "Testing pattern")."""

from __future__ import annotations

import torch

# tolerance tiers
SAME_MATHS = {"rtol": 1e-7, "atol": 1e-7}
ITERATIVE = {"rtol": 1e-6, "atol": 1e-6}


def assert_same_maths(actual, expected, **kw) -> None:
    """Values equal to the 'same maths' tier (float64 ops vs their reference)."""
    torch.testing.assert_close(_t(actual), _t(expected), **{**SAME_MATHS, **kw})


def assert_iterative(actual, expected, **kw) -> None:
    torch.testing.assert_close(_t(actual), _t(expected), **{**ITERATIVE, **kw})


def grads_of(fn, *inputs: torch.Tensor, grad_output: torch.Tensor | None = None):
    """Output of ``fn(*inputs)`` and the gradients w.r.t. each input (cloned leaves)."""
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = fn(*leaves)
    go = torch.ones_like(out) if grad_output is None else grad_output
    diff = [x for x in leaves if x.requires_grad]
    grads = torch.autograd.grad(out, diff, go, allow_unused=True)
    return out.detach(), grads


def assert_forward_backward(ours, reference, *inputs: torch.Tensor, seed: int = 0, **tol) -> None:
    """``ours`` and ``reference`` agree on values and on the gradient w.r.t. every float input."""
    out_ours = ours(*[x.detach().clone() for x in inputs])
    out_ref = reference(*[x.detach().clone() for x in inputs])
    g = torch.Generator().manual_seed(seed)
    go = torch.randn(out_ref.shape, generator=g, dtype=out_ref.dtype) if out_ref.is_floating_point() else None
    o1, g1 = grads_of(ours, *inputs, grad_output=go)
    o2, g2 = grads_of(reference, *inputs, grad_output=go)
    assert_same_maths(out_ours, out_ref, **tol)
    for a, b in zip(g1, g2):
        if a is None and b is None:
            continue
        assert a is not None and b is not None, "one side has no gradient"
        assert_same_maths(a, b, **tol)


def _t(x):
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(x)
