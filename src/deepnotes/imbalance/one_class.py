"""The one-class framing: learn what the majority ("normal") class looks like, flag the rest.

:class:`GaussianAnomalyDetector` fits a mean and a (ridge-regularised) covariance to the normal
samples and scores points by their squared Mahalanobis distance
``(x − μ)ᵀ Σ⁻¹ (x − μ)`` (``sklearn.covariance.EmpiricalCovariance().mahalanobis``); the
threshold is the ``1 − contamination`` quantile of the training scores.
:class:`OneClassClassifier` wraps any detector with ``fit(X)`` and ``score_samples(X)`` (higher =
more normal, sklearn's convention) into a binary classifier trained on one class only.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = np.vstack([rng.normal(size=(95, 2)), rng.normal(6, 1, size=(5, 2))]); y = np.r_[[0] * 95, [1] * 5]
>>> clf = OneClassClassifier(normal_class=0, anomaly_class=1).fit(X, y)
>>> int((clf.predict(X[95:]) == 1).sum())
5
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from deepnotes.core.checks import check_float
from deepnotes.imbalance._base import as_features


class GaussianAnomalyDetector(BaseEstimator):
    """Mahalanobis-distance detector.

    Parameters
    ----------
    contamination : float in [0, 0.5)
        Fraction of training samples allowed above the threshold.
    reg : float >= 0
        Added to the covariance diagonal (keeps it invertible with few samples).

    Attributes
    ----------
    location_ : Tensor[d]
    precision_ : Tensor[d, d]  (inverse covariance)
    threshold_ : float  (on the squared distance)
    """

    def __init__(self, contamination: float = 0.01, reg: float = 0.0):
        self.contamination = contamination
        self.reg = reg

    def fit(self, X: Any, y: Any = None) -> GaussianAnomalyDetector:
        c = check_float("contamination", self.contamination, min=0.0, max=0.5, max_inclusive=False)
        reg = check_float("reg", self.reg, min=0.0)
        Xt = as_features(X, floating=True)[0].to(torch.float64)
        if Xt.shape[0] < 2:
            raise ValueError("X needs at least 2 samples to estimate a covariance")
        self.location_ = Xt.mean(0)
        diff = Xt - self.location_
        cov = diff.T @ diff / Xt.shape[0] + reg * torch.eye(Xt.shape[1], dtype=Xt.dtype)
        self.precision_ = torch.linalg.pinv(cov, hermitian=True)
        self.threshold_ = float(torch.quantile(self.mahalanobis(Xt), 1.0 - c))
        return self

    def mahalanobis(self, X: Any) -> torch.Tensor:
        """Squared Mahalanobis distances ``(n,)``."""
        if not hasattr(self, "precision_"):
            raise ValueError("this GaussianAnomalyDetector is not fitted yet; call fit first")
        diff = as_features(X, floating=True)[0].to(torch.float64) - self.location_
        return ((diff @ self.precision_) * diff).sum(1)

    def score_samples(self, X: Any) -> np.ndarray:
        """Normality score (higher = more normal): the negative squared distance."""
        return (-self.mahalanobis(X)).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """+1 for inliers, −1 for outliers (sklearn's outlier-detector convention)."""
        return np.where(self.mahalanobis(X).numpy() > self.threshold_, -1, 1)

    def offset(self) -> float:
        return -self.threshold_


class OneClassClassifier(ClassifierMixin, BaseEstimator):
    """A binary classifier from an anomaly detector fitted on the ``normal_class`` samples only.

    Parameters
    ----------
    detector : estimator with fit(X) and score_samples(X), optional
        Default :class:`GaussianAnomalyDetector`.
    normal_class, anomaly_class : labels
    contamination : float
        Fraction of normal training samples put above the decision threshold.

    Attributes
    ----------
    classes_ : ndarray [normal_class, anomaly_class] sorted
    threshold_ : float on ``decision_function``
    """

    def __init__(
        self,
        detector: Any = None,
        *,
        normal_class: Any = 0,
        anomaly_class: Any = 1,
        contamination: float = 0.01,
    ):
        self.detector = detector
        self.normal_class = normal_class
        self.anomaly_class = anomaly_class
        self.contamination = contamination

    def fit(self, X: Any, y: Any) -> OneClassClassifier:
        """Fit the detector on the rows of ``X`` labelled ``normal_class``; the others are ignored."""
        c = check_float("contamination", self.contamination, min=0.0, max=0.5, max_inclusive=False)
        Xn = as_features(X, floating=True)[0].numpy()
        yn = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
        if yn.shape != (Xn.shape[0],):
            raise ValueError(
                f"inconsistent lengths: X has {Xn.shape[0]} samples, y has shape {yn.shape}"
            )
        normal = Xn[yn == self.normal_class]
        if normal.shape[0] < 2:
            raise ValueError(f"y has fewer than 2 samples of normal_class={self.normal_class!r}")
        det = GaussianAnomalyDetector() if self.detector is None else clone(self.detector)
        self.detector_ = det.fit(normal)
        self.classes_ = np.array(sorted([self.normal_class, self.anomaly_class]))
        self.threshold_ = float(np.quantile(self.decision_function(normal), 1.0 - c))
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score ``(n,)``: higher means more likely ``anomaly_class``."""
        if not hasattr(self, "detector_"):
            raise ValueError("this OneClassClassifier is not fitted yet; call fit first")
        return -np.asarray(self.detector_.score_samples(as_features(X, floating=True)[0].numpy()))

    def predict(self, X: Any) -> np.ndarray:
        """``anomaly_class`` where the score exceeds the threshold, else ``normal_class``."""
        flag = self.decision_function(X) > self.threshold_
        return np.where(flag, self.anomaly_class, self.normal_class)
