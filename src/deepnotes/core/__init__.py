"""Shared infrastructure: registries, input checks, seeding, devices and safe file I/O."""

from deepnotes.core.checks import (
    as_tensor,
    check_choice,
    check_float,
    check_int,
    check_positive,
    check_probability,
    check_same_length,
    check_tensor,
    check_type,
)
from deepnotes.core.device import select_device
from deepnotes.core.io import (
    CheckpointError,
    atomic_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    safe_load,
)
from deepnotes.core.registry import (
    BENCH_CASES,
    CLAIMS,
    DATASETS,
    LOSSES,
    MODELS,
    OPTIMIZERS,
    Registry,
    UnknownNameError,
)
from deepnotes.core.seeding import (
    make_generator,
    rng_state,
    seed_everything,
    set_rng_state,
    worker_init_fn,
)

__all__ = [
    "BENCH_CASES",
    "CLAIMS",
    "DATASETS",
    "LOSSES",
    "MODELS",
    "OPTIMIZERS",
    "CheckpointError",
    "Registry",
    "UnknownNameError",
    "as_tensor",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_choice",
    "check_float",
    "check_int",
    "check_positive",
    "check_probability",
    "check_same_length",
    "check_tensor",
    "check_type",
    "make_generator",
    "rng_state",
    "safe_load",
    "seed_everything",
    "select_device",
    "set_rng_state",
    "worker_init_fn",
]
