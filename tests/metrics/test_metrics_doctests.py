"""The examples in the docstrings of deepnotes.losses and deepnotes.metrics are correct."""

import doctest
import importlib

import pytest

MODULES = [
    "deepnotes.losses.binary",
    "deepnotes.losses.multiclass",
    "deepnotes.losses.regression",
    "deepnotes.losses.clustering",
    "deepnotes.losses.logistic",
    "deepnotes.metrics.classification",
    "deepnotes.metrics.curves",
    "deepnotes.metrics.ranking",
    "deepnotes.metrics.regression",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0 and result.failed == 0
