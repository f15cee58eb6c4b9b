"""Seeding and explicit random generators.

All randomness in deepnotes flows from explicit ``torch.Generator`` objects so a run can be
resumed exactly. :func:`seed_everything` seeds the global generators (python, numpy, torch) for
code we do not control; :func:`make_generator` gives a private stream; :func:`worker_init_fn`
reseeds python and numpy inside each DataLoader worker (a numpy generator created before the
workers fork would otherwise repeat the same stream in every worker).
"""

from __future__ import annotations

import random

import numpy as np
import torch

from deepnotes.core.checks import check_int


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's legacy global state and torch (all devices)."""
    seed = check_int("seed", seed, min=0, max=2**63 - 1)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` seeded with ``seed``."""
    seed = check_int("seed", seed, min=0, max=2**63 - 1)
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def worker_init_fn(worker_id: int) -> None:
    """Reseed python and numpy in a DataLoader worker from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict[str, torch.Tensor]:
    """The global RNG states as plain tensors (loadable with ``weights_only=True``)."""
    state = {
        "torch": torch.get_rng_state(),
        "python": _python_state_tensor(),
        "numpy": _numpy_state_tensor(),
    }
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"cuda{i}"] = s
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    _set_python_state(state["python"])
    _set_numpy_state(state["numpy"])
    if torch.cuda.is_available():
        cuda = [state[k] for k in sorted(k for k in state if k.startswith("cuda"))]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)


# python's state is (version, tuple of 625 ints, gauss_next); ints are < 2**32 except the last
# position index, so they fit int64 exactly.
def _python_state_tensor() -> torch.Tensor:
    version, internal, gauss = random.getstate()
    gauss_flag, gauss_val = (0.0, 0.0) if gauss is None else (1.0, float(gauss))
    head = torch.tensor([version, *internal], dtype=torch.int64)
    tail = torch.tensor([gauss_flag, gauss_val], dtype=torch.float64).view(torch.int64)
    return torch.cat([head, tail])


def _set_python_state(t: torch.Tensor) -> None:
    t = t.to(torch.int64)
    version, internal = int(t[0]), tuple(int(v) for v in t[1:626])
    flag, val = t[626:628].view(torch.float64).tolist()
    random.setstate((version, internal, None if flag == 0.0 else val))


# numpy's legacy state is ('MT19937', uint32[624], pos, has_gauss, cached_gaussian).
def _numpy_state_tensor() -> torch.Tensor:
    _, keys, pos, has_gauss, cached = np.random.get_state()
    ints = torch.from_numpy(np.concatenate([keys.astype(np.int64), [pos, has_gauss]]))
    return torch.cat([ints, torch.tensor([cached], dtype=torch.float64).view(torch.int64)])


def _set_numpy_state(t: torch.Tensor) -> None:
    arr = t.to(torch.int64).numpy()
    keys = arr[:624].astype(np.uint32)
    cached = t[626:627].view(torch.float64).item()
    np.random.set_state(("MT19937", keys, int(arr[624]), int(arr[625]), cached))
