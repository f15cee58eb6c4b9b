"""The lab: every claim of the notes as a measured experiment with a verdict and a figure."""

from deepnotes.lab.api import Claim, ClaimResult, claim
from deepnotes.lab.loader import load_claims
from deepnotes.lab.report import write_report
from deepnotes.lab.runner import ClaimRecord, run_claim, select_claims

__all__ = [
    "Claim",
    "ClaimRecord",
    "ClaimResult",
    "claim",
    "load_claims",
    "run_claim",
    "select_claims",
    "write_report",
]
