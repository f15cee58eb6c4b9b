"""The benchmark contract.

A bench case is a function ``f(quick: bool) -> list[BenchItem]`` registered with
:func:`bench_case`. Each item names a problem size and two zero-argument callables, ours and the
reference's, doing the same work. The runner times them in one process, alternating so that both
see the same machine state, and reports the median of several runs and the ratio ours/reference.

``requires`` lists the modules the reference needs; a case whose reference is not installed is
reported as such on its row instead of failing the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deepnotes.core.registry import BENCH_CASES


@dataclass
class BenchItem:
    size: str
    ours: Callable[[], Any]
    reference: Callable[[], Any]
    repeats: int = 7
    cleanup: Callable[[], Any] | None = None  # run after the item is timed, also when timing fails


@dataclass(frozen=True)
class BenchCase:
    name: str
    reference: str
    requires: tuple[str, ...]
    target: float | None
    func: Callable[[bool], list[BenchItem]]
    description: str


def bench_case(
    name: str,
    *,
    reference: str,
    requires: tuple[str, ...] = (),
    target: float | None = None,
    description: str = "",
) -> Callable[[Callable[[bool], list[BenchItem]]], Callable[[bool], list[BenchItem]]]:
    """Register a benchmark case; ``target`` is the ratio (ours/reference) the issue asks for."""

    def deco(func):
        BENCH_CASES.add(
            name, BenchCase(name, reference, tuple(requires), target, func, description or (func.__doc__ or "").strip())
        )
        return func

    return deco
