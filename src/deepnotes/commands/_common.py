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


THREADS_HELP = ("torch intra-op threads: a number, or 'auto' (default): the cores other processes leave "
                "free (1-minute load average), at most torch's choice — 1 on a busy machine")


def add_threads_option(parser) -> None:
    parser.add_argument("--threads", default="auto", help=THREADS_HELP)


def thread_count(value) -> int:
    """``--threads``: ``'auto'`` (or None) → :func:`deepnotes.core.threads.auto_threads`, else a
    positive integer."""
    from deepnotes.core.checks import check_int
    from deepnotes.core.threads import auto_threads

    if value is None or value == "auto":
        return auto_threads()
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"--threads must be a positive integer or 'auto', got {value!r}") from None
    return check_int("--threads", number, min=1)


def apply_threads(args) -> int:
    """Set torch's intra-op thread count from ``--threads`` for this command; returns it."""
    import torch

    n = thread_count(getattr(args, "threads", "auto"))
    torch.set_num_threads(n)
    return n


def say(con, text: str) -> None:
    """Print one line now (flushed), also when the output is a file or a pipe."""
    con.print(text)
    con.file.flush()
