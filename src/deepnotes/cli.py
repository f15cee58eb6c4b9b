"""The ``deepnotes`` command.

Each sub-command lives in its own module under :mod:`deepnotes.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (returning the exit code).

Exit codes: 0 success; 1 the work ran but its result is a failure (a lab claim errored or its
verdict differs from the expected one, a sanity check failed, training stopped on a non-finite
loss); 2 bad usage (unknown name, invalid argument); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from deepnotes import __version__
from deepnotes.core.io import CheckpointError
from deepnotes.core.registry import UnknownNameError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepnotes",
        description="A runnable, verified companion to deep-learning theory.",
        epilog="Run 'deepnotes COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"deepnotes {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import deepnotes.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from deepnotes.core.threads import torch_threads

    try:
        with torch_threads(None):  # a command may set the thread count; the caller gets its own back
            return int(args.func(args) or 0)
    except (UnknownNameError, ValueError, TypeError, CheckpointError, FileNotFoundError) as exc:
        msg = str(exc) if not isinstance(exc, KeyError) else exc.__str__()
        print(f"deepnotes {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
