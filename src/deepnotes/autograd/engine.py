"""A scalar reverse-mode autograd engine.

Each :class:`Value` holds a number, the gradient of the final output with respect to it, the
values it was computed from and a closure that applies the chain rule for that one operation::

    out = a * b
    a.grad += b.data * out.grad      # local derivative d(out)/da = b, times the upstream gradient
    b.grad += a.data * out.grad

``+=`` (not ``=``) is what makes a value used twice receive the sum of its gradients. The
backward pass visits nodes in reverse topological order; the order is computed with an explicit
stack, so a chain of 100,000 operations backpropagates without hitting Python's recursion limit.

Non-differentiable points follow ``torch.autograd``: ``relu'(0) = 0``; at a tie ``max(a, b)``
sends half of the gradient to each input (``torch.maximum``'s rule).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from numbers import Real


def _number(name: str, x: object) -> float:
    if type(x) is float:  # the common case, without the slower abstract-class check below
        return x
    if isinstance(x, bool) or not isinstance(x, Real):
        raise TypeError(f"{name} must be a real number or a Value, got {type(x).__name__}")
    return float(x)


def _value(name: str, x: object) -> Value:
    return x if type(x) is Value or isinstance(x, Value) else Value(_number(name, x))


class Value:
    """A scalar node of a computation graph.

    Parameters
    ----------
    data : float
        The number this node holds (ints and numpy scalars are converted; bools and
        non-numbers raise ``TypeError``).
    label : str, optional
        A name shown by the walk-through printer.

    Attributes
    ----------
    grad : float
        d(output)/d(this node) after :meth:`backward` on the output (0 before).
    parents : tuple of Value
        The inputs this node was computed from (empty for a leaf).
    op : str
        The operation that produced it (``""`` for a leaf).
    local_grads : tuple of float
        d(this)/d(parent) for each parent, as used by the chain rule (for the walk-through).

    Examples
    --------
    >>> x, y = Value(2.0), Value(-3.0)
    >>> z = x * y + x
    >>> z.backward()
    >>> z.data, x.grad, y.grad
    (-4.0, -2.0, 2.0)
    """

    __slots__ = ("data", "grad", "parents", "op", "label", "local_grads", "_backward")

    def __init__(self, data: float, label: str = "", *, _parents: tuple = (), _op: str = ""):
        self.data = _number("data", data)
        self.grad = 0.0
        self.parents: tuple[Value, ...] = _parents
        self.op = _op
        self.label = label
        self.local_grads: tuple[float, ...] = ()
        self._backward: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    # -- construction helper: every op records its local derivatives, and its closure is the
    # -- chain rule  parent.grad += local * out.grad
    def _node(self, data: float, parents: tuple[Value, ...], local: tuple[float, ...], op: str):
        out = Value(data, _parents=parents, _op=op)
        out.local_grads = local

        def backward() -> None:
            for parent, d in zip(parents, local):
                parent.grad += d * out.grad

        out._backward = backward
        return out

    # -- binary arithmetic -------------------------------------------------------------------
    def __add__(self, other: Value | float) -> Value:
        other = _value("other", other)
        # add: d/da = d/db = 1, the upstream gradient passes unchanged to both inputs
        return self._node(self.data + other.data, (self, other), (1.0, 1.0), "+")

    def __mul__(self, other: Value | float) -> Value:
        other = _value("other", other)
        # multiply: each input's gradient is scaled by the *other* input's value
        return self._node(self.data * other.data, (self, other), (other.data, self.data), "*")

    def __pow__(self, exponent: float) -> Value:
        if isinstance(exponent, Value):
            raise TypeError("exponent must be a real number, not a Value (use exp/log for x**y)")
        k = _number("exponent", exponent)
        x = self.data
        if x == 0 and k < 0:
            raise ZeroDivisionError(f"0 ** {k:g}: a zero Value raised to a negative power")
        if x < 0 and not k.is_integer():
            raise ValueError(f"{x} ** {k:g}: a negative base with a fractional exponent is complex")
        if k == 0:
            local = 0.0
        elif x == 0 and k < 1:
            local = math.inf  # the slope of x**k at 0 for 0 < k < 1 (torch gives inf too)
        else:
            local = k * x ** (k - 1)
        return self._node(x**k, (self,), (local,), f"**{k:g}")

    def __neg__(self) -> Value:
        return self._node(-self.data, (self,), (-1.0,), "neg")

    def __sub__(self, other: Value | float) -> Value:
        other = _value("other", other)
        return self._node(self.data - other.data, (self, other), (1.0, -1.0), "-")

    def __truediv__(self, other: Value | float) -> Value:
        other = _value("other", other)
        a, b = self.data, other.data
        if b == 0:
            raise ZeroDivisionError("division of a Value by zero")
        # d(a/b)/da = 1/b,  d(a/b)/db = -a/b^2
        return self._node(a / b, (self, other), (1.0 / b, -a / (b * b)), "/")

    def __radd__(self, other: float) -> Value:
        return self + other

    def __rsub__(self, other: float) -> Value:
        return _value("other", other) - self

    def __rmul__(self, other: float) -> Value:
        return self * other

    def __rtruediv__(self, other: float) -> Value:
        return _value("other", other) / self

    # -- unary functions ---------------------------------------------------------------------
    def exp(self) -> Value:
        try:  # float64 holds e^x up to x ≈ 709.78; beyond, the IEEE result inf
            e = math.exp(self.data)
        except OverflowError:
            e = math.inf
        return self._node(e, (self,), (e,), "exp")  # d/dx e^x = e^x

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"log of a non-positive Value ({self.data})")
        return self._node(math.log(self.data), (self,), (1.0 / self.data,), "log")

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return self._node(t, (self,), (1.0 - t * t,), "tanh")  # 1 - tanh^2

    def sigmoid(self) -> Value:
        x = self.data
        # the two branches avoid overflow of exp(-x) for very negative x
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return self._node(s, (self,), (s * (1.0 - s),), "sigmoid")  # s (1 - s)

    def relu(self) -> Value:
        on = self.data > 0
        return self._node(self.data if on else 0.0, (self,), (1.0 if on else 0.0,), "relu")

    def max(self, other: Value | float) -> Value:
        """``max(self, other)``; the gradient goes to the larger input (half each on a tie)."""
        other = _value("other", other)
        a, b = self.data, other.data
        local = (1.0, 0.0) if a > b else (0.0, 1.0) if b > a else (0.5, 0.5)
        return self._node(a if a >= b else b, (self, other), local, "max")

    # -- graph traversal ---------------------------------------------------------------------
    def topological_order(self) -> list[Value]:
        """Every node this value depends on, each after all of its parents (iterative DFS)."""
        return topological_order(self)

    def backward(self) -> None:
        """Accumulate d(self)/d(node) into ``node.grad`` for every node of the graph.

        As in torch, leaves (values with no parents) accumulate gradients across calls (call
        :meth:`zero_grad` in between), while every computed node restarts from 0 on each call.
        """
        order = self.topological_order()
        for node in order:
            if node.parents:
                node.grad = 0.0
        self.grad += 1.0  # d(self)/d(self); 0 here unless self is a leaf
        for node in reversed(order):
            if node._backward is not None:
                node._backward()

    def zero_grad(self) -> None:
        """Reset the gradient of every node of the graph ending at this value to 0."""
        for node in self.topological_order():
            node.grad = 0.0


def topological_order(root):
    """Nodes reachable from ``root`` through ``.parents``, each after all of its parents.

    An explicit stack replaces recursion, so graph depth is bounded by memory, not by Python's
    recursion limit. Works for any node type with a ``parents`` tuple (scalars and tensors).
    """
    order: list = []
    seen: set[int] = set()
    stack: list = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))  # emitted once all parents below it are emitted
        for p in reversed(node.parents):  # reversed: the left operand is emitted first
            if id(p) not in seen:
                stack.append((p, False))
    return order


def vmax(a: Value | float, b: Value | float) -> Value:
    """``max(a, b)`` of two values or numbers (see :meth:`Value.max`)."""
    return _value("a", a).max(_value("b", b))


def vsum(values: Iterable[Value | float]) -> Value:
    """The sum of ``values`` as one chain of additions (0 for an empty iterable)."""
    total = Value(0.0)
    for v in values:
        total = total + v
    return total
