"""Import every package that registers models, datasets, optimizers, losses or sequence tasks.

Library packages register into the registries of :mod:`deepnotes.core.registry` at import time.
Importing them all here keeps the CLI and the contract tests independent of which chapter
provides what. A package listed here that does not exist yet is skipped; any other import error
propagates (a broken module must not silently vanish from the registries).
"""

from __future__ import annotations

import importlib

REGISTERING_PACKAGES = (
    "deepnotes.data",
    "deepnotes.models",
    "deepnotes.optim",
    "deepnotes.losses",
    "deepnotes.sequence",
    "deepnotes.classic",
    "deepnotes.imbalance",
    "deepnotes.nn",
    "deepnotes.train",
    "deepnotes.graph",
    "deepnotes.segmentation",
    "deepnotes.generative",
    "deepnotes.attention",
    "deepnotes.detection.models",
    "deepnotes.detection.two_stage",
)


def load_all() -> None:
    for name in REGISTERING_PACKAGES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
