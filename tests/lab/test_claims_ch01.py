from deepnotes.lab.runner import run_claim, select_claims


def test_chapter_1_claims_hold_in_quick_mode():
    for c in select_claims(["1"]):
        rec = run_claim(c, quick=True, seed=0)
        assert not rec.error, rec.error
        assert rec.verdict == c.expected, (c.id, rec.measured)
        assert rec.figures, f"claim {c.id} has no figure"
