"""Name → factory registries shared by models, datasets, optimizers, losses, claims and bench cases.

A :class:`Registry` maps a name to an object (usually a class or a factory function) plus free-form
metadata. Unknown names raise :class:`UnknownNameError`, whose message lists every valid name so a
command-line user can correct the typo at once.

Example
-------
>>> from deepnotes.core.registry import Registry
>>> shapes = Registry("shape")
>>> @shapes.register("square", sides=4)
... def square(side):
...     return side * side
>>> shapes.create("square", 3)
9
>>> shapes.names()
['square']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the valid names."""

    def __init__(self, kind: str, name: str, valid: list[str]):
        self.kind, self.name, self.valid = kind, name, valid
        super().__init__(name)

    def __str__(self) -> str:
        choices = ", ".join(self.valid) if self.valid else "(none registered)"
        return f"unknown {self.kind} {self.name!r}; valid names: {choices}"


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    meta: dict[str, Any] = field(default_factory=dict)


class Registry:
    """A named collection of factories of one kind (``"model"``, ``"dataset"``, ...)."""

    def __init__(self, kind: str, loader: str | None = None):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        # dotted path of a function importing every module that registers into this registry;
        # called once, lazily, so `MODELS.create("cnn", ...)` works without importing models first
        self._loader = loader
        self._loaded = loader is None

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # set first: the loader's imports may look names up themselves
        module, _, func = self._loader.rpartition(".")
        getattr(importlib.import_module(module), func)()

    def register(self, name: str | None = None, **meta: Any) -> Callable[[Any], Any]:
        """Decorator registering ``obj`` under ``name`` (default: ``obj.__name__``).

        Registering the same name twice is an error unless it is the same object (module reloads).
        """

        def deco(obj: Any) -> Any:
            key = name or getattr(obj, "__name__", None)
            if not isinstance(key, str) or not key:
                raise TypeError(f"{self.kind} registry: name must be a non-empty string")
            old = self._entries.get(key)
            if old is not None and _qualname(old.obj) != _qualname(obj):
                raise ValueError(f"{self.kind} {key!r} is already registered by {_qualname(old.obj)}")
            self._entries[key] = Entry(key, obj, dict(meta))
            return obj

        return deco

    def add(self, name: str, obj: Any, **meta: Any) -> Any:
        """Register ``obj`` under ``name`` without decorator syntax."""
        return self.register(name, **meta)(obj)

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def get(self, name: str) -> Any:
        """The registered object itself (a class or a function)."""
        return self.entry(name).obj

    def meta(self, name: str) -> dict[str, Any]:
        return dict(self.entry(name).meta)

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the registered factory with ``args``/``kwargs``."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[k] for k in self.names()]

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


# The project's registries. Library modules register into these at import time; the first lookup
# of an unknown name (or a listing) imports every module that registers into that registry.
MODELS = Registry("model", loader="deepnotes.plugins.load_all")
DATASETS = Registry("dataset", loader="deepnotes.plugins.load_all")
OPTIMIZERS = Registry("optimizer", loader="deepnotes.plugins.load_all")
LOSSES = Registry("loss", loader="deepnotes.plugins.load_all")
TASKS = Registry("task", loader="deepnotes.train.tasks.load_tasks")
CLAIMS = Registry("claim", loader="deepnotes.lab.loader.load_claims")
BENCH_CASES = Registry("bench case", loader="deepnotes.bench.runner.load_cases")
