"""Full-batch, stochastic and mini-batch descent: three ways of feeding the same optimizer.

The optimizer does not change between the three; only the rows of the data each gradient is
computed from do. :func:`batch_indices` returns the index batches of one epoch:

* ``"full"``: one batch holding every sample (full-batch gradient descent),
* ``"stochastic"``: ``n`` batches of one sample,
* ``"minibatch"``: batches of ``batch_size`` (the last one may be smaller).

With a generator the order is ``torch.randperm(n, generator=g)``, exactly the order of
``torch.utils.data.BatchSampler(RandomSampler(range(n), generator=g), batch_size, False)``.
"""

from __future__ import annotations

import torch

from deepnotes.core.checks import check_choice, check_int

STRATEGIES = ("full", "stochastic", "minibatch")


def batch_indices(
    n_samples: int,
    strategy: str = "minibatch",
    batch_size: int | None = None,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Index batches of one epoch for a feeding ``strategy``.

    Parameters
    ----------
    n_samples : int
        Number of samples ``n >= 1``.
    strategy : {"full", "stochastic", "minibatch"}
    batch_size : int, optional
        Required for ``"minibatch"`` (``>= 1``); ignored otherwise.
    shuffle : bool, default True
        Draw a random order from ``generator``; otherwise ``0 .. n-1``.
    generator : torch.Generator, optional

    Returns
    -------
    list of Tensor[int64]
        Disjoint batches whose union is ``range(n)``.

    Examples
    --------
    >>> [b.tolist() for b in batch_indices(5, "minibatch", 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    n = check_int("n_samples", n_samples, min=1)
    check_choice("strategy", strategy, STRATEGIES)
    if strategy == "full":
        size = n
    elif strategy == "stochastic":
        size = 1
    else:
        if batch_size is None:
            raise ValueError("batch_size is required for strategy='minibatch'")
        size = check_int("batch_size", batch_size, min=1)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return list(torch.split(order, size))
