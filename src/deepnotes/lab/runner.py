"""Run claim experiments and collect their results."""

from __future__ import annotations

import inspect
import io
import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from deepnotes.core.registry import UnknownNameError
from deepnotes.lab.api import Claim, ClaimResult
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
    figures: list[bytes] = field(default_factory=list)  # PNG images (figures are closed once rendered)
    error: str = ""
    seconds: float = 0.0
    source: str = ""  # the notes' lines the claim tests ("notes 38-40")
    statement: str = ""  # what those lines say, in our words
    kind: str = "experiment"  # or "worked example"
    observation: str = ""  # what the experiment found beyond the statement
    module: str = ""  # the claim's source file, relative to the repository root

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
            "source": self.source,
            "statement": self.statement,
            "kind": self.kind,
            "reason": self.reason,
            "observation": self.observation,
            "file": self.module,
        }


def select_claims(only: list[str] | None = None) -> list[Claim]:
    """Claims matching ``only`` (claim IDs like ``"6a"`` or chapter numbers like ``"6"``).

    ``None`` selects every claim; an empty selection (``[]``, ``--only ''``) is an error, never "all".
    Unknown entries raise :class:`UnknownNameError` listing the valid claim IDs and chapters.
    """
    registry = load_claims()
    claims: list[Claim] = [registry.get(n) for n in registry.names()]
    claims.sort(key=lambda c: (c.chapter, _id_key(c.id)))
    if only is None:
        return claims
    if not [t for t in only if t.strip()]:
        raise ValueError("--only: empty selection; give claim IDs (6a) or chapter numbers (6)")
    chapters = sorted({c.chapter for c in claims})
    picked: list[Claim] = []
    for token in only:
        token = token.strip()
        if not token:
            continue
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


def _id_key(claim_id: str) -> tuple[int, str]:
    digits = claim_id.rstrip("abcdefghijklmnopqrstuvwxyz")
    return (int(digits), claim_id[len(digits):])


def run_claim(c: Claim, *, quick: bool, seed: int) -> ClaimRecord:
    rec = ClaimRecord(c.id, c.chapter, c.title, c.expected, c.reason, source=c.source, statement=c.statement,
                      kind=c.kind, module=claim_file(c))
    t0 = time.perf_counter()
    result = None
    try:
        result = c.run(quick, seed)
        rec.verdict, rec.measured, rec.test = result.verdict, result.measured, result.test
        rec.details, rec.observation = result.details, result.observation
        rec.figures = [render_png(fig) for fig in result.figures]
    except Exception:  # an experiment that crashes is reported, never hidden
        rec.error = traceback.format_exc(limit=8)
    finally:
        _close_all(result)
    rec.seconds = time.perf_counter() - t0
    return rec


def render_png(fig, dpi: int = 110) -> bytes:
    """The figure as PNG bytes; the figure is closed (a lab run keeps no figure open)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _close_all(result) -> None:
    if isinstance(result, ClaimResult):
        import matplotlib.pyplot as plt

        for fig in result.figures:
            plt.close(fig)


def claim_file(c: Claim) -> str:
    """The file that defines claim ``c``, as ``src/deepnotes/lab/claims/chNN_x.py`` (from its module)."""
    module = getattr(inspect.unwrap(c.func), "__module__", "") or ""
    if not module.startswith("deepnotes."):
        return ""
    return "src/" + module.replace(".", "/") + ".py"


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
