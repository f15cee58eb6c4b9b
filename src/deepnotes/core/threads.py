"""Scoped control of torch's intra-op thread count.

Small tensor work (step-by-step recurrences, blocks of a few thousand rows, toy trainings in the
lab) gains nothing from torch's thread pool, and on a busy 2-core machine the pool made such work
5–70× slower while other processes held the cores. These helpers set the count for a block and
restore it afterwards. The setting is process-wide: other Python threads using torch meanwhile
see it too.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: do not change it on entry); the
    count in force before the block is restored after it either way."""
    old = torch.get_num_threads()
    if n is not None and n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def single_threaded(fn: F) -> F:
    """Decorator: run ``fn`` with one torch thread."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch_threads(1):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def auto_threads(default: int | None = None, load: float | None = None, cores: int | None = None) -> int:
    """The intra-op thread count a command uses when none is given: the cores that other
    processes leave free, at least 1 and at most torch's current setting.

    ``free = cores − (1-minute load average)``, rounded: on a quiet machine this is torch's own
    choice; when other jobs keep the cores busy it drops to 1, where torch's pool would only
    make the threads wait for each other. ``default``, ``load`` and ``cores`` default to
    ``torch.get_num_threads()``, ``os.getloadavg()[0]`` and ``os.cpu_count()`` (given for tests).
    Where the load average is unknown (not every platform has one), torch's setting is kept.
    """
    default = torch.get_num_threads() if default is None else default
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return default
    cores = os.cpu_count() or 1 if cores is None else cores
    return max(1, min(default, round(cores - load)))
