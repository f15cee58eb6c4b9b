"""The same reverse-mode engine over small tensors instead of scalars.

A :class:`Tensor` node holds a (non-autograd) ``torch.Tensor`` and, like
:class:`~deepnotes.autograd.engine.Value`, a closure applying the chain rule of its operation.
The rules are the scalar ones applied elementwise, plus two that only exist for arrays:

* broadcasting: an input that was broadcast receives the upstream gradient summed over the
  broadcast dimensions (``_unbroadcast``);
* matrix product ``C = A @ B``: ``dA = dC @ B^T`` and ``dB = A^T @ dC``.

The backward pass uses the same iterative topological order as the scalar engine.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from deepnotes.core.checks import as_tensor


def _unbroadcast(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum ``grad`` down to ``shape``: the gradient of a broadcast is the sum over its copies."""
    while grad.dim() > len(shape):
        grad = grad.sum(0)
    for i, n in enumerate(shape):
        if n == 1 and grad.shape[i] != 1:
            grad = grad.sum(i, keepdim=True)
    return grad


def _as_node(name: str, x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x, _name=name)


class Tensor:
    """A tensor node of a computation graph.

    Parameters
    ----------
    data : tensor or array-like of numbers
        Converted to float64 unless it is already floating point.

    Attributes
    ----------
    grad : Tensor or None
        ``d(output)/d(this)`` with this node's shape after :meth:`backward` (None before).

    Examples
    --------
    >>> w = Tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> x = Tensor([1.0, -2.0])
    >>> y = (w @ x).relu().sum()     # w @ x = [-3, -5]: both units off
    >>> y.backward()
    >>> x.grad.abs().sum().item()
    0.0
    """

    __slots__ = ("data", "grad", "parents", "op", "_backward")

    def __init__(self, data, *, _parents: tuple = (), _op: str = "", _name: str = "data"):
        if isinstance(data, bool):
            raise TypeError(f"{_name} must hold numbers, got a bool")
        if isinstance(data, (int, float)):
            # a python number is a 0-d tensor (as_tensor would give shape (1,) via numpy)
            t = torch.tensor(float(data), dtype=torch.float64)
        else:
            t = as_tensor(_name, data)
        if t.dtype == torch.bool:
            raise TypeError(f"{_name} must hold numbers, got booleans")
        self.data = (t if t.is_floating_point() else t.to(torch.float64)).detach()
        self.grad: torch.Tensor | None = None
        self.parents: tuple[Tensor, ...] = _parents
        self.op = _op
        self._backward: Callable[[], None] | None = None

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    def __repr__(self) -> str:
        return f"Tensor(shape={tuple(self.shape)}, op={self.op or 'leaf'!r})"

    def _accumulate(self, g: torch.Tensor) -> None:
        self.grad = g.clone() if self.grad is None else self.grad + g

    def _node(self, data, parents, rule, op) -> Tensor:
        """``rule(out_grad)`` returns one gradient per parent (already in the parent's shape)."""
        out = Tensor(data, _parents=parents, _op=op)

        def backward() -> None:
            for parent, g in zip(parents, rule(out.grad)):
                parent._accumulate(g)

        out._backward = backward
        return out

    # -- elementwise binary ops with broadcasting ------------------------------------------------
    def __add__(self, other) -> Tensor:
        o = _as_node("other", other)
        return self._node(self.data + o.data, (self, o),
                          lambda g: (_unbroadcast(g, self.shape), _unbroadcast(g, o.shape)), "+")

    def __sub__(self, other) -> Tensor:
        o = _as_node("other", other)
        return self._node(self.data - o.data, (self, o),
                          lambda g: (_unbroadcast(g, self.shape), _unbroadcast(-g, o.shape)), "-")

    def __mul__(self, other) -> Tensor:
        o = _as_node("other", other)
        return self._node(self.data * o.data, (self, o),
                          lambda g: (_unbroadcast(g * o.data, self.shape), _unbroadcast(g * self.data, o.shape)), "*")

    def __truediv__(self, other) -> Tensor:
        o = _as_node("other", other)
        return self._node(
            self.data / o.data,
            (self, o),
            lambda g: (_unbroadcast(g / o.data, self.shape), _unbroadcast(-g * self.data / o.data**2, o.shape)),
            "/",
        )

    def __neg__(self) -> Tensor:
        return self._node(-self.data, (self,), lambda g: (-g,), "neg")

    def __radd__(self, other) -> Tensor:
        return self + other

    def __rmul__(self, other) -> Tensor:
        return self * other

    def __rsub__(self, other) -> Tensor:
        return _as_node("other", other) - self

    def __rtruediv__(self, other) -> Tensor:
        return _as_node("other", other) / self

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, bool) or not isinstance(exponent, (int, float)):
            raise TypeError(f"exponent must be a real number, got {type(exponent).__name__}")
        k = float(exponent)
        return self._node(self.data**k, (self,), lambda g: (g * k * self.data ** (k - 1),), f"**{k:g}")

    def __matmul__(self, other) -> Tensor:
        o = _as_node("other", other)
        if self.data.dim() != 2 or o.data.dim() not in (1, 2):
            raise ValueError(
                f"other: matmul needs a 2-D left operand and a 1-D or 2-D right one, got shapes "
                f"{tuple(self.shape)} and {tuple(o.shape)}"
            )

        def rule(g):
            if o.data.dim() == 1:  # matrix @ vector
                return torch.outer(g, o.data), self.data.T @ g
            return g @ o.data.T, self.data.T @ g

        return self._node(self.data @ o.data, (self, o), rule, "@")

    # -- reductions and elementwise functions ----------------------------------------------------
    def sum(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        def rule(g):
            if dim is not None and not keepdim:
                g = g.unsqueeze(dim)
            return (g.expand_as(self.data).clone(),)

        data = self.data.sum() if dim is None else self.data.sum(dim, keepdim=keepdim)
        return self._node(data, (self,), rule, "sum")

    def mean(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        n = self.data.numel() if dim is None else self.data.shape[dim]
        return self.sum(dim, keepdim) * (1.0 / n)

    def exp(self) -> Tensor:
        e = torch.exp(self.data)
        return self._node(e, (self,), lambda g: (g * e,), "exp")

    def log(self) -> Tensor:
        return self._node(torch.log(self.data), (self,), lambda g: (g / self.data,), "log")

    def tanh(self) -> Tensor:
        t = torch.tanh(self.data)
        return self._node(t, (self,), lambda g: (g * (1 - t * t),), "tanh")

    def sigmoid(self) -> Tensor:
        s = torch.sigmoid(self.data)
        return self._node(s, (self,), lambda g: (g * s * (1 - s),), "sigmoid")

    def relu(self) -> Tensor:
        on = self.data > 0
        return self._node(torch.where(on, self.data, 0.0), (self,), lambda g: (g * on,), "relu")

    # -- backward --------------------------------------------------------------------------------
    def backward(self, gradient=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``grad``.

        ``gradient`` (this node's shape) is required unless this node holds one element.
        """
        from deepnotes.autograd.engine import topological_order

        if gradient is None:
            if self.data.numel() != 1:
                raise ValueError("gradient must be given for a non-scalar output")
            seed = torch.ones_like(self.data)
        else:
            seed = as_tensor("gradient", gradient, dtype=self.data.dtype)
            if seed.shape != self.data.shape:
                raise ValueError(f"gradient must have shape {tuple(self.shape)}, got {tuple(seed.shape)}")
        order = topological_order(self)
        for node in order:
            if node.parents:
                node.grad = None  # computed nodes restart each call; leaves accumulate
        self._accumulate(seed)
        for node in reversed(order):
            if node._backward is not None and node.grad is not None:
                node._backward()
