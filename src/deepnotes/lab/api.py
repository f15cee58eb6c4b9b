"""The claim contract.

A claim is a function ``f(quick: bool, seed: int) -> ClaimResult`` registered with :func:`claim`
under its TOPICS.md ID. It measures something, states the test in words (what is compared with
what, and the threshold) and decides whether the notes' statement holds. The decorator records:

- ``source``: the lines of the notes the claim tests (``"notes 38-40"``) and ``statement``: what
  those lines say, in our words. A claim tests that statement, not a stronger paraphrase; what an
  experiment finds beyond it goes into ``ClaimResult.observation``, never into the verdict.
- ``expected``: the verdict we expect: ``"holds"``; ``"partly"`` (holds under conditions the
  result's ``details`` name); or ``"refuted"`` where our measurements show the statement is wrong.
  An expected verdict other than ``"holds"`` carries its ``reason``.
- ``kind``: ``"experiment"`` (a measurement that could have come out otherwise) or
  ``"worked example"`` (an arithmetic identity, still computed and checked).

Example
-------
>>> from deepnotes.lab.api import ClaimResult
>>> r = ClaimResult(measured={"x": 1.0}, test="x equals 1", holds=True)
>>> r.verdict
'holds'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deepnotes.core.checks import check_choice
from deepnotes.core.registry import CLAIMS

VERDICTS = ("holds", "partly", "refuted")
KINDS = ("experiment", "worked example")
_ID = re.compile(r"^\d+[a-z]+$")


@dataclass
class ClaimResult:
    """What a claim experiment measured.

    measured : numbers (JSON-serializable scalars, lists or dicts of them)
    test : the comparison in words, with its threshold
    holds : whether the statement of the notes holds on these numbers
    figures : matplotlib figures (embedded in the report, saved as PNG)
    details : optional extra text for the report (Markdown)
    partly : with ``holds=False``, the statement holds under some of the measured conditions
        (``details`` says which): the verdict is ``"partly"`` instead of ``"refuted"``
    observation : what the experiment found beyond the notes' statement (reported beside the
        verdict, never part of it)
    """

    measured: dict[str, Any]
    test: str
    holds: bool
    figures: list[Any] = field(default_factory=list)
    details: str = ""
    partly: bool = False
    observation: str = ""

    @property
    def verdict(self) -> str:
        if self.holds:
            return "holds"
        return "partly" if self.partly else "refuted"


@dataclass(frozen=True)
class Claim:
    id: str
    chapter: int
    title: str
    expected: str
    reason: str
    topics: tuple[str, ...]
    func: Callable[[bool, int], ClaimResult]
    source: str = ""
    statement: str = ""
    kind: str = "experiment"

    def run(self, quick: bool, seed: int) -> ClaimResult:
        result = self.func(quick, seed)
        if not isinstance(result, ClaimResult):
            raise TypeError(f"claim {self.id} returned {type(result).__name__}, expected ClaimResult")
        return result


def claim(
    claim_id: str,
    *,
    title: str,
    topics: tuple[str, ...] = (),
    expected: str = "holds",
    reason: str = "",
    source: str = "",
    statement: str = "",
    kind: str = "experiment",
) -> Callable[[Callable[[bool, int], ClaimResult]], Callable[[bool, int], ClaimResult]]:
    """Register a claim experiment under ``claim_id`` (e.g. ``"1a"``; the chapter is its number)."""
    if not _ID.match(claim_id):
        raise ValueError(f"claim_id must look like '6a' (chapter number + letters), got {claim_id!r}")
    check_choice("expected", expected, VERDICTS)
    check_choice("kind", kind, KINDS)
    if expected != "holds" and not reason:
        raise ValueError(f"claim {claim_id}: expected={expected!r} needs a reason")
    if source and not re.match(r"^notes \d+(-\d+)?(, \d+(-\d+)?)*$", source):
        raise ValueError(f"claim {claim_id}: source must look like 'notes 38-40' or 'notes 38-40, 54', got {source!r}")

    def deco(func: Callable[[bool, int], ClaimResult]) -> Callable[[bool, int], ClaimResult]:
        chapter = int(re.match(r"\d+", claim_id).group())
        CLAIMS.add(
            claim_id,
            Claim(claim_id, chapter, title, expected, reason, tuple(topics), func, source, statement, kind),
        )
        return func

    return deco
