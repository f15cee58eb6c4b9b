"""Ranking metrics on 1,000,000 tied scores and the confusion matrix on 10,000,000 labels.

Two comparisons per curve metric:

* ``<metric>``: ours against its ``sklearn.metrics`` twin (target ratio <= 0.5);
* ``<metric>_vs_sort``: ours against a bare ``torch.sort`` of the same scores — the floor any
  sort-based method pays (target ratio <= 2).

Scores are rounded to 3 decimals (about 1,300 distinct values), so ties are everywhere, as with
quantised model outputs. Both sides get the same numpy arrays, so no conversion is timed.
"""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.bench.api import BenchItem, bench_case

_N_SCORES = 1_000_000
_N_LABELS = 10_000_000


def _scores(quick: bool) -> tuple[np.ndarray, np.ndarray, str]:
    n = _N_SCORES // 10 if quick else _N_SCORES
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n) + 0.3 * y, 3)
    return y, s, f"n={n:.0e} scores, ties"


_CURVES = {
    "roc_auc": ("roc_auc", "roc_auc_score"),
    "average_precision": ("average_precision", "average_precision_score"),
    "precision_recall_curve": ("precision_recall_curve", "precision_recall_curve"),
    "roc_curve": ("roc_curve", "roc_curve"),
}


def _register(case: str) -> None:
    ours_name, sk_name = _CURVES[case]

    @bench_case(
        case,
        reference=f"sklearn.metrics.{sk_name}",
        requires=("sklearn",),
        target=0.5,
        description=f"{ours_name} vs sklearn.metrics.{sk_name} on tied scores",
    )
    def vs_sklearn(quick: bool) -> list[BenchItem]:
        from sklearn import metrics as skm

        from deepnotes import metrics

        y, s, size = _scores(quick)
        ours, ref = getattr(metrics, ours_name), getattr(skm, sk_name)
        return [BenchItem(size=size, ours=lambda: ours(y, s), reference=lambda: ref(y, s))]

    @bench_case(
        f"{case}_vs_sort",
        reference="torch.sort(scores, descending=True)",
        target=2.0,
        description=f"{ours_name} vs a bare torch.sort of the same scores (the sort floor)",
    )
    def vs_sort(quick: bool) -> list[BenchItem]:
        from deepnotes import metrics

        y, s, size = _scores(quick)
        ours, st = getattr(metrics, ours_name), torch.from_numpy(s)
        return [
            BenchItem(
                size=size,
                ours=lambda: ours(y, s),
                reference=lambda: torch.sort(st, descending=True),
            )
        ]


for _case in _CURVES:
    _register(_case)


@bench_case(
    "confusion_matrix",
    reference="sklearn.metrics.confusion_matrix",
    requires=("sklearn",),
    target=0.5,
    description="confusion_matrix on 10 classes",
)
def confusion_matrix_case(quick: bool) -> list[BenchItem]:
    from sklearn import metrics as skm

    from deepnotes.metrics import confusion_matrix

    n = _N_LABELS // 10 if quick else _N_LABELS
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n)
    p = np.where(rng.random(n) < 0.7, y, rng.integers(0, 10, n))
    return [
        BenchItem(
            size=f"n={n:.0e} labels, 10 classes",
            ours=lambda: confusion_matrix(y, p),
            reference=lambda: skm.confusion_matrix(y, p),
            repeats=5,
        )
    ]
