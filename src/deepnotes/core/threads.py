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
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: leave the setting alone)."""
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def single_threaded(fn: F) -> F:
    """Decorator: run ``fn`` with one torch thread."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch_threads(1):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
