"""The :class:`Topic` record and how an item's status is derived.

An item's status is earned, not claimed:

* ``todo`` — nothing in ``impl`` (or a name there does not import);
* ``implemented, untested`` — ``impl`` resolves, no test file is listed;
* ``no reference (hand-checked)`` — tested, and the map names no library reference (``ref`` empty):
  the tests compare with hand-computed values or a slow loop written in the test;
* ``tests, reference not declared`` — tested, ``ref`` names a library, but the entry does not
  declare what the tests compare against;
* ``reference-tested`` — tested, and every name in ``tested_against`` imports and appears in one of
  the listed test files (a cheap static check that the declaration is not a wish);
* ``partly done`` — whatever the above says, ``todo`` names a part of the item that is missing.

``tested_against`` is the declaration: the dotted names of the reference objects the tests call
(``"sklearn.metrics.roc_auc_score"``, ``"torch.nn.functional.conv2d"``). It is optional, so an
entry written without it still loads; it just cannot be ``reference-tested``.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # the checkout root (tests/ lives there)

STATUSES = (
    "todo",
    "partly done",
    "implemented, untested",
    "tests, reference not declared",
    "no reference (hand-checked)",
    "reference-tested",
)


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
        Test files (relative to the repository root) that check it.
    tested_against : tuple of str
        Dotted names of the reference objects those tests compare with (``"torch.optim.Adam"``);
        each must import and its last part must appear in one of ``tests``.
    todo : str
        What of the item is still missing (empty when nothing is); shown by ``deepnotes topics``.
    """

    id: str
    title: str
    ref: str = ""
    impl: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    tested_against: tuple[str, ...] = ()
    todo: str = ""

    @property
    def chapter(self) -> int:
        return int(self.id.split(".", 1)[0])

    def missing_impl(self) -> list[str]:
        """Dotted names in ``impl`` that do not resolve (empty when all import)."""
        return [name for name in self.impl if not _resolves(name)]

    def undeclared_references(self) -> list[str]:
        """Names in ``tested_against`` that do not import or do not appear in any listed test file."""
        text = "".join(_read(f) for f in self.tests)
        return [n for n in self.tested_against if not _resolves(n) or n.rsplit(".", 1)[-1] not in text]

    @property
    def implemented(self) -> bool:
        return bool(self.impl) and not self.missing_impl()

    @property
    def status(self) -> str:
        if not self.implemented:
            return "todo"
        if self.todo:
            return "partly done"
        if not self.tests:
            return "implemented, untested"
        if self.tested_against and not self.undeclared_references():
            return "reference-tested"
        if not self.ref.strip():
            return "no reference (hand-checked)"
        return "tests, reference not declared"

    @property
    def reference_tested(self) -> bool:
        return self.status == "reference-tested"

    @property
    def where(self) -> str:
        """The source file of the first implementing object (relative to the checkout), or ``""``."""
        for name in self.impl:
            path = _source_file(name)
            if path:
                return path
        return ""


@cache
def _read(path: str) -> str:
    try:
        return (ROOT / path).read_text(encoding="utf-8")
    except OSError:
        return ""


def _lookup(dotted: str):
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
            return None
        return obj
    return None


@cache
def _resolves(dotted: str) -> bool:
    return _lookup(dotted) is not None


@cache
def _source_file(dotted: str) -> str:
    obj = _lookup(dotted)
    if obj is None:
        return ""
    target = inspect.unwrap(obj) if callable(obj) else obj
    try:
        path = Path(inspect.getsourcefile(target) or inspect.getsourcefile(type(target)) or "")
    except TypeError:
        try:
            path = Path(inspect.getsourcefile(type(target)) or "")
        except TypeError:
            return ""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
