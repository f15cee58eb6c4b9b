import random

import numpy as np
import pytest
import torch

from deepnotes.core.device import select_device
from deepnotes.core.seeding import make_generator, rng_state, seed_everything, set_rng_state


def _draw():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_seed_everything_repeats_all_three_streams():
    seed_everything(7)
    a = _draw()
    seed_everything(7)
    assert _draw() == a


def test_rng_state_round_trip_is_exact_and_plain():
    seed_everything(3)
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    np.random.randn()
    state = rng_state()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    expected = (_draw(), random.gauss(0, 1), float(np.random.randn()))
    seed_everything(99)
    set_rng_state(state)
    assert (_draw(), random.gauss(0, 1), float(np.random.randn())) == expected


def test_make_generator_is_private_and_seeded():
    g1, g2 = make_generator(5), make_generator(5)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    with pytest.raises(ValueError, match="seed must be >= 0"):
        make_generator(-1)


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="device must be one of"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")
