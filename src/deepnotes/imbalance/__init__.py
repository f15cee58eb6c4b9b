"""Class imbalance: samplers with ``fit_resample(X, y)``, ensembles, threshold moving, class weights."""

from deepnotes.imbalance._base import STRATEGIES, BaseSampler, resolve_sampling_strategy
from deepnotes.imbalance.cluster import ClusterCentroids
from deepnotes.imbalance.neighbors import kneighbors
from deepnotes.imbalance.random import GaussianNoiseOverSampler, RandomOverSampler, RandomUnderSampler
from deepnotes.imbalance.smote import ADASYN, SMOTE, adasyn_counts

__all__ = [
    "ADASYN",
    "SMOTE",
    "STRATEGIES",
    "BaseSampler",
    "ClusterCentroids",
    "GaussianNoiseOverSampler",
    "RandomOverSampler",
    "RandomUnderSampler",
    "adasyn_counts",
    "kneighbors",
    "resolve_sampling_strategy",
]
