"""Shared validation and reduction for the loss functions."""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_choice, check_tensor

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: str) -> str:
    return check_choice("reduction", reduction, REDUCTIONS)


def reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``reduction`` (already validated) to per-element losses."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def check_pair(input: torch.Tensor, target: torch.Tensor) -> None:
    """``input`` is a non-empty float tensor and ``target`` a tensor of exactly its shape.

    We refuse broadcasting on purpose: ``F.mse_loss`` only warns when an ``(N, 1)`` prediction
    meets an ``(N,)`` target, and the silent ``(N, N)`` result is a classic wrong-number bug.
    """
    check_tensor("input", input, floating=True, nonempty=True)
    check_tensor("target", target)
    if target.shape != input.shape:
        raise ValueError(
            f"target must have the shape of input {tuple(input.shape)}, got {tuple(target.shape)}"
        )


def check_pm1(target: torch.Tensor) -> None:
    """Binary labels in the ±1 convention."""
    if not bool(((target == 1) | (target == -1)).all()):
        raise ValueError("target must hold labels -1 or +1")


def check_class_target(input: torch.Tensor, target: torch.Tensor) -> None:
    """``input`` (N, C) float scores and ``target`` (N,) integer classes in ``[0, C)``."""
    check_tensor("input", input, ndim=2, floating=True, nonempty=True)
    check_tensor("target", target, ndim=1)
    if target.is_floating_point() or target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"target must be an integer tensor of class indices, got {target.dtype}")
    if target.shape[0] != input.shape[0]:
        raise ValueError(
            f"target must have one class index per row of input ({input.shape[0]}), "
            f"got {target.shape[0]}"
        )
    if bool(((target < 0) | (target >= input.shape[1])).any()):
        raise ValueError(f"target must hold class indices in [0, {input.shape[1]})")
