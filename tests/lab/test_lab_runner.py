import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from deepnotes.cli import main
from deepnotes.core.registry import CLAIMS, UnknownNameError
from deepnotes.lab.api import Claim, ClaimResult, claim
from deepnotes.lab.format import format_value, measured_rows
from deepnotes.lab.report import markdown_html, prepare_output, write_report
from deepnotes.lab.runner import run_claim, select_claims
from deepnotes.viz import new_figure


def _fake(holds=True, expected="holds", boom=False, partly=False, kind="experiment", details="", calls=None):
    def run(quick, seed):
        if calls is not None:
            calls.append(seed)
        if boom:
            raise RuntimeError("experiment exploded")
        fig, ax = new_figure()
        ax.plot([0, 1], [seed, quick])
        return ClaimResult(measured={"x_value": 1.5, "arr": [1, 2], "by_setup": {"none": 0.123456, "l2": 2e-7}},
                           test="x vs 1", holds=holds, figures=[fig], partly=partly, details=details,
                           observation="an extra finding")

    reason = "" if expected == "holds" else "because"
    return Claim("99z", 99, "a fake claim", expected, reason, (), run, source="notes 1-2",
                 statement="the notes say x", kind=kind)


@pytest.fixture
def fake_claim():
    """Register a fake claim 99z for CLI tests and remove it afterwards."""

    def add(c):
        CLAIMS.add("99z", c)
        return c

    yield add
    CLAIMS._entries.pop("99z", None)


def test_verdict_error_and_expected_comparison():
    ok = run_claim(_fake(), quick=True, seed=0)
    assert ok.verdict == "holds" and ok.ok and not ok.error
    mismatch = run_claim(_fake(holds=False), quick=True, seed=0)
    assert mismatch.verdict == "refuted" and not mismatch.ok
    refuted_as_expected = run_claim(_fake(holds=False, expected="refuted"), quick=True, seed=0)
    assert refuted_as_expected.ok
    partly = run_claim(_fake(holds=False, partly=True, expected="partly"), quick=True, seed=0)
    assert partly.verdict == "partly" and partly.ok
    crashed = run_claim(_fake(boom=True), quick=True, seed=0)
    assert crashed.verdict is None and "experiment exploded" in crashed.error and not crashed.ok


def test_run_claim_closes_its_figures_and_records_the_anchor():
    before = len(plt.get_fignums())
    rec = run_claim(_fake(), quick=True, seed=0)
    assert len(plt.get_fignums()) == before, "figures must be closed once rendered"
    assert rec.figures and rec.figures[0][:8] == b"\x89PNG\r\n\x1a\n"
    assert (rec.source, rec.statement, rec.kind, rec.observation) == ("notes 1-2", "the notes say x", "experiment",
                                                                       "an extra finding")
    row = rec.to_json()
    assert row["source"] == "notes 1-2" and row["observation"] == "an extra finding" and row["kind"] == "experiment"


def test_report_files(tmp_path):
    recs = [run_claim(_fake(), quick=True, seed=0), run_claim(_fake(boom=True), quick=True, seed=0)]
    counts = write_report(recs, tmp_path / "r", quick=True, seed=0, seconds=1.0)
    assert counts["total"] == 2 and counts["ok"] == 1 and counts["errors"] == 1 and counts["mismatches"] == 0
    html = (tmp_path / "r" / "report.html").read_text()
    assert "data:image/png;base64," in html and "experiment exploded" in html and "<script" not in html
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert set(results[0]) >= {"id", "chapter", "title", "verdict", "expected", "measured", "source", "statement"}
    assert (tmp_path / "r" / "figures" / "99z_1.png").stat().st_size > 1000
    assert "### <a id=\"99z\"></a>99z" in (tmp_path / "r" / "report.md").read_text()


def test_report_shows_summary_anchor_observation_and_per_chapter_counts(tmp_path):
    recs = [run_claim(_fake(), quick=True, seed=0),
            run_claim(_fake(holds=False, partly=True, expected="partly", kind="worked example"), quick=True, seed=0)]
    recs[1].id = "99y"
    write_report(recs, tmp_path, quick=True, seed=0, seconds=1.0)
    html = (tmp_path / "report.html").read_text()
    assert "All claims" in html and "Claims that do not simply hold" in html and "Verdicts by chapter" in html
    summary = html[html.index("All claims"):html.index("Claims that do not simply hold")]
    assert "99z" in summary and "99y" in summary and "worked example" in summary
    not_holds = html[html.index("Claims that do not simply hold"):html.index('<section class="chapter"')]
    assert "99y" in not_holds and "99z" not in not_holds and "because" in not_holds
    assert "The notes (lines 1-2)" in html and "the notes say x" in html and "an extra finding" in html
    assert "x value" in html and "by setup · none" in html and "0.1235" in html  # named rows, rounded
    assert "src/deepnotes" not in html or "tests/lab/test_claims.py" in html
    md = (tmp_path / "report.md").read_text()
    assert "| 99 " in md and "| 2 | 1 | 1 | 0 | 0 | 0 |" in md  # chapter 99: 2 claims, 1 holds, 1 partly


def test_markdown_tables_in_details_render_as_tables(tmp_path):
    details = "| sample | loss |\n|---|---|\n| 1 | 2.9 |\n| 2 | 0 |\n\n<script>alert(1)</script>"
    html = markdown_html(details)
    assert "<table>" in html and "<td>2.9</td>" in html and "<script>" not in html
    write_report([run_claim(_fake(details=details), quick=True, seed=0)], tmp_path, quick=True, seed=0, seconds=0.1)
    page = (tmp_path / "report.html").read_text()
    assert "<td>2.9</td>" in page and "| sample | loss |" not in page


def test_measured_values_are_readable():
    rows = dict(measured_rows({"final_mse": {"full_batch": 0.0123456, "sgd": 1e-9}, "flag": True,
                               "configs": [{"a": 1}, {"a": 2}], "long": list(range(30))}))
    assert rows["final mse · full batch"] == "0.01235" and rows["final mse · sgd"] == "1.000e-09"
    assert rows["flag"] == "yes" and rows["configs [2]"] == "a 2" and "(30 values)" in rows["long"]
    assert format_value(float("nan")) == "NaN"


def test_claim_decorator_validates():
    with pytest.raises(ValueError, match="claim_id must look like"):
        claim("1", title="x")
    with pytest.raises(ValueError, match="expected must be one of"):
        claim("98a", title="x", expected="maybe")
    with pytest.raises(ValueError, match="needs a reason"):
        claim("98a", title="x", expected="refuted")
    with pytest.raises(ValueError, match="needs a reason"):
        claim("98a", title="x", expected="partly")
    with pytest.raises(ValueError, match="kind must be one of"):
        claim("98a", title="x", kind="anecdote")
    with pytest.raises(ValueError, match="source must look like"):
        claim("98a", title="x", source="lines 3 to 4")


def test_select_claims_by_id_and_chapter():
    picked = select_claims(["1"])
    assert [c.id for c in picked] == ["1a"]
    assert [c.id for c in select_claims(["1a", "1"])] == ["1a"]
    with pytest.raises(UnknownNameError, match="unknown claim '1zz'"):
        select_claims(["1zz"])
    with pytest.raises(UnknownNameError, match="unknown chapter '77'"):
        select_claims(["77"])
    ids = [c.id for c in select_claims(None)]
    assert ids.index("9a") < ids.index("10a"), "claims are ordered by chapter number"


def test_lab_exit_code_is_1_on_mismatch(tmp_path, fake_claim):
    fake_claim(_fake(holds=False))
    assert main(["lab", "--quick", "--only", "99z", "--out", str(tmp_path / "r")]) == 1
    assert json.loads((tmp_path / "r" / "results.json").read_text())[0]["verdict"] == "refuted"


# ---- the output folder (issue 22, items 7, 8, 13, 13c) -------------------------------------------------------


def _one_line_error(capsys, pattern):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and re.search(pattern, err), err


def test_empty_only_is_an_error_not_all_claims(tmp_path, capsys):
    assert main(["lab", "--quick", "--only", "", "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, "empty selection")
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="empty selection"):
        select_claims([])


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_bad_out_is_refused_before_any_claim_runs(tmp_path, capsys, fake_claim, where):
    calls = []
    fake_claim(_fake(calls=calls))
    f = tmp_path / "a_file"
    f.write_text("x")
    out = f if where == "file" else f / "sub"
    assert main(["lab", "--quick", "--only", "99z", "--out", str(out)]) == 2
    _one_line_error(capsys, "--out")
    assert calls == [], "no claim may run when the output folder is unusable"
    assert f.read_text() == "x"


def test_read_only_out_is_refused_before_any_claim_runs(tmp_path, capsys, fake_claim, monkeypatch):
    """A read-only file system (which refuses root too): simulated where the staging folder is made."""
    import errno
    import tempfile

    calls = []
    fake_claim(_fake(calls=calls))
    ro = tmp_path / "ro"
    ro.mkdir()
    real_mkdtemp = tempfile.mkdtemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(ro.resolve()):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkdtemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    assert main(["lab", "--quick", "--only", "99z", "--out", str(ro / "r")]) == 2
    _one_line_error(capsys, "cannot be written")
    assert calls == []


def test_the_current_folder_is_not_replaced(tmp_path, monkeypatch, capsys, fake_claim):
    fake_claim(_fake())
    monkeypatch.chdir(tmp_path)
    assert main(["lab", "--quick", "--only", "99z", "--out", "."]) == 2
    _one_line_error(capsys, "current folder")


def test_a_folder_with_other_files_is_not_replaced(tmp_path, capsys, fake_claim):
    fake_claim(_fake())
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["lab", "--quick", "--only", "99z", "--out", str(tmp_path)]) == 2
    _one_line_error(capsys, "not a lab report")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_rerun_leaves_no_old_figures(tmp_path):
    out = tmp_path / "r"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "5c_1.png").write_bytes(b"old run")
    (out / "results.json").write_text("[]")
    write_report([run_claim(_fake(), quick=True, seed=0)], out, quick=True, seed=0, seconds=0.1)
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["99z_1.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["r"], "no staging folder is left behind"


def test_report_set_is_all_or_nothing(tmp_path, monkeypatch):
    out = tmp_path / "r"
    write_report([run_claim(_fake(), quick=True, seed=0)], out, quick=True, seed=0, seconds=0.1)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    import deepnotes.lab.report as report

    real = report.atomic_write_text

    def interrupted(path, text):
        if str(path).endswith("results.json"):
            raise KeyboardInterrupt
        return real(path, text)

    monkeypatch.setattr(report, "atomic_write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report([run_claim(_fake(holds=False), quick=True, seed=1)], out, quick=True, seed=1, seconds=0.1)
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before, "an interrupted write must leave the old report set untouched"
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_partial_run_never_replaces_a_full_report(tmp_path, capsys, fake_claim):
    fake_claim(_fake())
    all_ids = {c.id for c in select_claims(None)}
    full = tmp_path / "full"
    full.mkdir()
    (full / "results.json").write_text(json.dumps([{"id": i} for i in sorted(all_ids)]))
    assert main(["lab", "--quick", "--only", "99z", "--out", str(full)]) == 2
    _one_line_error(capsys, "full lab report")
    assert len(json.loads((full / "results.json").read_text())) == len(all_ids)
    assert main(["lab", "--quick", "--only", "99z", "--out", str(full), "--force"]) == 0
    again = tmp_path / "again"
    again.mkdir()
    (again / "results.json").write_text(json.dumps([{"id": "99z"}, {"id": "1a"}]))
    with pytest.raises(ValueError, match="full lab report"):
        prepare_output(again, partial=True, all_ids={"99z", "1a"})
    prepare_output(again, partial=False, all_ids={"99z", "1a"}).discard()  # a full run may replace it


def test_partial_run_defaults_to_its_own_folder(tmp_path, monkeypatch, fake_claim):
    fake_claim(_fake())
    monkeypatch.chdir(tmp_path)
    assert main(["lab", "--quick", "--only", "99z"]) == 0
    assert (tmp_path / "lab-report-partial" / "report.html").is_file()
    assert not (tmp_path / "lab-report").exists()
    assert "Partial run" in (tmp_path / "lab-report-partial" / "report.html").read_text()
