import json

import pytest

from deepnotes.cli import main
from deepnotes.core.registry import CLAIMS, UnknownNameError
from deepnotes.lab.api import Claim, ClaimResult, claim
from deepnotes.lab.report import write_report
from deepnotes.lab.runner import run_claim, select_claims
from deepnotes.viz import new_figure


def _fake(holds=True, expected="holds", boom=False):
    def run(quick, seed):
        if boom:
            raise RuntimeError("experiment exploded")
        fig, ax = new_figure()
        ax.plot([0, 1], [seed, quick])
        return ClaimResult(measured={"x": 1.5, "arr": [1, 2]}, test="x vs 1", holds=holds, figures=[fig])

    return Claim("99z", 99, "a fake claim", expected, "because" if expected == "refuted" else "", (), run)


def test_verdict_error_and_expected_comparison():
    ok = run_claim(_fake(), quick=True, seed=0)
    assert ok.verdict == "holds" and ok.ok and not ok.error
    mismatch = run_claim(_fake(holds=False), quick=True, seed=0)
    assert mismatch.verdict == "refuted" and not mismatch.ok
    refuted_as_expected = run_claim(_fake(holds=False, expected="refuted"), quick=True, seed=0)
    assert refuted_as_expected.ok
    crashed = run_claim(_fake(boom=True), quick=True, seed=0)
    assert crashed.verdict is None and "experiment exploded" in crashed.error and not crashed.ok


def test_report_files(tmp_path):
    recs = [run_claim(_fake(), quick=True, seed=0), run_claim(_fake(boom=True), quick=True, seed=0)]
    counts = write_report(recs, tmp_path, quick=True, seed=0, seconds=1.0)
    assert counts == {"total": 2, "ok": 1, "errors": 1, "mismatches": 0, "refuted_expected": 0}
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and "experiment exploded" in html and "<script" not in html
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results[0]) >= {"id", "chapter", "title", "verdict", "expected", "measured"}
    assert (tmp_path / "figures" / "99z_1.png").stat().st_size > 1000
    assert "### 99z" in (tmp_path / "report.md").read_text()


def test_claim_decorator_validates():
    with pytest.raises(ValueError, match="claim_id must look like"):
        claim("1", title="x")
    with pytest.raises(ValueError, match="expected must be one of"):
        claim("98a", title="x", expected="maybe")
    with pytest.raises(ValueError, match="needs a reason"):
        claim("98a", title="x", expected="refuted")


def test_select_claims_by_id_and_chapter():
    picked = select_claims(["1"])
    assert [c.id for c in picked] == ["1a"]
    assert [c.id for c in select_claims(["1a", "1"])] == ["1a"]
    with pytest.raises(UnknownNameError, match="unknown claim '1zz'"):
        select_claims(["1zz"])
    with pytest.raises(UnknownNameError, match="unknown chapter '77'"):
        select_claims(["77"])


def test_lab_exit_code_is_1_on_mismatch(tmp_path):
    CLAIMS.add("99z", _fake(holds=False))
    try:
        assert main(["lab", "--quick", "--only", "99z", "--out", str(tmp_path)]) == 1
    finally:
        CLAIMS._entries.pop("99z", None)
    assert json.loads((tmp_path / "results.json").read_text())[0]["verdict"] == "refuted"
