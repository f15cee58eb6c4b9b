"""Class imbalance: samplers with ``fit_resample(X, y)``, ensembles, threshold moving, class weights
and the one-class framing, following imbalanced-learn's interface on numpy arrays and tensors."""

from deepnotes.classic.neighbors_fast import kneighbors
from deepnotes.imbalance._base import STRATEGIES, BaseSampler, resolve_sampling_strategy
from deepnotes.imbalance.cluster import ClusterCentroids
from deepnotes.imbalance.ensemble import EasyEnsembleClassifier, ResampledVotingClassifier
from deepnotes.imbalance.one_class import GaussianAnomalyDetector, OneClassClassifier
from deepnotes.imbalance.random import (
    GaussianNoiseOverSampler,
    RandomOverSampler,
    RandomUnderSampler,
)
from deepnotes.imbalance.smote import ADASYN, SMOTE, adasyn_counts
from deepnotes.imbalance.threshold import balanced_class_weights, best_threshold, prior_correction

__all__ = [
    "ADASYN",
    "SMOTE",
    "STRATEGIES",
    "BaseSampler",
    "ClusterCentroids",
    "EasyEnsembleClassifier",
    "GaussianAnomalyDetector",
    "GaussianNoiseOverSampler",
    "OneClassClassifier",
    "RandomOverSampler",
    "RandomUnderSampler",
    "ResampledVotingClassifier",
    "adasyn_counts",
    "balanced_class_weights",
    "best_threshold",
    "kneighbors",
    "prior_correction",
    "resolve_sampling_strategy",
]
