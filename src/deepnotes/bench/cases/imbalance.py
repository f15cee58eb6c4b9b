"""Samplers against imbalanced-learn on a 1:9 two-class problem.

* ``smote``, ``adasyn``, ``random_under_sampler``, ``random_over_sampler``: 100,000 × 20 features,
  10 % minority (targets from the issue: SMOTE <= 0.5, ADASYN <= 0.3, random samplers <= 1.0);
* ``cluster_centroids``: 20,000 × 20 (target <= 0.3).

Quick mode uses a tenth of the rows. Both sides get the same float64 numpy arrays and the same
``random_state``; our samplers return numpy arrays for numpy input, so conversion is timed too.
"""

from __future__ import annotations

import numpy as np

from deepnotes.bench.api import BenchItem, bench_case


def _problem(n: int, d: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(n) < 0.1).astype(np.int64)
    X = rng.normal(size=(n, d)) + 0.5 * y[:, None]
    return X, y


_CASES = {
    # case: (our class, imblearn module.class, rows, target ratio)
    "smote": ("SMOTE", "over_sampling.SMOTE", 100_000, 0.5),
    "adasyn": ("ADASYN", "over_sampling.ADASYN", 100_000, 0.3),
    "random_under_sampler": (
        "RandomUnderSampler",
        "under_sampling.RandomUnderSampler",
        100_000,
        1.0,
    ),
    "random_over_sampler": ("RandomOverSampler", "over_sampling.RandomOverSampler", 100_000, 1.0),
    "cluster_centroids": ("ClusterCentroids", "under_sampling.ClusterCentroids", 20_000, 0.3),
}


def _register(case: str) -> None:
    ours_name, ref_path, rows, target = _CASES[case]

    @bench_case(
        case,
        reference=f"imblearn.{ref_path}",
        requires=("imblearn",),
        target=target,
        description=f"{ours_name}.fit_resample vs imblearn.{ref_path} at 1:9, 20 features",
    )
    def run(quick: bool) -> list[BenchItem]:
        import importlib

        from deepnotes import imbalance

        module, cls = ref_path.rsplit(".", 1)
        ref_cls = getattr(importlib.import_module(f"imblearn.{module}"), cls)
        n = rows // 10 if quick else rows
        X, y = _problem(n)
        ours = getattr(imbalance, ours_name)(random_state=0)
        ref = ref_cls(random_state=0)
        slow = case == "cluster_centroids"
        return [
            BenchItem(
                size=f"n={n:,} x 20, 1:9",
                ours=lambda: ours.fit_resample(X, y),
                reference=lambda: ref.fit_resample(X, y),
                repeats=3 if slow else 5,
            )
        ]


for _case in _CASES:
    _register(_case)
