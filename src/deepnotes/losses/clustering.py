"""The K-means objective: the sum of squared distances from each point to its centre."""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_tensor

# Bound the (chunk, K, D) difference tensor of the nearest-centre search to ~16 M elements.
_CHUNK_ELEMENTS = 1 << 24


def kmeans_objective(
    x: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """``Σ_i ||x_i − c_{a(i)}||²`` — the quantity K-means minimises (sklearn's ``inertia_``).

    Parameters
    ----------
    x : Tensor[N, D]
        Points.
    centers : Tensor[K, D]
        Cluster centres.
    labels : Tensor[N] of int, optional
        The assignment ``a(i)`` in ``[0, K)``. When omitted each point goes to its nearest centre
        (ties to the lowest index), which is the assignment step of Lloyd's algorithm.

    Returns
    -------
    Tensor
        A scalar, differentiable with respect to ``x`` and ``centers``.

    Examples
    --------
    >>> kmeans_objective(torch.tensor([[0.0], [1.0], [10.0]]), torch.tensor([[0.5], [10.0]]))
    tensor(0.5000)
    """
    check_tensor("x", x, ndim=2, floating=True, nonempty=True)
    check_tensor("centers", centers, ndim=2, floating=True, nonempty=True)
    if centers.shape[1] != x.shape[1]:
        raise ValueError(
            f"centers must have x's {x.shape[1]} features per row, got {centers.shape[1]}"
        )
    if labels is None:
        labels = _nearest(x.detach(), centers.detach().to(x.dtype))
    else:
        check_tensor("labels", labels, ndim=1)
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(f"labels must be an integer tensor, got {labels.dtype}")
        if labels.shape[0] != x.shape[0]:
            raise ValueError(f"labels must have one entry per row of x ({x.shape[0]})")
        if bool(((labels < 0) | (labels >= centers.shape[0])).any()):
            raise ValueError(f"labels must hold centre indices in [0, {centers.shape[0]})")
    # differences, not the ||x||² − 2x·c + ||c||² expansion: that one cancels catastrophically
    # for points far from the origin and close to their centre
    return (x - centers[labels].to(x.dtype)).square().sum()


def _nearest(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    k, d = centers.shape
    step = max(1, _CHUNK_ELEMENTS // max(1, k * d))
    parts = [
        (chunk[:, None, :] - centers[None]).square().sum(-1).argmin(dim=1)
        for chunk in x.split(step)  # a loop over memory-bounded chunks, not over samples
    ]
    return torch.cat(parts)
