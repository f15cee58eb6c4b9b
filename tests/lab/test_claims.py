"""Contract over the claim registry: every claim runs in quick mode and gives its expected verdict."""

import json

import matplotlib.pyplot as plt
import pytest

from deepnotes.lab.runner import run_claim, select_claims
from deepnotes.topics import CLAIM_TEXT

CLAIMS = select_claims(None)


def test_a_chapter_in_the_lab_has_all_of_its_claims():
    registered = {c.id for c in CLAIMS}
    for chapter in sorted({c.chapter for c in CLAIMS}):
        listed = {cid for cid in CLAIM_TEXT if int(cid[:-1]) == chapter}
        assert listed <= registered, f"chapter {chapter} lacks claims {sorted(listed - registered)}"


@pytest.mark.parametrize("c", CLAIMS, ids=lambda c: c.id)
def test_claim_quick(c):
    rec = run_claim(c, quick=True, seed=0)
    try:
        assert rec.error == "", rec.error
        assert rec.verdict == c.expected, rec.measured
        assert rec.measured and rec.test and rec.figures, "a claim reports numbers, its test and a figure"
        json.dumps(rec.to_json(), allow_nan=False)  # results.json must stay strict JSON
        if c.expected == "refuted":
            assert c.reason, "an expected 'refuted' verdict carries its reason"
    finally:
        for fig in rec.figures:
            plt.close(fig)
