"""k-means++ seeding (Arthur & Vassilvitskii, 2007) in scikit-learn's greedy form.

The first centre is a random row; each next one is drawn with probability proportional to the
squared distance to the nearest centre chosen so far (``D²`` sampling). The greedy form draws
several candidates per step and keeps the one that lowers the total squared distance most.

Example
-------
>>> import torch
>>> X = torch.tensor([[0.0], [0.1], [10.0], [10.1]], dtype=torch.float64)
>>> seeds = kmeans_plusplus(X, 2, torch.Generator().manual_seed(0))
>>> sorted(round(v) for v in seeds.flatten().tolist())
[0, 10]
"""

from __future__ import annotations

import math

import torch


def kmeans_plusplus(
    X: torch.Tensor,
    n_clusters: int,
    generator: torch.Generator,
    n_local_trials: int | None = None,
) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii, with ``2 + ln k`` candidates per step as in sklearn).

    Each step draws ``n_local_trials`` candidates (default ``2 + ln k``, scikit-learn's; 1 is
    the original k-means++) with probability ∝ the squared distance to the nearest chosen
    centre and keeps the one that lowers the total most. Distances are computed on the data
    centred on its mean (far from the origin they would cancel); the seeds are rows of ``X``.

    X : Tensor[n, d] → Tensor[n_clusters, d]
    """
    n = X.shape[0]
    trials = 2 + int(math.log(n_clusters)) if n_local_trials is None else n_local_trials
    Xc = X - X.mean(0)
    x_sq = (Xc * Xc).sum(1)

    def sq_dist(rows: torch.Tensor) -> torch.Tensor:  # ‖x − c‖² for the rows c, (len(rows), n)
        return (x_sq[rows].unsqueeze(1) - 2 * Xc[rows] @ Xc.T + x_sq).clamp_min_(0)

    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    closest = sq_dist(torch.tensor([first], device=X.device))[0]
    for _ in range(1, n_clusters):  # one step per centre; each step is vectorized over points
        # draw ∝ closest: uniform numbers placed on the cumulative sum (what multinomial does,
        # without rebuilding its tables every step)
        cdf = torch.cumsum(closest, 0)
        if float(cdf[-1]) > 0:
            u = torch.rand(trials, generator=generator, dtype=cdf.dtype) * cdf[-1]
            cand = torch.searchsorted(cdf, u, right=True).clamp_max_(n - 1)
        else:  # every point is a chosen centre already
            cand = torch.randint(n, (trials,), generator=generator)
        d_cand = torch.minimum(closest, sq_dist(cand))  # (trials, n)
        best = int(d_cand.sum(1).argmin())
        closest = d_cand[best]
        chosen.append(int(cand[best]))
    return X[torch.tensor(chosen, device=X.device)].clone()
