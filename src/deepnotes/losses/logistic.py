"""Logistic regression as a model: a linear score, a sigmoid, and a threshold.

``p(y = 1 | x) = σ(w · x + b)``; the class is 1 when ``p`` exceeds the threshold. Because σ is
monotone, thresholding ``p`` at ``t`` is thresholding the score at ``logit(t) = log(t / (1 − t))``
— we compare scores, which avoids rounding in σ (``t = 0.5`` is exactly ``w · x + b > 0``, the
rule of ``sklearn.linear_model.LogisticRegression.predict``). Train it with
:func:`deepnotes.losses.binary_cross_entropy` on the scores.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepnotes.core.checks import check_float, check_int, check_tensor


def _check_threshold(threshold: float) -> float:
    return check_float(
        "threshold", threshold, min=0.0, max=1.0, min_inclusive=False, max_inclusive=False
    )


class LogisticRegression(nn.Module):
    """Binary logistic regression ``σ(x Wᵀ + b)``.

    Parameters
    ----------
    in_features : int
        ``D``, the number of input features.
    threshold : float
        Probability above which :meth:`predict` says 1; in ``(0, 1)``.

    Shapes
    ------
    ``forward``: ``x (Tensor[N, D]) -> scores (Tensor[N])`` — the log-odds, to feed
    :func:`~deepnotes.losses.binary_cross_entropy`.

    Examples
    --------
    >>> m = LogisticRegression(2)
    >>> m.predict(torch.zeros(3, 2)).shape
    torch.Size([3])
    """

    def __init__(self, in_features: int, threshold: float = 0.5):
        super().__init__()
        self.in_features = check_int("in_features", in_features, min=1)
        self.threshold = _check_threshold(threshold)
        self.linear = nn.Linear(self.in_features, 1)

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=2, floating=True)
        if x.shape[1] != self.in_features:
            raise ValueError(f"x must have {self.in_features} features per row, got {x.shape[1]}")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self._check_x(x)).squeeze(1)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[N]`` of ``p(y = 1 | x)``."""
        return torch.sigmoid(self(x))

    def predict(self, x: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
        """``Tensor[N]`` of 0/1 (int64): 1 where ``p > threshold`` (default: the model's)."""
        t = self.threshold if threshold is None else _check_threshold(threshold)
        return (self(x) > math.log(t / (1.0 - t))).long()
