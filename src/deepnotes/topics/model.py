"""The :class:`Topic` record and how an item's status is derived."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """One item of the topic map.

    Parameters
    ----------
    id : str
        The item's ID, e.g. ``"3.2"``; its chapter is the part before the dot.
    title : str
        What the item covers, in our words.
    ref : str
        The production reference it is tested against (empty where none is named).
    impl : tuple of str
        Dotted names of the public objects implementing it (``"deepnotes.optim.Adam"``).
    tests : tuple of str
        Test files (relative to the repository root) that check it against ``ref``.
    """

    id: str
    title: str
    ref: str = ""
    impl: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()

    @property
    def chapter(self) -> int:
        return int(self.id.split(".", 1)[0])

    def missing_impl(self) -> list[str]:
        """Dotted names in ``impl`` that do not resolve (empty when all import)."""
        return [name for name in self.impl if not _resolves(name)]

    @property
    def implemented(self) -> bool:
        return bool(self.impl) and not self.missing_impl()

    @property
    def reference_tested(self) -> bool:
        return self.implemented and bool(self.tests)


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False
