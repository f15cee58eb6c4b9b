"""A scalar autograd engine, an MLP built on it and a chain-rule walk-through printer."""

from deepnotes.autograd.engine import Value, vmax, vsum
from deepnotes.autograd.mlp import MLP, Layer, Neuron
from deepnotes.autograd.walkthrough import Walkthrough, parse_expression, walkthrough

__all__ = [
    "Value",
    "vmax",
    "vsum",
    "MLP",
    "Layer",
    "Neuron",
    "Walkthrough",
    "parse_expression",
    "walkthrough",
]
