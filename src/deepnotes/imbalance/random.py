"""Random under- and over-sampling, and over-sampling with Gaussian noise (smoothed bootstrap).

Random draws come from a ``numpy.random.RandomState`` called in the same order as
imbalanced-learn's samplers, so a fixed ``random_state`` gives the very same indices (and, for
the noise sampler, the same points) as ``imblearn.under_sampling.RandomUnderSampler`` and
``imblearn.over_sampling.RandomOverSampler(shrinkage=...)``. Gathering and arithmetic are tensor ops.

Example
-------
>>> import numpy as np
>>> X = np.arange(20.0).reshape(10, 2); y = np.array([0] * 8 + [1] * 2)
>>> X_res, y_res = RandomUnderSampler(random_state=0).fit_resample(X, y)
>>> np.bincount(y_res).tolist()
[2, 2]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepnotes.core.checks import check_float
from deepnotes.imbalance._base import (
    BaseSampler,
    cat_rows,
    class_indices,
    random_state_of,
    take_rows,
)


class RandomUnderSampler(BaseSampler):
    """Keep a random subset of each targeted class.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable
        See :func:`deepnotes.imbalance.resolve_sampling_strategy` (default ``"auto"``: every class
        but the minority is reduced to the minority size).
    random_state : None, int or RandomState
    replacement : bool
        Draw with replacement.

    Attributes
    ----------
    sampling_strategy_ : OrderedDict class -> number kept
    sample_indices_ : ndarray (n_res,)
        Rows of ``X`` that make up ``X_res``, class by class in sorted class order.
    """

    _sample_indices = True
    _sampling_type = "under-sampling"

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        random_state: Any = None,
        replacement: bool = False,
    ):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.replacement = replacement

    def _resample(self, X, codes, counts, targets):
        rng = random_state_of(self.random_state)
        parts = []
        for c in range(len(counts)):  # a loop over classes, not samples
            idx = class_indices(codes, c)
            if c in targets:
                pick = rng.choice(int(counts[c]), size=targets[c], replace=bool(self.replacement))
                idx = idx[torch.from_numpy(np.asarray(pick, dtype=np.int64))]
            parts.append(idx)
        keep = cat_rows(parts)
        self.sample_indices_ = keep.numpy()
        return take_rows(X, keep), take_rows(codes, keep)


class RandomOverSampler(BaseSampler):
    """Duplicate random samples of each targeted class (bootstrap with replacement).

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable
        Default ``"auto"``: every class but the majority grows to the majority size.
    random_state : None, int or RandomState

    Attributes
    ----------
    sampling_strategy_ : OrderedDict class -> number added
    sample_indices_ : ndarray (n_res,)
        ``arange(n)`` followed by the duplicated rows.
    """

    _sample_indices = True
    _sampling_type = "over-sampling"

    def __init__(self, *, sampling_strategy: Any = "auto", random_state: Any = None):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state

    def _draw(self, codes, counts, targets, rng):
        """Bootstrap indices per targeted class (imblearn's ``choice(class_indices, n)`` order)."""
        drawn = {}
        for c, n_new in targets.items():
            pick = rng.choice(int(counts[c]), size=n_new, replace=True)
            drawn[c] = class_indices(codes, c)[torch.from_numpy(np.asarray(pick, dtype=np.int64))]
        return drawn

    def _resample(self, X, codes, counts, targets):
        rng = random_state_of(self.random_state)
        drawn = self._draw(codes, counts, targets, rng)
        idx = cat_rows([torch.arange(X.shape[0]), *drawn.values()])
        self.sample_indices_ = idx.numpy()
        return take_rows(X, idx), take_rows(codes, idx)


class GaussianNoiseOverSampler(RandomOverSampler):
    """Random over-sampling plus Gaussian noise on each copy (a smoothed bootstrap).

    A copy of sample ``x`` of class ``c`` becomes ``x + ε ⊙ σ_c · shrinkage · h`` with ``ε ~ N(0, I)``,
    ``σ_c`` the per-feature standard deviation of class ``c`` and the rule-of-thumb bandwidth
    ``h = (4 / ((d + 2) n)) ** (1 / (d + 4))`` (``n`` all samples, ``d`` features) — the same as
    ``imblearn.over_sampling.RandomOverSampler(shrinkage=...)``. ``shrinkage=0`` is plain random
    over-sampling.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable
    shrinkage : float >= 0
    random_state : None, int or RandomState

    Attributes
    ----------
    sampling_strategy_, sample_indices_ : as :class:`RandomOverSampler`
    """

    _floating = True

    def __init__(
        self, *, sampling_strategy: Any = "auto", shrinkage: float = 1.0, random_state: Any = None
    ):
        super().__init__(sampling_strategy=sampling_strategy, random_state=random_state)
        self.shrinkage = shrinkage

    def _resample(self, X, codes, counts, targets):
        shrinkage = check_float("shrinkage", self.shrinkage, min=0.0)
        rng = random_state_of(self.random_state)
        n, d = X.shape
        h = (4.0 / ((d + 2) * n)) ** (1.0 / (d + 4))
        parts, extra = [X], []
        for (
            c,
            n_new,
        ) in targets.items():  # imblearn draws the indices, then the noise, class by class
            pick = rng.choice(int(counts[c]), size=n_new, replace=True)
            members = class_indices(codes, c)
            idx = members[torch.from_numpy(np.asarray(pick, dtype=np.int64))]
            scale = take_rows(X, members).to(torch.float64).std(0, unbiased=False) * (shrinkage * h)
            noise = torch.from_numpy(rng.randn(n_new, d))
            parts.append((noise * scale + take_rows(X, idx).to(torch.float64)).to(X.dtype))
            extra.append(idx)
        idx = cat_rows([torch.arange(n), *extra])
        self.sample_indices_ = idx.numpy()
        return cat_rows(parts), take_rows(codes, idx)
