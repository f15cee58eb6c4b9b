"""K-means by Lloyd's iteration, written as the algorithm reads.

Repeat: give every point the label of its nearest centre, then move each centre to the mean of
its points. The rules around it are scikit-learn's (``sklearn.cluster.KMeans(algorithm="lloyd")``)
so that both give the same result from the same initial centres:

* the data are centred on their mean first (accuracy far from the origin);
* stop when the labels no longer change, or when the squared centre shift summed over clusters is
  at most ``tol · mean feature variance``;
* a cluster left empty takes the point farthest from its own centre (farthest first), and that
  point leaves its old cluster's sum;
* after stopping on the shift, labels are recomputed once for the final centres.

:class:`deepnotes.classic.KMeans` runs the same iteration faster (bounds that skip points whose
label cannot change, running sums); the tests check that both agree.

Example
-------
>>> import torch
>>> X = torch.tensor([[0.0], [0.2], [5.0], [5.4]], dtype=torch.float64)
>>> centers, labels, inertia, n_iter = lloyd(X, X[[0, 2]])
>>> [round(c, 9) for c in centers.flatten().tolist()], labels.tolist(), n_iter
([0.1, 5.2], [0, 0, 1, 1], 2)
"""

from __future__ import annotations

import torch


def nearest_centre(X: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Label of the nearest centre of every row: ``argmin_c ‖x − c‖²`` (ties: the first centre).

    ``‖x‖²`` is the same for every centre, so ``‖c‖² − 2x·c`` decides; one matrix product.
    """
    scores = (centers * centers).sum(1) - 2 * X @ centers.T  # (n, k)
    return scores.argmin(1)


def lloyd(X: torch.Tensor, init: torch.Tensor, max_iter: int = 300, tol: float = 1e-4):
    """Lloyd's K-means from the centres ``init (k, d)``.

    Returns ``(centers (k, d), labels (n,), inertia, n_iter)``; ``inertia`` is the sum of squared
    distances of the points to their centres.
    """
    mean = X.mean(0)
    X = X - mean
    centers = init.to(X.dtype) - mean
    k = centers.shape[0]
    tol = tol * float(X.var(0, unbiased=False).mean())
    labels, strict = None, False
    n_iter = 0
    while n_iter < max_iter:  # the iterations themselves; each is vectorized over points
        n_iter += 1
        new_labels = nearest_centre(X, centers)
        strict = labels is not None and torch.equal(new_labels, labels)
        labels = new_labels
        counts = torch.bincount(labels, minlength=k).to(X.dtype)
        sums = torch.zeros_like(centers).index_add_(0, labels, X)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):  # farthest points from their own centres take the empty clusters
            far = ((X - centers[labels]) ** 2).sum(1).topk(len(empty)).indices
            sums.index_add_(0, labels[far], -X[far])
            counts.index_add_(0, labels[far], -torch.ones(len(far), dtype=X.dtype))
            sums[empty], counts[empty] = X[far], 1.0
        new_centers = sums / counts.unsqueeze(1)
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if strict or shift <= tol:
            break
    if not strict:  # the labels of the final centres
        labels = nearest_centre(X, centers)
    inertia = float(((X - centers[labels]) ** 2).sum())
    return centers + mean, labels, inertia, n_iter
