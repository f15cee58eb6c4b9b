"""Cross-validation with optional resampling applied inside each training fold only.

For every split of ``splitter``: a fresh model from ``make_model()``; the training part is
resampled (``resampler.fit_resample``) when a resampler is given — the test part never is, so no
synthetic or duplicated sample can leak into the fold it is scored on; the model is fitted and
each metric is computed on the test part (and on the untouched training part). This is what
``imblearn.pipeline.Pipeline([sampler, model])`` inside ``sklearn.model_selection.cross_validate``
does; resampling the whole set *before* splitting is the mistake the lab's claim 8c measures.

Example
-------
>>> import numpy as np
>>> from sklearn.linear_model import LogisticRegression
>>> from deepnotes.evaluation import KFold
>>> rng = np.random.default_rng(0); X = rng.normal(size=(60, 2)); y = (X[:, 0] > 0).astype(int)
>>> res = cross_validate(LogisticRegression, X, y, KFold(3), {"accuracy": "accuracy"})
>>> res["test_accuracy"].shape
(3,)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from deepnotes import metrics as M
from deepnotes.core.checks import check_same_length

# metrics that read a predicted label, and those that read a score for class 1
LABEL_METRICS: dict[str, Callable[..., float]] = {
    "accuracy": M.accuracy,
    "precision": M.precision,
    "recall": M.recall,
    "f1": M.f1_score,
    "f1_score": M.f1_score,
}
SCORE_METRICS: dict[str, Callable[..., float]] = {
    "roc_auc": M.roc_auc,
    "average_precision": M.average_precision,
}


def _as_numpy(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _resolve(metrics: Any) -> dict[str, tuple[str, Callable[..., float]]]:
    if isinstance(metrics, str):
        metrics = [metrics]
    if isinstance(metrics, (list, tuple)):
        metrics = {m: m for m in metrics}
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError(
            "metrics must be a non-empty dict name -> metric, or a list of metric names"
        )
    out = {}
    for name, m in metrics.items():
        if isinstance(m, str):
            if m in LABEL_METRICS:
                out[name] = ("label", LABEL_METRICS[m])
            elif m in SCORE_METRICS:
                out[name] = ("score", SCORE_METRICS[m])
            else:
                known = ", ".join(sorted({**LABEL_METRICS, **SCORE_METRICS}))
                raise ValueError(f"metrics: unknown metric {m!r}; known: {known}")
        elif callable(m):
            out[name] = ("label", m)
        else:
            raise ValueError(
                f"metrics: {name!r} must be a metric name or a callable(y_true, y_pred)"
            )
    return out


def _score(model: Any, kind: str, fn: Callable[..., float], X: np.ndarray, y: np.ndarray) -> float:
    if kind == "label":
        return float(fn(y, model.predict(X)))
    if hasattr(model, "predict_proba"):
        s = np.asarray(model.predict_proba(X))[:, 1]
    elif hasattr(model, "decision_function"):
        s = np.asarray(model.decision_function(X))
    else:
        raise ValueError("a score metric needs a model with predict_proba or decision_function")
    return float(fn(y, s))


def cross_validate(
    make_model: Callable[[], Any],
    X: Any,
    y: Any,
    splitter: Any,
    metrics: Any,
    resampler: Any = None,
    *,
    return_train_score: bool = False,
) -> dict[str, np.ndarray]:
    """Score a fresh model on every split; resample only the training part of each split.

    Parameters
    ----------
    make_model : callable () -> estimator with fit / predict (predict_proba for score metrics)
    X : array-like or Tensor (n, d)
    y : array-like or Tensor (n,)
    splitter : object with ``split(X, y)`` yielding ``(train_idx, test_idx)``
    metrics : dict name -> metric name or ``f(y_true, y_pred)``, or a list of metric names
        Names: accuracy, precision, recall, f1 (label metrics) and roc_auc, average_precision
        (score metrics on ``predict_proba[:, 1]``), all from :mod:`deepnotes.metrics`.
    resampler : object with ``fit_resample(X, y)``, optional
        Applied to each training part; pass one with a fixed ``random_state`` for repeatability.
    return_train_score : bool
        Also score on each (un-resampled) training part.

    Returns
    -------
    dict ``"test_<name>"`` (and ``"train_<name>"``) -> ndarray (n_splits,), plus ``"n_train"``:
    the number of training rows each model saw (after resampling).
    """
    if not callable(make_model):
        raise TypeError(
            f"make_model must be a callable returning a fresh model, got {type(make_model).__name__}"
        )
    if not hasattr(splitter, "split"):
        raise TypeError(f"splitter must have a split(X, y) method, got {type(splitter).__name__}")
    if resampler is not None and not hasattr(resampler, "fit_resample"):
        raise TypeError(f"resampler must have fit_resample(X, y), got {type(resampler).__name__}")
    resolved = _resolve(metrics)
    Xn, yn = _as_numpy(X), _as_numpy(y)
    check_same_length(X=Xn, y=yn)
    if Xn.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {Xn.shape}")
    results: dict[str, list[float]] = {f"test_{k}": [] for k in resolved}
    if return_train_score:
        results.update({f"train_{k}": [] for k in resolved})
    results["n_train"] = []
    for train, test in splitter.split(Xn, yn):  # one model per split
        X_tr, y_tr = Xn[train], yn[train]
        if resampler is not None:
            X_fit, y_fit = resampler.fit_resample(X_tr, y_tr)
        else:
            X_fit, y_fit = X_tr, y_tr
        model = make_model().fit(X_fit, y_fit)
        results["n_train"].append(len(y_fit))
        for name, (kind, fn) in resolved.items():
            results[f"test_{name}"].append(_score(model, kind, fn, Xn[test], yn[test]))
            if return_train_score:
                results[f"train_{name}"].append(_score(model, kind, fn, X_tr, y_tr))
    if not results["n_train"]:
        raise ValueError("splitter produced no split")
    return {k: np.asarray(v) for k, v in results.items()}
