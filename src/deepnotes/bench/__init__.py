"""Side-by-side benchmarks: our code vs its reference, alternating runs, median and ratio."""

from deepnotes.bench.api import BenchCase, BenchItem, bench_case
from deepnotes.bench.runner import BenchRow, load_cases, run_case, select_cases, write_bench

__all__ = ["BenchCase", "BenchItem", "BenchRow", "bench_case", "load_cases", "run_case", "select_cases", "write_bench"]
