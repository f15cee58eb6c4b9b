"""Model evaluation: holdout, K-fold, stratified K-fold, leave-one-out, leave-p-out, bootstrap
with out-of-bag test sets, and cross-validation that resamples inside each training fold only."""

from deepnotes.evaluation.cross_validate import LABEL_METRICS, SCORE_METRICS, cross_validate
from deepnotes.evaluation.splitters import (
    Bootstrap,
    KFold,
    LeaveOneOut,
    LeavePOut,
    StratifiedKFold,
    holdout_split,
)

__all__ = [
    "LABEL_METRICS",
    "SCORE_METRICS",
    "Bootstrap",
    "KFold",
    "LeaveOneOut",
    "LeavePOut",
    "StratifiedKFold",
    "cross_validate",
    "holdout_split",
]
