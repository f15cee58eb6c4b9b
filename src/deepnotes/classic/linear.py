"""Linear classifier on flattened pixels, ``scores = X·Wᵀ + b``, trained with a multiclass SVM
(hinge) or softmax (cross-entropy) loss plus L2 weight decay.

Each row of ``W`` scores one class by a dot product with the image, so reshaped to the image shape
it is a *template* of that class (``templates_``).

Losses (mean over samples ``i``, scores ``s``, true class ``y``):

* ``"svm"`` (Weston–Watkins): ``Σ_{j≠y} max(0, s_j − s_y + margin)``
* ``"softmax"``: ``−s_y + log Σ_j exp(s_j)``

plus ``alpha/2 · ‖W‖²`` (the bias is not penalized). Training is full-batch L-BFGS in float64,
so a fit is deterministic.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from deepnotes.classic.base import as_labels, as_matrix, check_fitted
from deepnotes.core.checks import as_tensor, check_choice, check_float, check_int
from deepnotes.losses import multiclass_svm_loss


class LinearClassifier:
    """Linear classifier with SVM or softmax loss.

    Parameters
    ----------
    loss : {"softmax", "svm"}
    alpha : float
        L2 strength on the weights (objective: mean loss + alpha/2·‖W‖²).
    margin : float
        Hinge margin (``"svm"`` only).
    max_iter : int
        L-BFGS iterations.
    tol : float
        L-BFGS gradient tolerance.

    Attributes
    ----------
    coef_ : Tensor[n_classes, n_features]
    intercept_ : Tensor[n_classes]
    classes_ : Tensor[n_classes]
    templates_ : Tensor[n_classes, *image_shape]  (``coef_`` in the shape of one input)
    loss_ : float  (final objective)
    """

    def __init__(
        self, loss: str = "softmax", alpha: float = 1e-3, margin: float = 1.0, max_iter: int = 500, tol: float = 1e-9
    ):
        self.loss = check_choice("loss", loss, ("softmax", "svm"))
        self.alpha = check_float("alpha", alpha, min=0.0)
        self.margin = check_float("margin", margin, min=0.0)
        self.max_iter = check_int("max_iter", max_iter, min=1)
        self.tol = check_float("tol", tol, min=0.0)

    def _objective(self, W, b, X, y):
        s = X @ W.T + b
        data = F.cross_entropy(s, y) if self.loss == "softmax" else multiclass_svm_loss(s, y, self.margin)
        return data + 0.5 * self.alpha * (W * W).sum()

    def fit(self, X: Any, y: Any) -> LinearClassifier:
        raw = as_tensor("X", X)
        shape = tuple(raw.shape[1:])
        X = as_matrix("X", X, dtype=torch.float64)
        y = as_labels("y", y, X.shape[0])
        self.classes_, yi = torch.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y must contain at least two classes")
        k, d = len(self.classes_), X.shape[1]
        W = torch.zeros(k, d, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS(
            [W, b], lr=1.0, max_iter=self.max_iter, tolerance_grad=self.tol, tolerance_change=1e-14,
            history_size=20, line_search_fn="strong_wolfe",
        )

        def closure():
            opt.zero_grad()
            obj = self._objective(W, b, X, yi)
            obj.backward()
            return obj

        opt.step(closure)
        with torch.no_grad():
            self.loss_ = float(self._objective(W, b, X, yi))
        self.coef_, self.intercept_ = W.detach(), b.detach()
        self.image_shape_ = shape
        return self

    @property
    def templates_(self) -> torch.Tensor:
        check_fitted(self, "coef_")
        return self.coef_.reshape(len(self.classes_), *self.image_shape_)

    def decision_function(self, X: Any) -> torch.Tensor:
        """Class scores ``(n, n_classes)``."""
        check_fitted(self, "coef_")
        X = as_matrix("X", X, dtype=torch.float64)
        if X.shape[1] != self.coef_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features but the model was fitted with {self.coef_.shape[1]}")
        return X @ self.coef_.T + self.intercept_

    def predict_proba(self, X: Any) -> torch.Tensor:
        """Softmax of the scores (meaningful as probabilities for ``loss="softmax"``)."""
        return torch.softmax(self.decision_function(X), dim=1)

    def predict(self, X: Any) -> torch.Tensor:
        winner = self.decision_function(X).argmax(1)
        return self.classes_[winner]

    def score(self, X: Any, y: Any) -> float:
        pred = self.predict(X)
        return float((pred == as_labels("y", y, len(pred))).double().mean())
