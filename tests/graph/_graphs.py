"""Small random graphs with the awkward cases every layer must handle."""

from __future__ import annotations

import torch


def awkward_graph(seed: int = 0, n: int = 12, e: int = 40, dtype=torch.float64):
    """Features ``x (n, 5)`` and ``edge_index`` with self-loops, duplicate edges and isolated nodes.

    Nodes ``n-2`` and ``n-1`` have no edges at all; node 0 has two loops; edge 1→2 appears three times.
    """
    g = torch.Generator().manual_seed(seed)
    m = n - 2
    ei = torch.randint(0, m, (2, e), generator=g)
    extra = torch.tensor([[0, 0, 1, 1, 1, 3], [0, 0, 2, 2, 2, 3]])
    ei = torch.cat([ei, extra], dim=1)
    ei = ei[:, torch.randperm(ei.shape[1], generator=g)]
    x = torch.randn(n, 5, generator=g, dtype=dtype)
    return x, ei


def run_with_grads(module, inputs: dict, grad_seed: int = 1):
    """Output, input gradients (for float inputs) and parameter gradients by name."""
    leaves = {k: (v.detach().clone().requires_grad_(True) if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
              for k, v in inputs.items()}
    out = module(**leaves)
    out_t = out[0] if isinstance(out, tuple) else out
    g = torch.Generator().manual_seed(grad_seed)
    go = torch.randn(out_t.shape, generator=g, dtype=out_t.dtype)
    module.zero_grad(set_to_none=True)
    (out_t * go).sum().backward()
    in_grads = {k: v.grad for k, v in leaves.items() if isinstance(v, torch.Tensor) and v.requires_grad}
    p_grads = {k: p.grad for k, p in module.named_parameters()}
    return out, in_grads, p_grads
