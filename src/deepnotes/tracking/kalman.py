"""A linear Kalman filter over a batch of independent tracks, and SORT's constant-velocity box model.

Each of the ``N`` tracks has a state mean ``x_i`` (``dim_x``) and covariance ``P_i``; all share
the transition ``F``, the process noise ``Q``, the measurement matrix ``H`` and noise ``R``:

    predict:  x ← F x                     P ← F P Fᵀ + Q
    update:   y = z − H x                 (innovation)
              S = H P Hᵀ + R              (innovation covariance)
              K = P Hᵀ S⁻¹                (gain)
              x ← x + K y
              P ← (I − K H) P (I − K H)ᵀ + K R Kᵀ   (Joseph form: stays symmetric and PSD)

These are ``filterpy.kalman.KalmanFilter``'s equations (it also uses the Joseph form), applied to
every track at once with batched matrix products instead of a Python object per track.

SORT's box model (Bewley et al., 2016) tracks ``[u, v, s, r, u̇, v̇, ṡ]``: box centre, area,
aspect ratio (held constant) and the velocities of the first three; the detector measures
``[u, v, s, r]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_positive

__all__ = [
    "KalmanFilter",
    "box_to_measurement",
    "constant_velocity_box_filter",
    "measurement_to_box",
]


def _matrix(name: str, value: Any, shape: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return arr.copy()


class KalmanFilter:
    """Kalman filter for a batch of tracks sharing one linear-Gaussian model (float64).

    Parameters
    ----------
    F : (dim_x, dim_x) state transition
    H : (dim_z, dim_x) measurement matrix
    Q : (dim_x, dim_x) process noise covariance
    R : (dim_z, dim_z) measurement noise covariance

    Attributes
    ----------
    x : ndarray (N, dim_x) state means;  P : ndarray (N, dim_x, dim_x) covariances
    """

    def __init__(self, F: Any, H: Any, Q: Any, R: Any):
        F = np.asarray(F, dtype=np.float64)
        if F.ndim != 2 or F.shape[0] != F.shape[1]:
            raise ValueError(f"F must be a square matrix, got shape {F.shape}")
        self.dim_x = F.shape[0]
        H = np.asarray(H, dtype=np.float64)
        if H.ndim != 2 or H.shape[1] != self.dim_x:
            raise ValueError(f"H must have shape (dim_z, {self.dim_x}), got {H.shape}")
        self.dim_z = H.shape[0]
        self.F = _matrix("F", F, (self.dim_x, self.dim_x))
        self.H = _matrix("H", H, (self.dim_z, self.dim_x))
        self.Q = _matrix("Q", Q, (self.dim_x, self.dim_x))
        self.R = _matrix("R", R, (self.dim_z, self.dim_z))
        self.x = np.zeros((0, self.dim_x))
        self.P = np.zeros((0, self.dim_x, self.dim_x))

    def __len__(self) -> int:
        return len(self.x)

    def add(self, x0: Any, P0: Any) -> np.ndarray:
        """Append tracks with initial means ``x0 (M, dim_x)`` and covariances ``P0``; returns their rows.

        ``P0`` is one ``(dim_x, dim_x)`` matrix shared by the new tracks or ``(M, dim_x, dim_x)``.
        """
        x0 = np.atleast_2d(np.asarray(x0, dtype=np.float64))
        if x0.ndim != 2 or x0.shape[1] != self.dim_x:
            raise ValueError(f"x0 must have shape (M, {self.dim_x}), got {x0.shape}")
        P0 = np.broadcast_to(np.asarray(P0, dtype=np.float64), (len(x0), self.dim_x, self.dim_x))
        start = len(self.x)
        self.x = np.concatenate([self.x, x0])
        self.P = np.concatenate([self.P, P0])
        return np.arange(start, len(self.x))

    def keep(self, rows: Any) -> None:
        """Keep only the given tracks (a boolean mask or indices), in that order."""
        self.x = self.x[rows]
        self.P = self.P[rows]

    def predict(self, Q: Any = None) -> None:
        """Prior for the next step of every track: ``x ← F x``, ``P ← F P Fᵀ + Q``.

        ``Q`` overrides the process noise for this step: one matrix, or one per track (N, d, d).
        """
        Q = self.Q if Q is None else np.asarray(Q, dtype=np.float64)
        self.x = self.x @ self.F.T
        self.P = self.F @ self.P @ self.F.T + Q

    def project(self, rows: Any = slice(None), R: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Predicted measurements ``H x`` (M, dim_z) and innovation covariances ``S`` (M, dim_z, dim_z)."""
        R = self.R if R is None else np.asarray(R, dtype=np.float64)
        return self.x[rows] @ self.H.T, self.H @ self.P[rows] @ self.H.T + R

    def update(self, z: Any, rows: Any, R: Any = None) -> None:
        """Correct the tracks ``rows`` with measurements ``z (M, dim_z)`` (one per row).

        ``R`` overrides the measurement noise: one matrix, or one per updated track (M, d, d).
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        z = np.asarray(z, dtype=np.float64).reshape(len(rows), self.dim_z)
        R = self.R if R is None else np.asarray(R, dtype=np.float64)
        x, P, H = self.x[rows], self.P[rows], self.H
        y = z - x @ H.T
        PHt = P @ H.T
        S = H @ PHt + R
        K = PHt @ np.linalg.inv(S)
        x = x + (K @ y[:, :, None])[:, :, 0]
        I_KH = np.eye(self.dim_x) - K @ H
        P = I_KH @ P @ I_KH.transpose(0, 2, 1) + K @ R @ K.transpose(0, 2, 1)
        self.x[rows], self.P[rows] = x, P

    def mahalanobis_sq(self, z: Any, rows: Any = slice(None), R: Any = None) -> np.ndarray:
        """Squared Mahalanobis distances ``(M_tracks, N_measurements)`` of measurements to tracks."""
        z = np.asarray(z, dtype=np.float64).reshape(-1, self.dim_z)
        mean, S = self.project(rows, R)
        d = z[None, :, :] - mean[:, None, :]  # (M, N, dim_z)
        return np.einsum("mnj,mjk,mnk->mn", d, np.linalg.inv(S), d)


# --- SORT's box model ----------------------------------------------------------------------------


def box_to_measurement(boxes: Any) -> np.ndarray:
    """``(x1, y1, x2, y2)`` boxes (N, 4) → ``[u, v, s, r]``: centre, area ``w·h``, aspect ``w / h``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w * h, w / h], axis=1)


def measurement_to_box(z: Any) -> np.ndarray:
    """Inverse of :func:`box_to_measurement` (a non-positive area gives a zero-size box)."""
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    s, r = np.maximum(z[:, 2], 0.0), np.maximum(z[:, 3], 0.0)
    w = np.sqrt(s * r)
    h = np.divide(s, w, out=np.zeros_like(w), where=w > 0)
    u, v = z[:, 0], z[:, 1]
    return np.stack([u - w / 2, v - h / 2, u + w / 2, v + h / 2], axis=1)


# SORT's noise settings (the reference implementation's constants): measurement noise 10x larger on
# area and aspect than on the centre, a very uncertain initial velocity, small process noise on the
# velocities (and smaller still on the area rate).
SORT_P0 = np.diag([10.0, 10.0, 10.0, 10.0, 1e4, 1e4, 1e4])
SORT_Q = np.diag([1.0, 1.0, 1.0, 1.0, 0.01, 0.01, 1e-4])
SORT_R = np.diag([1.0, 1.0, 10.0, 10.0])


def constant_velocity_box_filter(
    q_scale: float = 1.0, r_scale: float = 1.0
) -> KalmanFilter:
    """The 7-state constant-velocity filter of SORT (``Q``, ``R`` optionally scaled)."""
    q_scale = check_positive("q_scale", q_scale)
    r_scale = check_positive("r_scale", r_scale)
    F = np.eye(7)
    F[0, 4] = F[1, 5] = F[2, 6] = 1.0  # position += velocity (one frame per step)
    H = np.eye(4, 7)
    return KalmanFilter(F, H, SORT_Q * q_scale, SORT_R * r_scale)
