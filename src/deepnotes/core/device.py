"""Device selection: ``"auto"`` picks CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_type

_KNOWN = ("auto", "cpu", "cuda", "mps")


def select_device(name: str | torch.device = "auto") -> torch.device:
    """Resolve ``name`` to a ``torch.device``.

    ``"auto"`` prefers ``cuda``, then ``mps``, then ``cpu``. Asking explicitly for a device that is
    not available raises ``ValueError`` instead of silently falling back.
    """
    if isinstance(name, torch.device):
        name = str(name)
    check_type("device", name, str)
    kind = name.split(":", 1)[0]
    if kind not in _KNOWN:
        raise ValueError(f"device must be one of {', '.join(_KNOWN)} (optionally cuda:N); got {name!r}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available on this machine")
    if kind == "mps" and not _mps_available():
        raise ValueError(f"device {name!r} requested but MPS is not available on this machine")
    return torch.device(name)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
