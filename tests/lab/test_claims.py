"""Contract over the claim registry: every claim runs in quick mode and gives its expected verdict.

The verdict of a claim must not depend on the seed: each claim runs on seeds 0, 1 and 2 (the full
lab is checked on seeds 0–4 by hand before a release; see docs/design.md). A claim that measures
something random decides on several repeats inside itself, with thresholds set from the question and
the sampling error.
"""

import json
import re

import pytest

from deepnotes.lab.api import KINDS, VERDICTS
from deepnotes.lab.runner import run_claim, select_claims
from deepnotes.topics import CLAIM_TEXT

CLAIMS = select_claims(None)
SEEDS = (0, 1, 2)


def test_a_chapter_in_the_lab_has_all_of_its_claims():
    registered = {c.id for c in CLAIMS}
    for chapter in sorted({c.chapter for c in CLAIMS}):
        listed = {cid for cid in CLAIM_TEXT if int(re.match(r"\d+", cid).group()) == chapter}
        assert listed <= registered, f"chapter {chapter} lacks claims {sorted(listed - registered)}"


@pytest.mark.parametrize("c", CLAIMS, ids=lambda c: c.id)
def test_claims_are_anchored_in_the_notes(c):
    assert re.fullmatch(r"notes \d+(-\d+)?(, \d+(-\d+)?)*", c.source), f"{c.id}: source {c.source!r}"
    assert len(c.statement) > 20, f"{c.id} states what the notes' lines say"
    assert c.kind in KINDS and c.expected in VERDICTS
    if c.expected != "holds":
        assert c.reason, "an expected verdict other than 'holds' carries its reason"


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
@pytest.mark.parametrize("c", CLAIMS, ids=lambda c: c.id)
def test_claim_quick(c, seed):
    rec = run_claim(c, quick=True, seed=seed)
    assert rec.error == "", rec.error
    assert rec.verdict == c.expected, f"seed {seed}: {rec.verdict} != expected {c.expected}; {rec.measured}"
    assert rec.measured and rec.test and rec.figures, "a claim reports numbers, its test and a figure"
    json.dumps(rec.to_json(), allow_nan=False)  # results.json must stay strict JSON
