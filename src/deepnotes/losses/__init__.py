"""Classification, regression and clustering losses: functional forms plus ``nn.Module`` wrappers.

The Module classes are registered in :data:`deepnotes.core.registry.LOSSES` under
``"bce_with_logits"``, ``"hinge"``, ``"logistic"``, ``"multiclass_svm"``, ``"cross_entropy"``,
``"one_vs_rest"``, ``"mse"``, ``"l1"`` and ``"smooth_l1"``; each takes ``reduction`` in
``{"none", "mean", "sum"}``.
"""

from deepnotes.losses._common import REDUCTIONS
from deepnotes.losses.binary import (
    BCEWithLogitsLoss,
    HingeLoss,
    LogisticLoss,
    binary_cross_entropy,
    hinge_loss,
    logistic_loss,
    zero_one_loss,
)
from deepnotes.losses.clustering import kmeans_objective
from deepnotes.losses.logistic import LogisticRegression
from deepnotes.losses.multiclass import (
    MulticlassSVMLoss,
    OneVsRestLoss,
    SoftmaxCrossEntropyLoss,
    multiclass_svm_loss,
    one_vs_rest_loss,
    softmax_cross_entropy,
)
from deepnotes.losses.regression import (
    AbsoluteLoss,
    SmoothL1Loss,
    SquaredLoss,
    absolute_loss,
    smooth_l1_loss,
    squared_loss,
)

__all__ = [
    "REDUCTIONS",
    "AbsoluteLoss",
    "BCEWithLogitsLoss",
    "HingeLoss",
    "LogisticLoss",
    "LogisticRegression",
    "MulticlassSVMLoss",
    "OneVsRestLoss",
    "SmoothL1Loss",
    "SoftmaxCrossEntropyLoss",
    "SquaredLoss",
    "absolute_loss",
    "binary_cross_entropy",
    "hinge_loss",
    "kmeans_objective",
    "logistic_loss",
    "multiclass_svm_loss",
    "one_vs_rest_loss",
    "smooth_l1_loss",
    "softmax_cross_entropy",
    "squared_loss",
    "zero_one_loss",
]
