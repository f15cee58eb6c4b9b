"""Trainer tasks: one small file per task, each a registered :class:`Task` (see ``base.py``)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from deepnotes.train.tasks.base import StepContext, Task, move_to

# the task of a Trainer or a dataset that names none
DEFAULT_TASK = "classification"


def load_tasks() -> None:
    """Import every module of this package (each registers its task), then the plugin packages."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        importlib.import_module(f"{__name__}.{info.name}")
    from deepnotes.plugins import load_all

    load_all()


def get_task(task: str | Task | None) -> Task:
    """A task instance from a registered name, an instance, or ``None`` (the default task)."""
    from deepnotes.core.checks import check_choice
    from deepnotes.core.registry import TASKS

    if isinstance(task, Task):
        return task
    if task is None:
        task = DEFAULT_TASK
    if not isinstance(task, str):
        raise TypeError(f"task must be a task name or a Task, got {type(task).__name__}")
    check_choice("task", task, TASKS.names())
    return TASKS.create(task)


def model_tasks(meta: dict[str, Any]) -> tuple[str, ...]:
    """The tasks a registered model declares (``task=`` as a name or a tuple of names); empty when none."""
    declared = meta.get("task", ())
    return (declared,) if isinstance(declared, str) else tuple(declared)


def model_fits(meta: dict[str, Any], task: Task) -> bool:
    """Whether a model registered with ``meta`` can be trained on ``task``."""
    declared = model_tasks(meta)
    return task.name in declared if declared else task.generic_models


from deepnotes.train.tasks.classification import ClassificationTask  # noqa: E402
from deepnotes.train.tasks.regression import RegressionTask  # noqa: E402

__all__ = [
    "DEFAULT_TASK",
    "ClassificationTask",
    "RegressionTask",
    "StepContext",
    "Task",
    "get_task",
    "load_tasks",
    "model_fits",
    "model_tasks",
    "move_to",
]
