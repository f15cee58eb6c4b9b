"""Run claim experiments and collect their results."""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from deepnotes.core.registry import UnknownNameError
from deepnotes.lab.api import Claim
from deepnotes.lab.loader import load_claims


@dataclass
class ClaimRecord:
    """One row of ``results.json`` plus what the report needs."""

    id: str
    chapter: int
    title: str
    expected: str
    reason: str
    verdict: str | None = None  # None when the experiment raised
    measured: dict[str, Any] = field(default_factory=dict)
    test: str = ""
    details: str = ""
    figures: list[Any] = field(default_factory=list)  # matplotlib figures
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error and self.verdict == self.expected

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "chapter": self.chapter,
            "title": self.title,
            "verdict": self.verdict,
            "expected": self.expected,
            "measured": _plain(self.measured),
            "test": self.test,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


def select_claims(only: list[str] | None = None) -> list[Claim]:
    """Claims matching ``only`` (claim IDs like ``"6a"`` or chapter numbers like ``"6"``).

    Unknown entries raise :class:`UnknownNameError` listing the valid claim IDs and chapters.
    """
    registry = load_claims()
    claims: list[Claim] = [registry.get(n) for n in registry.names()]
    claims.sort(key=lambda c: (c.chapter, c.id))
    if not only:
        return claims
    chapters = sorted({c.chapter for c in claims})
    picked: list[Claim] = []
    for token in only:
        token = token.strip()
        if token.isdigit():
            if int(token) not in chapters:
                raise UnknownNameError("chapter", token, [str(c) for c in chapters])
            picked += [c for c in claims if c.chapter == int(token)]
        elif token in registry:
            picked.append(registry.get(token))
        else:
            raise UnknownNameError("claim", token, registry.names())
    seen: set[str] = set()
    return [c for c in picked if not (c.id in seen or seen.add(c.id))]


def run_claim(c: Claim, *, quick: bool, seed: int) -> ClaimRecord:
    rec = ClaimRecord(c.id, c.chapter, c.title, c.expected, c.reason)
    t0 = time.perf_counter()
    try:
        result = c.run(quick, seed)
        rec.verdict, rec.measured, rec.test = result.verdict, result.measured, result.test
        rec.details, rec.figures = result.details, list(result.figures)
    except Exception:  # an experiment that crashes is reported, never hidden
        rec.error = traceback.format_exc(limit=8)
    rec.seconds = time.perf_counter() - t0
    return rec


def _plain(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays to JSON-safe Python values (NaN → None)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _plain(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj
