"""A scalar autograd engine (and its small-tensor twin), an MLP built on it and a chain-rule
walk-through printer."""

from deepnotes.autograd.engine import Value, topological_order, vmax, vsum
from deepnotes.autograd.mlp import MLP, Layer, Neuron
from deepnotes.autograd.tensor import Tensor
from deepnotes.autograd.walkthrough import Walkthrough, parse_expression, walkthrough

__all__ = [
    "Value",
    "Tensor",
    "topological_order",
    "vmax",
    "vsum",
    "MLP",
    "Layer",
    "Neuron",
    "Walkthrough",
    "parse_expression",
    "walkthrough",
]
