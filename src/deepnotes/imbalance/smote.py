"""SMOTE and ADASYN: synthetic minority samples on segments between a sample and a neighbour.

A new point is ``x_i + u · (x_nn − x_i)`` with ``u ~ U[0, 1)`` and ``x_nn`` one of the ``k``
nearest same-class neighbours of ``x_i`` (Chawla et al., 2002). SMOTE picks the base samples
uniformly; ADASYN (He et al., 2008) gives sample ``i`` a share of the new points proportional to
the fraction ``r_i`` of *other-class* points among its ``k`` nearest neighbours in the whole set:
``g_i = rint(r_i / Σ r · G)``.

The neighbour search is :func:`deepnotes.classic.neighbors_fast.kneighbors` (exact: a low-precision
matrix product with a proven error bound picks the candidates, float64 ranks them). The random draws use a ``numpy.random.RandomState`` in imbalanced-learn's order,
so, for a fixed ``random_state`` and data without distance ties, the synthetic points equal
``imblearn.over_sampling.SMOTE`` / ``ADASYN``'s.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(40, 2)); y = np.array([0] * 30 + [1] * 10)
>>> X_res, y_res = SMOTE(k_neighbors=3, random_state=0).fit_resample(X, y)
>>> np.bincount(y_res).tolist()
[30, 30]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepnotes.classic.neighbors_fast import kneighbors
from deepnotes.core.checks import check_int
from deepnotes.imbalance._base import (
    BaseSampler,
    cat_rows,
    class_indices,
    random_state_of,
    take_rows,
)


def _interpolate(X_class, nns, rows, cols, steps, dtype):
    """``x_row + step · (x_neighbour − x_row)`` in float64, cast back to the input dtype."""
    base = X_class.index_select(0, rows).to(torch.float64)
    partner = nns.reshape(-1).index_select(0, rows * nns.shape[1] + cols)
    out = X_class.index_select(0, partner).to(torch.float64)
    return out.sub_(base).mul_(steps).add_(base).to(dtype)  # in place: no extra temporaries


def _check_neighbours(name: str, k: int, n_class: int, label: Any) -> None:
    if k >= n_class:
        raise ValueError(
            f"{name} ({k}) must be smaller than the size of class {label!r} ({n_class}): "
            f"a sample needs {k} other samples of its class as neighbours"
        )


class SMOTE(BaseSampler):
    """Synthetic Minority Over-sampling TEchnique.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable
        Default ``"auto"``: every class but the majority grows to the majority size.
    random_state : None, int or RandomState
    k_neighbors : int
        Same-class neighbours per sample (``k < class size``).
    chunk_size : int
        Upper bound on the query rows per block of the neighbour search (the search caps it at
        256–2048 rows so that a block's scores stay in cache).

    Attributes
    ----------
    sampling_strategy_ : OrderedDict class -> number added
    neighbors_ : dict class code -> Tensor[n_class, k]
        Same-class neighbour indices (into that class's rows) of the last ``fit_resample``;
        class codes index the sorted classes.
    """

    _sampling_type = "over-sampling"
    _floating = True

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        random_state: Any = None,
        k_neighbors: int = 5,
        chunk_size: int = 2048,
    ):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.k_neighbors = k_neighbors
        self.chunk_size = chunk_size

    def _resample(self, X, codes, counts, targets):
        k = check_int("k_neighbors", self.k_neighbors, min=1)
        parts, labels = [X], [codes]
        self.neighbors_ = {}
        for c, n_new in targets.items():
            if n_new == 0:
                continue
            X_class = take_rows(X, class_indices(codes, c))
            _check_neighbours("k_neighbors", k, X_class.shape[0], c)
            own = torch.arange(X_class.shape[0])
            nns = kneighbors(X_class, X_class, k, self_index=own, chunk_size=self.chunk_size)
            self.neighbors_[c] = nns
            # imblearn re-creates the generator per class from random_state (same stream each time)
            rng = random_state_of(self.random_state)
            flat = rng.randint(low=0, high=nns.numel(), size=n_new)
            steps = torch.from_numpy(rng.uniform(size=n_new)).unsqueeze(1)
            flat = torch.from_numpy(flat.astype(np.int64))
            parts.append(_interpolate(X_class, nns, flat // k, flat % k, steps, X.dtype))
            labels.append(torch.full((n_new,), c, dtype=torch.int64))
        return cat_rows(parts), cat_rows(labels)


def adasyn_counts(ratio: torch.Tensor, n_samples: int) -> torch.Tensor:
    """ADASYN's per-sample generation counts ``rint(r_i / Σ r · G)`` (``G = n_samples``).

    ratio : Tensor[m] of other-class neighbour fractions → Tensor[m] int64
    Ties at .5 round to even, as ``numpy.rint``.
    """
    total = ratio.sum()
    if total <= 0:
        raise ValueError(
            "ADASYN: no neighbour of the class belongs to another class, so every weight is 0; "
            "use SMOTE instead"
        )
    return torch.round(ratio / total * n_samples).to(torch.int64)


class ADASYN(BaseSampler):
    """ADAptive SYNthetic sampling: more synthetic points near the class boundary.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable
    random_state : None, int or RandomState
    n_neighbors : int
        Neighbours used both for the difficulty ratio (in the whole set) and for interpolation
        (within the class); needs ``n_neighbors < class size``.
    chunk_size : int
        As in :class:`SMOTE`.

    Attributes
    ----------
    sampling_strategy_ : OrderedDict class -> number asked (the number produced is
        ``n_generated_[class]``, which rounding may change slightly)
    n_generated_ : dict class code -> Tensor[n_class] of per-sample counts (codes index the
        sorted classes)
    """

    _sampling_type = "over-sampling"
    _floating = True

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        random_state: Any = None,
        n_neighbors: int = 5,
        chunk_size: int = 2048,
    ):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.n_neighbors = n_neighbors
        self.chunk_size = chunk_size

    def _resample(self, X, codes, counts, targets):
        k = check_int("n_neighbors", self.n_neighbors, min=1)
        rng = random_state_of(self.random_state)
        parts, labels = [X], [codes]
        self.n_generated_ = {}
        for c, n_new in targets.items():
            if n_new == 0:
                continue
            members = class_indices(codes, c)
            _check_neighbours("n_neighbors", k, len(members), c)
            nn_all = kneighbors(
                take_rows(X, members), X, k, self_index=members, chunk_size=self.chunk_size
            )
            ratio = (codes[nn_all] != c).sum(1).to(torch.float64) / k
            per_sample = adasyn_counts(ratio, n_new)
            self.n_generated_[c] = per_sample
            n_made = int(per_sample.sum())
            if n_made == 0:
                raise ValueError(
                    "ADASYN: rounding leaves no sample to generate; ask for more samples"
                )
            X_class = take_rows(X, members)
            own = torch.arange(len(members))
            nns = kneighbors(X_class, X_class, k, self_index=own, chunk_size=self.chunk_size)
            rows = torch.repeat_interleave(own, per_sample)
            cols = torch.from_numpy(rng.choice(k, size=n_made).astype(np.int64))
            steps = torch.from_numpy(rng.uniform(size=(n_made, 1)))
            parts.append(_interpolate(X_class, nns, rows, cols, steps, X.dtype))
            labels.append(torch.full((n_made,), c, dtype=torch.int64))
        return cat_rows(parts), cat_rows(labels)
