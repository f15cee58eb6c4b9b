"""Top-N metrics of a ranking: precision and recall among the ``k`` highest-scored items.

``precision_at_k = (relevant items in the top k) / k`` and
``recall_at_k = (relevant items in the top k) / (relevant items)``. Ties in the score at the
cut-off are broken by position (the earlier item ranks first), so the result is deterministic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepnotes.core.checks import check_int
from deepnotes.metrics._inputs import binary_positive, same_length, vector


def _hits_at_k(y_true: Any, y_score: Any, k: int) -> tuple[int, int]:
    yt = vector("y_true", y_true)
    ys = vector("y_score", y_score)
    n = same_length(y_true=yt, y_score=ys)
    k = check_int("k", k, min=1, max=n)
    rel = binary_positive(yt, None)
    if ys.dtype.kind != "f":
        ys = ys.astype(np.float64)
    # stable sort of the negated scores: descending, earlier item first among ties
    top = np.argsort(-ys, kind="stable")[:k]
    return int(np.count_nonzero(rel[top])), int(np.count_nonzero(rel))


def precision_at_k(y_true: Any, y_score: Any, k: int) -> float:
    """Fraction of the ``k`` top-scored items that are relevant.

    Parameters
    ----------
    y_true : array-like or Tensor of shape (n,)
        Relevance labels, {0, 1} or bool.
    y_score : array-like or Tensor of shape (n,)
        Finite scores; higher ranks first.
    k : int
        Cut-off, ``1 <= k <= n``.

    Examples
    --------
    >>> precision_at_k([1, 0, 1, 1], [0.9, 0.8, 0.1, 0.7], k=2)
    0.5
    """
    hits, _ = _hits_at_k(y_true, y_score, k)
    return hits / k


def recall_at_k(y_true: Any, y_score: Any, k: int) -> float:
    """Fraction of the relevant items found among the ``k`` top-scored ones.

    Parameters are those of :func:`precision_at_k`; ``y_true`` needs a relevant item (otherwise
    recall is undefined and ``ValueError`` is raised).

    Examples
    --------
    >>> recall_at_k([1, 0, 1, 1], [0.9, 0.8, 0.1, 0.7], k=2)
    0.3333333333333333
    """
    hits, relevant = _hits_at_k(y_true, y_score, k)
    if relevant == 0:
        raise ValueError("y_true has no relevant item: recall is undefined")
    return hits / relevant
