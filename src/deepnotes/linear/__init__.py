"""The linear model: loss / cost vocabulary, exhaustive search, gradient descent, least squares."""

from deepnotes.linear.model import (
    DescentResult,
    SearchResult,
    cost,
    exhaustive_search,
    gradient_descent,
    least_squares,
    predict,
    sample_loss,
)
from deepnotes.linear.workflow import WorkflowResult, linear_workflow

__all__ = [
    "DescentResult",
    "SearchResult",
    "WorkflowResult",
    "cost",
    "exhaustive_search",
    "gradient_descent",
    "least_squares",
    "linear_workflow",
    "predict",
    "sample_loss",
]
