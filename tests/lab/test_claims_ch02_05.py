"""Chapters 2-5: every claim runs in quick mode without error and gives its expected verdict."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest

from deepnotes.lab.runner import run_claim, select_claims

CLAIMS = select_claims(["2", "3", "4", "5"])


def test_every_listed_claim_is_registered():
    ids = {c.id for c in CLAIMS}
    assert ids == {"2a", "2b", "2c", "2d", "3a", "3b", "3c", "3d", "3e", "4a", "5a", "5b", "5c", "5d"}


@pytest.mark.parametrize("c", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claim_quick(c):
    rec = run_claim(c, quick=True, seed=0)
    assert not rec.error, rec.error
    assert rec.verdict == c.expected, (rec.measured, rec.details)
    assert rec.figures, "each claim draws a figure"
    assert rec.test and rec.measured
    json.dumps(rec.to_json(), allow_nan=False)  # results.json must stay valid JSON
    for fig in rec.figures:
        plt.close(fig)
