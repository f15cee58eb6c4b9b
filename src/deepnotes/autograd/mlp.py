"""A multilayer perceptron built from scalar :class:`~deepnotes.autograd.engine.Value` nodes.

Slow by design (one graph node per multiply-add): it exists so that every gradient of a small
network can be followed by hand and compared with ``torch.autograd`` number by number.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from deepnotes.autograd.engine import Value, vsum
from deepnotes.core.checks import check_choice, check_int

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


class Neuron:
    """``act(w · x + b)`` with weights drawn from U(-1, 1) of ``rng``."""

    def __init__(self, n_inputs: int, activation: str, rng: random.Random):
        self.w = [Value(rng.uniform(-1.0, 1.0), "w") for _ in range(n_inputs)]
        self.b = Value(0.0, "b")
        self.activation = activation

    def __call__(self, x: Sequence[Value | float]) -> Value:
        z = vsum(wi * xi for wi, xi in zip(self.w, x)) + self.b
        return z if self.activation == "linear" else getattr(z, self.activation)()

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]


class Layer:
    """``n_outputs`` neurons reading the same inputs."""

    def __init__(self, n_inputs: int, n_outputs: int, activation: str, rng: random.Random):
        self.neurons = [Neuron(n_inputs, activation, rng) for _ in range(n_outputs)]

    def __call__(self, x: Sequence[Value | float]) -> list[Value]:
        return [n(x) for n in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]


class MLP:
    """Fully connected layers of :class:`Value` neurons; the last layer is linear.

    Parameters
    ----------
    n_inputs : int
    sizes : sequence of int
        Width of each layer, the last being the number of outputs.
    activation : {"tanh", "relu", "sigmoid", "linear"}, default "tanh"
        Nonlinearity of the hidden layers.
    seed : int, default 0
        Seed of the U(-1, 1) weight draw (biases start at 0).

    Examples
    --------
    >>> net = MLP(2, [3, 1], seed=0)
    >>> out = net([1.0, -2.0])[0]
    >>> out.backward()
    >>> len(net.parameters())
    13
    """

    def __init__(self, n_inputs: int, sizes: Sequence[int], activation: str = "tanh", seed: int = 0):
        check_int("n_inputs", n_inputs, min=1)
        if not sizes:
            raise ValueError("sizes must name at least one layer")
        sizes = [check_int("sizes", s, min=1) for s in sizes]
        check_choice("activation", activation, ACTIVATIONS)
        rng = random.Random(check_int("seed", seed, min=0))
        dims = [n_inputs, *sizes]
        self.layers = [
            Layer(dims[i], dims[i + 1], activation if i < len(sizes) - 1 else "linear", rng)
            for i in range(len(sizes))
        ]
        self.n_inputs = n_inputs

    def __call__(self, x: Sequence[Value | float]) -> list[Value]:
        if len(x) != self.n_inputs:
            raise ValueError(f"x must have {self.n_inputs} entries, got {len(x)}")
        out: Sequence[Value | float] = x
        for layer in self.layers:
            out = layer(out)
        return list(out)

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0
