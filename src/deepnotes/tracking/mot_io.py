"""Reading and writing MOTChallenge text files (``gt.txt``, ``det.txt``, tracker output).

One object per line: ``frame, id, x, y, w, h, conf, x3d, y3d, z3d`` — comma-separated numbers,
frames counted from 1, ``id = -1`` in detection files, boxes as top-left corner and size in
pixels. Every problem is reported with the file and line it is on: a line that is not at least
six numbers, a non-integer or non-positive frame, a non-positive width or height, frames out of
order, or a second row for the same (frame, id).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepnotes.core.io import atomic_write_bytes

__all__ = ["read_mot", "write_mot"]


def read_mot(path: str | Path, *, detections: bool = False) -> np.ndarray:
    """Rows of a MOTChallenge file as float64 ``(N, 10)`` (missing trailing columns are -1).

    With ``detections=True`` ids may repeat within a frame (``det.txt`` uses -1 for all).
    """
    path = Path(path)
    rows: list[list[float]] = []
    seen: set[tuple[float, float]] = set()
    last_frame = -np.inf
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            where = f"{path}:{lineno}"
            try:
                values = [float(v) for v in text.replace(";", ",").split(",") if v.strip() != ""]
            except ValueError:
                raise ValueError(f"{where}: expected comma-separated numbers, got {text!r}") from None
            if len(values) < 6:
                raise ValueError(f"{where}: expected at least 6 fields (frame, id, x, y, w, h), got {len(values)}")
            if not all(np.isfinite(values)):
                raise ValueError(f"{where}: values must be finite, got {text!r}")
            frame, oid, _, _, w, h = values[:6]
            if frame != int(frame) or frame < 1:
                raise ValueError(f"{where}: frame must be a positive integer, got {frame:g}")
            if w <= 0 or h <= 0:
                raise ValueError(f"{where}: width and height must be positive, got w={w:g}, h={h:g}")
            if frame < last_frame:
                raise ValueError(f"{where}: frame {frame:g} comes after frame {last_frame:g} (rows must be sorted by frame)")
            if not detections:
                if (frame, oid) in seen:
                    raise ValueError(f"{where}: second row for frame {frame:g}, id {oid:g}")
                seen.add((frame, oid))
            last_frame = frame
            rows.append((values + [-1.0] * 4)[:10])
    return np.array(rows, dtype=np.float64).reshape(-1, 10)


def write_mot(path: str | Path, rows: np.ndarray) -> None:
    """Write ``(N, >= 6)`` rows as a MOTChallenge file (atomically), padding to 10 columns with -1."""
    arr = np.asarray(rows, dtype=np.float64)
    if arr.size and (arr.ndim != 2 or arr.shape[1] < 6):
        raise ValueError(f"rows must have shape (N, >= 6), got {arr.shape}")
    arr = arr.reshape(-1, arr.shape[-1] if arr.size else 10)
    pad = np.full((len(arr), max(0, 10 - arr.shape[1])), -1.0)
    arr = np.concatenate([arr[:, :10], pad], axis=1)
    lines = [
        f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},{r[6]:g},{r[7]:g},{r[8]:g},{r[9]:g}"
        for r in arr
    ]
    atomic_write_bytes(Path(path), ("\n".join(lines) + ("\n" if lines else "")).encode())
