"""Trainer checkpoints: plain state saved atomically, loaded only through ``safe_load``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from deepnotes.core.io import CheckpointError, atomic_save, safe_load

FORMAT = "deepnotes-checkpoint"
VERSION = 1
_NAME = re.compile(r"^epoch_(\d{4,})\.pt$")


def checkpoint_path(folder: Path, epoch: int) -> Path:
    return Path(folder) / f"epoch_{epoch:04d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints in ``folder``, oldest first (by epoch number)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(state: dict[str, Any], folder: Path, epoch: int, keep: int = 2) -> Path:
    """Write ``state`` atomically as ``epoch_NNNN.pt`` and delete all but the newest ``keep``."""
    path = atomic_save({"format": FORMAT, "version": VERSION, **state}, checkpoint_path(folder, epoch))
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a trainer checkpoint; a file that is not one raises :class:`CheckpointError` naming it."""
    state = safe_load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a deepnotes trainer checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} has version {state.get('version')}, expected {VERSION}")
    return state
