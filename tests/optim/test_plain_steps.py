"""The plain per-tensor steps (optim/plain.py) against the multi-tensor optimizers and torch.optim."""

from __future__ import annotations

import pytest
import torch

from deepnotes.optim import SGD, Adagrad, Adam, Momentum, RMSProp
from deepnotes.optim.plain import adagrad_step, adam_step, rmsprop_step, sgd_step

CASES = [
    (SGD, torch.optim.SGD, sgd_step, dict(lr=0.1)),
    (SGD, torch.optim.SGD, sgd_step, dict(lr=0.1, weight_decay=0.01, maximize=True)),
    (Momentum, torch.optim.SGD, sgd_step, dict(lr=0.1, momentum=0.9, dampening=0.1)),
    (Momentum, torch.optim.SGD, sgd_step, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (Adagrad, torch.optim.Adagrad, adagrad_step, dict(lr=0.1)),
    (Adagrad, torch.optim.Adagrad, adagrad_step,
     dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3, maximize=True)),
    (RMSProp, torch.optim.RMSprop, rmsprop_step, dict(lr=0.01)),
    (RMSProp, torch.optim.RMSprop, rmsprop_step, dict(lr=0.01, momentum=0.8, centered=True, weight_decay=0.1)),
    (Adam, torch.optim.Adam, adam_step, dict(lr=0.01)),
    (Adam, torch.optim.Adam, adam_step, dict(lr=0.01, betas=(0.8, 0.9), amsgrad=True, weight_decay=0.1, maximize=True)),
]


@pytest.mark.parametrize("ours,ref,step,kw", CASES)
def test_plain_step_equals_the_fast_optimizer_and_torch(ours, ref, step, kw):
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (7,), (2, 2, 2)]
    start = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    fast = [torch.nn.Parameter(t.clone()) for t in start]
    torch_params = [torch.nn.Parameter(t.clone()) for t in start]
    plain = [t.clone() for t in start]
    states = [{} for _ in plain]
    opt_fast, opt_ref = ours(fast, **kw), ref(torch_params, **kw)
    for _ in range(6):
        grads = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
        for p, q, gr in zip(fast, torch_params, grads):
            p.grad, q.grad = gr.clone(), gr.clone()
        opt_fast.step()
        opt_ref.step()
        for p, st, gr in zip(plain, states, grads):
            step(p, gr, st, **kw)
    for a, b, c in zip(plain, fast, torch_params):
        torch.testing.assert_close(a, b.detach(), rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(a, c.detach(), rtol=1e-12, atol=1e-14)
