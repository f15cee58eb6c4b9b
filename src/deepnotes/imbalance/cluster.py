"""Cluster-centroid under-sampling: replace a class by the centres of K-means with K = target size.

Each targeted class is clustered by :class:`deepnotes.classic.KMeans` (k-means++ seeding with one
candidate per step, then
Lloyd iterations with scikit-learn's stopping rule) into as many clusters as samples it should
keep, and the class is replaced by the cluster centres (imblearn's ``voting="soft"``). Classes not
targeted are kept as they are. The output is ordered class by class in sorted class order, like
``imblearn.under_sampling.ClusterCentroids``; there is no ``sample_indices_`` since the centres
are new points.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(60, 2)); y = np.array([0] * 50 + [1] * 10)
>>> X_res, y_res = ClusterCentroids(random_state=0).fit_resample(X, y)
>>> np.bincount(y_res).tolist()
[10, 10]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepnotes.classic.kmeans import KMeans
from deepnotes.classic.kmeans_plusplus import kmeans_plusplus
from deepnotes.core.checks import check_float, check_int
from deepnotes.core.seeding import make_generator
from deepnotes.imbalance._base import (
    BaseSampler,
    cat_rows,
    class_indices,
    random_state_of,
    take_rows,
)


class ClusterCentroids(BaseSampler):
    """Under-sample by K-means centroids.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable
        Default ``"auto"``: every class but the minority shrinks to the minority size.
    random_state : None, int or RandomState
        Seeds the k-means++ initialization.
    max_iter : int
        Lloyd iterations at most (sklearn's default 300).
    tol : float
        Relative centre-shift tolerance (sklearn's default 1e-4).

    Attributes
    ----------
    sampling_strategy_ : OrderedDict class -> number kept
    cluster_seeds_ : dict class code -> Tensor[K, d], the k-means++ seeds
    labels_ : dict class code -> Tensor[n_class], the cluster of each sample of the class
    """

    _sampling_type = "under-sampling"
    _floating = True

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        random_state: Any = None,
        max_iter: int = 300,
        tol: float = 1e-4,
    ):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol

    def _resample(self, X, codes, counts, targets):
        max_iter = check_int("max_iter", self.max_iter, min=1)
        tol = check_float("tol", self.tol, min=0.0)
        rng = random_state_of(self.random_state)
        parts, labels = [], []
        self.cluster_seeds_, self.labels_ = {}, {}
        for c in range(len(counts)):  # a loop over classes
            members = class_indices(codes, c)
            if c in targets and targets[c] < len(members):
                if targets[c] == 0:
                    continue
                Xc = take_rows(X, members).to(torch.float64)
                seed = int(rng.randint(np.iinfo(np.int32).max))
                # one candidate per step (the original k-means++): K is the size of a whole
                # class here, and the greedy 2 + ln K candidates would multiply the seeding cost
                seeds = kmeans_plusplus(Xc, targets[c], make_generator(seed), n_local_trials=1)
                km = KMeans(targets[c], init=seeds, max_iter=max_iter, tol=tol).fit(Xc)
                centers, assigned = km.cluster_centers_, km.labels_
                self.cluster_seeds_[c], self.labels_[c] = seeds, assigned
                parts.append(centers.to(X.dtype))
                labels.append(torch.full((targets[c],), c, dtype=torch.int64))
            else:
                parts.append(take_rows(X, members))
                labels.append(codes[members])
        return cat_rows(parts), cat_rows(labels)
