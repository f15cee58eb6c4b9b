import json

import pytest

from deepnotes.bench.api import BenchCase, BenchItem
from deepnotes.bench.runner import run_case, select_cases, write_bench
from deepnotes.core.registry import UnknownNameError


def test_alternating_runs_median_and_ratio(tmp_path):
    calls = []
    item = BenchItem("n=1", ours=lambda: calls.append("o"), reference=lambda: calls.append("r"), repeats=4)
    case = BenchCase("fake", "ref", (), 2.0, lambda quick: [item], "")
    rows = run_case(case, quick=False)
    assert len(rows) == 1 and rows[0].ratio is not None and rows[0].ratio > 0
    # warm-up pair, then alternating order: o r, r o, o r, r o
    assert calls == ["o", "r", "o", "r", "r", "o", "o", "r", "r", "o"]
    write_bench(rows, tmp_path)
    data = json.loads((tmp_path / "bench.json").read_text())
    assert set(data[0]) >= {"case", "size", "ours_ms", "reference_ms", "ratio"}
    assert "| fake | n=1 |" in (tmp_path / "bench.md").read_text()


def test_missing_reference_is_reported_on_its_row(tmp_path):
    case = BenchCase("fake", "nolib.f", ("no_such_module_xyz",), None, lambda quick: [], "")
    rows = run_case(case, quick=True)
    assert rows[0].ratio is None and "reference not installed: no_such_module_xyz" in rows[0].note
    write_bench(rows, tmp_path)
    assert "reference not installed" in (tmp_path / "bench.md").read_text()


def test_select_cases():
    assert "trainer_overhead" in [c.name for c in select_cases(None)]
    with pytest.raises(UnknownNameError, match="unknown bench case 'nope'.*trainer_overhead"):
        select_cases(["nope"])


def test_cpu_clock_counts_work_not_waiting(tmp_path):
    """With ``clock="cpu"`` a sleeping function costs ~0 ms while a busy one costs its work."""
    import time

    def busy():
        t0 = time.process_time()
        while time.process_time() - t0 < 0.02:
            pass

    item = BenchItem("n=1", ours=busy, reference=lambda: time.sleep(0.02), repeats=3)
    case = BenchCase("fake", "ref", (), None, lambda quick: [item], "")
    wall = run_case(case, quick=False)[0]
    cpu = run_case(case, quick=False, clock="cpu")[0]
    assert wall.reference_ms >= 15 and cpu.reference_ms < 5
    assert cpu.ours_ms >= 15
    write_bench([cpu], tmp_path, clock="cpu")
    assert "process CPU time" in (tmp_path / "bench.md").read_text()
    with pytest.raises(ValueError, match="clock must be one of"):
        run_case(case, quick=True, clock="gpu")


def test_busy_cores_start_and_stop():
    from deepnotes.bench.runner import busy_cores

    with busy_cores(1, max_seconds=30) as procs:
        assert len(procs) == 1 and procs[0].poll() is None  # spinning
    assert procs[0].poll() is not None  # stopped with the block
    with pytest.raises(ValueError, match="n must be >= 1"), busy_cores(0):
        pass


def test_bench_command_busy_column(tmp_path):
    from deepnotes.cli import main

    assert main(["bench", "--quick", "--only", "giou_loss", "--busy", "--threads", "1", "--clock", "cpu",
                 "--out", str(tmp_path)]) == 0
    row = json.loads((tmp_path / "bench.json").read_text())[0]
    assert row["ratio"] > 0 and row["busy_ratio"] > 0
    assert "busy ratio" in (tmp_path / "bench.md").read_text()
