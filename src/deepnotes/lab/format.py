"""Measured values as readable rows: named keys, rounded numbers, nested results flattened.

A claim returns ``measured`` as plain data (numbers, lists, dicts). The report shows it as a table
of ``(name, value)`` rows: ``snake_case`` keys become words, nested dicts become rows named by
their path (``loss gap · dropout 0.5``), floats keep four significant digits, long lists are cut.

>>> measured_rows({"loss_gap": {"none": 0.123456, "L2": 0.05}, "n": 3})
[('loss gap · none', '0.1235'), ('loss gap · L2', '0.05'), ('n', '3')]
"""

from __future__ import annotations

import math
from typing import Any

from .runner import _plain

_MAX_LIST = 12
_MAX_DEPTH = 3


def humanize(key: str) -> str:
    """``"final_mse"`` → ``"final mse"`` (keys that already read as words are kept)."""
    return str(key).replace("_", " ").strip()


def format_value(value: Any) -> str:
    """One value as short text: floats to 4 significant digits, lists cut after 12 entries."""
    value = _plain(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "NaN"
    if isinstance(value, float):
        if value == 0 or (1e-3 <= abs(value) < 1e5):
            return f"{value:.4g}"
        return f"{value:.3e}" if math.isfinite(value) else str(value)
    if isinstance(value, list):
        shown = ", ".join(format_value(v) for v in value[:_MAX_LIST])
        more = f", … ({len(value)} values)" if len(value) > _MAX_LIST else ""
        return f"[{shown}{more}]"
    if isinstance(value, dict):
        return ", ".join(f"{humanize(k)} {format_value(v)}" for k, v in value.items())
    return str(value)


def measured_rows(measured: dict[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """Flatten ``measured`` into ``(name, value)`` rows for the report's tables."""
    rows: list[tuple[str, str]] = []
    for key, value in measured.items():
        name = f"{prefix} · {humanize(key)}" if prefix else humanize(key)
        if isinstance(value, dict) and value and depth < _MAX_DEPTH:
            rows += measured_rows(value, name, depth + 1)
        elif (isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value)
              and len(value) <= _MAX_LIST):
            for i, v in enumerate(value, 1):
                rows.append((f"{name} [{i}]", format_value(v)))
        else:
            rows.append((name, format_value(value)))
    return rows
