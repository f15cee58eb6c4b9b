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


def add_threads_option(parser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice; 1 is often fastest on a busy machine)")


def apply_threads(args) -> None:
    """Set torch's intra-op thread count from ``--threads`` (validated) for this command."""
    if getattr(args, "threads", None) is not None:
        import torch

        from deepnotes.core.checks import check_int

        torch.set_num_threads(check_int("--threads", args.threads, min=1))


def say(con, text: str) -> None:
    """Print one line now (flushed), also when the output is a file or a pipe."""
    con.print(text)
    con.file.flush()
