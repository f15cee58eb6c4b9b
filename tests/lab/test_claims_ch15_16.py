"""Chapters 15–16 claims run in quick mode and reach their expected verdicts."""

import pytest
import torch

from deepnotes.lab.runner import run_claim, select_claims

CLAIMS = select_claims(["15", "16"])


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_all_claims_present():
    assert sorted(c.id for c in CLAIMS) == ["15a", "15b", "15c", "15d", "15e", "16a", "16b", "16c", "16d", "16e"]


@pytest.mark.parametrize("c", CLAIMS, ids=lambda c: c.id)
def test_claim_quick(c):
    rec = run_claim(c, quick=True, seed=0)
    assert not rec.error, rec.error
    assert rec.verdict == c.expected, rec.measured
    assert rec.figures
