"""Every chapter 8 and 10 claim runs in quick mode without error and gives its expected verdict."""

import matplotlib.pyplot as plt
import pytest

from deepnotes.lab.runner import run_claim, select_claims

CLAIMS = select_claims(["8", "10"])


def test_all_claims_present():
    assert sorted(c.id for c in CLAIMS) == ["10a", "10b", "10c", "8a", "8b", "8c", "8d"]


@pytest.mark.parametrize("c", CLAIMS, ids=lambda c: c.id)
def test_claim_quick(c):
    rec = run_claim(c, quick=True, seed=0)
    try:
        assert rec.error == "", rec.error
        assert rec.verdict == c.expected, rec.measured
        assert rec.measured and rec.test and rec.figures
    finally:
        for fig in rec.figures:
            plt.close(fig)
