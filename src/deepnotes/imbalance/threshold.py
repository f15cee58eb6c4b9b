"""Remedies that leave the data alone: threshold moving, prior correction and class weights.

* :func:`best_threshold` picks the decision threshold on a score from the precision–recall curve
  (:func:`deepnotes.metrics.precision_recall_curve`): the one with the best F1, or the largest one
  that still reaches a target recall (the most precise such threshold).
* :func:`prior_correction` re-weights predicted probabilities trained under class priors ``π_train``
  to the priors ``π_true`` of deployment: ``p'(c|x) ∝ p(c|x) · π_true(c) / π_train(c)``
  (Bayes' rule; Saerens et al., 2002).
* :func:`balanced_class_weights` gives each class the weight ``n / (n_classes · n_c)``, as
  ``sklearn.utils.class_weight.compute_class_weight("balanced")``; pass it as ``weight=`` to
  ``torch.nn.CrossEntropyLoss``.

Example
-------
>>> balanced_class_weights([0, 0, 0, 1]).tolist()
[0.6666666666666666, 2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepnotes.core.checks import as_tensor, check_choice, check_probability
from deepnotes.metrics import precision_recall_curve


def best_threshold(
    y_true: Any,
    y_score: Any,
    *,
    objective: str = "f1",
    target_recall: float | None = None,
    pos_label: Any = 1,
) -> tuple[float, float]:
    """The threshold ``t`` (predict positive when ``score >= t``) that optimises ``objective``.

    Parameters
    ----------
    y_true : array-like (n,)
        Binary labels.
    y_score : array-like (n,)
        Scores, higher meaning more positive.
    objective : {"f1", "recall"}
        ``"f1"``: maximise F1 (the smallest such threshold on ties). ``"recall"``: the largest
        threshold whose recall is ``>= target_recall``, i.e. the best precision at that recall.
    target_recall : float in [0, 1]
        Needed for ``objective="recall"``.
    pos_label : scalar

    Returns
    -------
    (threshold, value) : the threshold and its F1 (``"f1"``) or precision (``"recall"``).
    """
    check_choice("objective", objective, ("f1", "recall"))
    curve = precision_recall_curve(y_true, y_score, pos_label=pos_label)
    precision, recall, thresholds = (
        c.cpu().numpy() if isinstance(c, torch.Tensor) else c for c in curve
    )  # tensors for tensor input
    precision, recall = precision[:-1], recall[:-1]  # the last point (1, 0) has no threshold
    if objective == "f1":
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
        best = int(np.argmax(f1))
        return float(thresholds[best]), float(f1[best])
    if target_recall is None:
        raise ValueError("target_recall is required when objective='recall'")
    target = check_probability("target_recall", target_recall)
    ok = np.flatnonzero(recall >= target)  # recall falls as the threshold rises
    best = int(ok[-1])  # recall at the lowest threshold is 1, so ok is never empty
    return float(thresholds[best]), float(precision[best])


def prior_correction(proba: Any, train_prior: Any, true_prior: Any) -> torch.Tensor:
    """Move class probabilities from the training priors to the deployment priors.

    Parameters
    ----------
    proba : Tensor[n, C]
        Rows summing to 1, from a model trained with class frequencies ``train_prior``.
    train_prior, true_prior : Tensor[C]
        Positive, each summing to 1.

    Returns
    -------
    Tensor[n, C] : ``proba · true/train``, renormalised per row.
    """
    p = as_tensor("proba", proba)
    p = p if p.is_floating_point() else p.to(torch.float64)
    if p.dim() != 2:
        raise ValueError(f"proba must be 2-D (n, n_classes), got shape {tuple(p.shape)}")
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()):
        raise ValueError("proba must be finite and non-negative")
    priors = []
    for name, prior in (("train_prior", train_prior), ("true_prior", true_prior)):
        q = as_tensor(name, prior).to(p.dtype)
        if q.shape != (p.shape[1],):
            raise ValueError(f"{name} must have shape ({p.shape[1]},), got {tuple(q.shape)}")
        if (
            not bool(torch.isfinite(q).all())
            or bool((q <= 0).any())
            or abs(float(q.sum()) - 1) > 1e-6
        ):
            raise ValueError(f"{name} must be positive and sum to 1")
        priors.append(q)
    w = p * (priors[1] / priors[0])
    total = w.sum(1, keepdim=True)
    if bool((total == 0).any()):
        raise ValueError("proba has a row of zeros")
    return w / total


def balanced_class_weights(y: Any, classes: Any = None) -> torch.Tensor:
    """``n / (n_classes · n_c)`` per class, ordered as ``classes`` (default: sorted labels of ``y``).

    Parameters
    ----------
    y : array-like (n,)
    classes : array-like (C,), optional
        Every class must occur in ``y`` (a weight for an absent class would be infinite).

    Returns
    -------
    Tensor[C] float64
    """
    arr = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array of labels, got shape {arr.shape}")
    present, counts = np.unique(arr, return_counts=True)
    if classes is None:
        wanted, wanted_counts = present, counts
    else:
        wanted = np.asarray(classes.cpu() if isinstance(classes, torch.Tensor) else classes)
        pos = np.searchsorted(present, wanted).clip(max=len(present) - 1)
        missing = present[pos] != wanted
        if missing.any():
            raise ValueError(f"classes {wanted[missing].tolist()} do not occur in y")
        wanted_counts = counts[pos]
    w = arr.size / (len(wanted) * wanted_counts.astype(np.float64))
    return torch.from_numpy(w)
