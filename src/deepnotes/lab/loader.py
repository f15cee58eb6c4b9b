"""Import every claim module so that the registry is complete."""

from __future__ import annotations

import importlib
import pkgutil

from deepnotes.core.registry import CLAIMS


def load_claims():
    """Import all modules in ``deepnotes.lab.claims`` and return the claim registry."""
    import deepnotes.lab.claims as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        importlib.import_module(f"{pkg.__name__}.{info.name}")
    return CLAIMS
