"""Time bench cases side by side and write ``bench.md`` / ``bench.json``."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import pkgutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from deepnotes.bench.api import BenchCase
from deepnotes.core.io import atomic_write_text
from deepnotes.core.registry import BENCH_CASES, UnknownNameError


@dataclass
class BenchRow:
    case: str
    size: str
    ours_ms: float | None
    reference_ms: float | None
    ratio: float | None
    reference: str
    target: float | None
    note: str = ""
    busy_ratio: float | None = None  # the same item timed while other processes keep every core busy

    def to_json(self) -> dict:
        return {
            "case": self.case,
            "size": self.size,
            "ours_ms": self.ours_ms,
            "reference_ms": self.reference_ms,
            "ratio": self.ratio,
            "reference": self.reference,
            "target": self.target,
            "note": self.note,
            "busy_ratio": self.busy_ratio,
        }


_SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


@contextlib.contextmanager
def busy_cores(n: int | None = None, max_seconds: float = 3600.0):
    """Keep ``n`` cores (default: all) busy with spinning child processes while the block runs.

    Each child spins for at most ``max_seconds`` even if this process dies without cleaning up.
    """
    n = os.cpu_count() or 1 if n is None else n
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN.format(seconds=float(max_seconds))],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(n)]
    try:
        time.sleep(0.2)  # let them start spinning
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def load_cases():
    import deepnotes.bench.cases as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        importlib.import_module(f"{pkg.__name__}.{info.name}")
    return BENCH_CASES


def select_cases(only: list[str] | None = None) -> list[BenchCase]:
    registry = load_cases()
    if not only:
        return [registry.get(n) for n in registry.names()]
    for name in only:
        if name not in registry:
            raise UnknownNameError("bench case", name, registry.names())
    return [registry.get(n) for n in dict.fromkeys(only)]


CLOCKS = {
    # wall time: what a user waits for; noisy when other processes share the cores
    "wall": time.perf_counter,
    # CPU time of this process (all its threads): the work done, nearly blind to other processes,
    # but it also hides what a multi-threaded kernel gains from running in parallel
    "cpu": time.process_time,
}


def _time_once(fn, clock=time.perf_counter) -> float:
    t0 = clock()
    fn()
    return (clock() - t0) * 1e3


def run_case(case: BenchCase, *, quick: bool, clock: str = "wall") -> list[BenchRow]:
    """Time every item of ``case``; ``clock`` is ``"wall"`` or ``"cpu"`` (see :data:`CLOCKS`)."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}")
    missing = [m for m in case.requires if importlib.util.find_spec(m) is None]
    if missing:
        note = f"reference not installed: {', '.join(missing)}"
        return [BenchRow(case.name, "-", None, None, None, case.reference, case.target, note)]
    rows = []
    items = case.func(quick)
    try:
        for item in items:
            rows.append(_time_item(case, item, quick, CLOCKS[clock]))
    finally:
        for item in items:
            if item.cleanup is not None:
                item.cleanup()
    return rows


def _time_item(case: BenchCase, item, quick: bool, clock=time.perf_counter) -> BenchRow:
    item.ours()  # warm-up: first-call allocations and lazy imports are not what we measure
    item.reference()
    ours, ref = [], []
    repeats = max(3, item.repeats // 2) if quick else item.repeats
    for i in range(repeats):
        # alternate which goes first, so neither always runs on a warmer cache
        if i % 2 == 0:
            ours.append(_time_once(item.ours, clock))
            ref.append(_time_once(item.reference, clock))
        else:
            ref.append(_time_once(item.reference, clock))
            ours.append(_time_once(item.ours, clock))
    o, r = statistics.median(ours), statistics.median(ref)
    return BenchRow(case.name, item.size, round(o, 4), round(r, 4), round(o / r, 4), case.reference, case.target)


def write_bench(rows: list[BenchRow], out: Path, clock: str = "wall") -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "bench.json", json.dumps([r.to_json() for r in rows], indent=2) + "\n")
    busy = any(r.busy_ratio is not None for r in rows)
    lines = [
        "# deepnotes benchmarks",
        "",
        f"Median {'wall' if clock == 'wall' else 'process CPU'} time of alternating runs in one process; "
        "ratio = ours / reference (lower is better)."
        + (" Busy ratio: the same, timed again while spinning processes kept every core busy." if busy else ""),
        "",
        "| case | size | ours (ms) | reference (ms) | ratio |" + (" busy ratio |" if busy else "")
        + " target | reference |",
        "|---|---|---:|---:|---:|" + ("---:|" if busy else "") + "---:|---|",
    ]
    for r in rows:
        extra = (" – |" if r.busy_ratio is None else f" {r.busy_ratio:.3f} |") if busy else ""
        if r.ratio is None:
            lines.append(f"| {r.case} | {r.size} | – | – | – |{extra} {_t(r.target)} | {r.reference}: {r.note} |")
        else:
            lines.append(
                f"| {r.case} | {r.size} | {r.ours_ms:.3f} | {r.reference_ms:.3f} | {r.ratio:.3f} |{extra} "
                f"{_t(r.target)} | {r.reference} |"
            )
    atomic_write_text(out / "bench.md", "\n".join(lines) + "\n")


def _t(target: float | None) -> str:
    return "–" if target is None else f"≤ {target:g}"
