"""The examples in the docstrings of deepnotes.imbalance and deepnotes.evaluation are correct."""

import doctest
import importlib

import pytest

MODULES = [
    "deepnotes.imbalance.random",
    "deepnotes.imbalance.smote",
    "deepnotes.imbalance.cluster",
    "deepnotes.imbalance.ensemble",
    "deepnotes.imbalance.threshold",
    "deepnotes.imbalance.one_class",
    "deepnotes.evaluation.splitters",
    "deepnotes.evaluation.cross_validate",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0 and result.failed == 0
