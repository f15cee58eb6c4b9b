"""Helpers shared by sub-commands."""

from __future__ import annotations

import sys

from rich.console import Console


def console() -> Console:
    # off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; use a log-friendly width
    return Console(highlight=False, width=None if sys.stdout.isatty() else 140)


def split_names(values: list[str] | None) -> list[str] | None:
    """Accept ``--only 1a 6b`` and ``--only 1a,6b`` alike."""
    if not values:
        return None
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


def interactive() -> bool:
    return sys.stderr.isatty()
