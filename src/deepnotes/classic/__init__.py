"""Classic methods: nearest neighbour / kNN, K-means, linear classifier, hand-crafted features, PCA,
feature selection."""

from deepnotes.classic.base import NotFittedError
from deepnotes.classic.feature_scores import chi2, f_classif
from deepnotes.classic.feature_selection import SelectKBest, VarianceThreshold
from deepnotes.classic.features import (
    FeatureClassifier,
    color_histogram,
    gradient_orientation_histogram,
    handcrafted_features,
    image_gradients,
)
from deepnotes.classic.kmeans import KMeans
from deepnotes.classic.kmeans_plusplus import kmeans_plusplus
from deepnotes.classic.knn import KNNClassifier, NearestNeighbor, pairwise_distances
from deepnotes.classic.linear import LinearClassifier
from deepnotes.classic.lloyd import lloyd
from deepnotes.classic.neighbors import kneighbors_exact
from deepnotes.classic.neighbors_fast import NeighborIndex, kneighbors
from deepnotes.classic.pca import PCA

__all__ = [
    "FeatureClassifier",
    "KMeans",
    "KNNClassifier",
    "LinearClassifier",
    "NearestNeighbor",
    "NeighborIndex",
    "NotFittedError",
    "PCA",
    "SelectKBest",
    "VarianceThreshold",
    "chi2",
    "color_histogram",
    "f_classif",
    "gradient_orientation_histogram",
    "handcrafted_features",
    "image_gradients",
    "kmeans_plusplus",
    "kneighbors",
    "kneighbors_exact",
    "lloyd",
    "pairwise_distances",
]
