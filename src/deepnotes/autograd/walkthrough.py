"""A printable walk-through of forward values, local derivatives and the chain rule.

:func:`walkthrough` parses a small arithmetic expression (a safe subset of Python: numbers,
variable names, ``+ - * / **``, unary minus and the functions ``max, exp, log, tanh, sigmoid,
relu``), evaluates it with :class:`~deepnotes.autograd.engine.Value` nodes and records, node by
node, what the forward pass computed and what the backward pass multiplied::

    >>> w = walkthrough("max(x*y, x+z)", x=2, y=-3, z=4)
    >>> w.output, w.gradients
    (6.0, {'x': 1.0, 'y': 0.0, 'z': 1.0})
    >>> print(w.format())  # doctest: +ELLIPSIS
    expression: max(x*y, x+z)   with x=2, y=-3, z=4
    ...
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from deepnotes.autograd.engine import Value, vmax

_FUNCS = {
    "max": 2,
    "exp": 1,
    "log": 1,
    "tanh": 1,
    "sigmoid": 1,
    "relu": 1,
}
_BINOPS = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__", ast.Div: "__truediv__"}


@dataclass(frozen=True)
class ForwardRow:
    node: str
    op: str
    inputs: tuple[str, ...]
    value: float


@dataclass(frozen=True)
class BackwardRow:
    node: str  # the node whose gradient is being sent back
    to: str  # the input receiving it
    local: float  # d node / d input
    upstream: float  # d output / d node
    product: float  # local * upstream, added to the input's gradient


@dataclass(frozen=True)
class Walkthrough:
    """What :func:`walkthrough` recorded."""

    expression: str
    variables: dict[str, float]
    forward: list[ForwardRow]
    backward: list[BackwardRow]
    output: float
    gradients: dict[str, float]

    def format(self) -> str:
        """The walk-through as plain text."""
        given = ", ".join(f"{k}={v:g}" for k, v in self.variables.items())
        lines = [f"expression: {self.expression}   with {given}", "", "forward pass"]
        w = max(len(r.node) for r in self.forward)
        lines.append(f"  {'node':<{w}}  {'op':<8}  {'inputs':<24}  value")
        for r in self.forward:
            lines.append(f"  {r.node:<{w}}  {r.op or 'input':<8}  {', '.join(r.inputs):<24}  {r.value:.6g}")
        lines += [
            "",
            "backward pass: input.grad += local derivative d(node)/d(input) x upstream d(out)/d(node)",
            f"  d(out)/d(out) = 1 at {self.forward[-1].node}",
        ]
        for r in self.backward:
            lines.append(
                f"  {r.node} -> {r.to}:  local {r.local:.6g} x upstream {r.upstream:.6g}"
                f" = {r.product:.6g}"
            )
        lines += ["", f"output: {self.output:.6g}", "gradients:"]
        lines += [f"  d(out)/d{k} = {v:.6g}" for k, v in self.gradients.items()]
        return "\n".join(lines).replace("-0 ", "0 ").replace("= -0\n", "= 0\n")


def parse_expression(expression: str, variables: dict[str, float]) -> tuple[Value, dict[str, Value]]:
    """Build the :class:`Value` graph of ``expression``; returns (output, leaf per variable).

    Raises ``ValueError`` naming ``expression`` for syntax outside the supported subset or an
    unknown variable.
    """
    if not isinstance(expression, str):
        raise TypeError(f"expression must be a str, got {type(expression).__name__}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"expression is not valid: {exc.msg}") from None
    leaves = {name: Value(val, name) for name, val in variables.items()}

    def build(node: ast.AST) -> Value:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return Value(node.value, repr(node.value))
        if isinstance(node, ast.Name):
            if node.id not in leaves:
                raise ValueError(f"expression uses {node.id!r} but no value was given for it")
            return leaves[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = build(node.operand)
            out = -inner if isinstance(node.op, ast.USub) else inner
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            out = getattr(build(node.left), _BINOPS[type(node.op)])(build(node.right))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            if not isinstance(node.right, ast.Constant):
                raise ValueError("expression: the exponent of ** must be a number")
            out = build(node.left) ** node.right.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS:
            name = node.func.id
            if len(node.args) != _FUNCS[name] or node.keywords:
                raise ValueError(f"expression: {name}() takes {_FUNCS[name]} argument(s)")
            args = [build(a) for a in node.args]
            out = vmax(*args) if name == "max" else getattr(args[0], name)()
        else:
            raise ValueError(
                f"expression: unsupported syntax {ast.unparse(node)!r}; use numbers, names, "
                f"+ - * / **, and {', '.join(_FUNCS)}"
            )
        out.label = ast.unparse(node)
        return out

    return build(tree.body), leaves


def walkthrough(expression: str, **variables: float) -> Walkthrough:
    """Evaluate ``expression`` and record the forward values and every chain-rule product.

    Parameters
    ----------
    expression : str
        E.g. ``"max(x*y, x+z)"`` or ``"sigmoid(w*x + b)"``.
    **variables : float
        The value of each name used in ``expression``.

    Returns
    -------
    Walkthrough
        ``forward`` rows in evaluation order, ``backward`` rows in the order the backward pass
        applies them, the output and the gradient of the output w.r.t. each variable.
    """
    out, leaves = parse_expression(expression, variables)
    order = out.topological_order()
    names: dict[int, str] = {}
    for node in order:
        name = node.label or "?"
        while name in names.values() and names.get(id(node)) != name:
            name += "'"  # two distinct nodes with the same text (e.g. x*x twice)
        names[id(node)] = name
    forward = [
        ForwardRow(names[id(n)], n.op, tuple(names[id(p)] for p in n.parents), n.data) for n in order
    ]
    out.zero_grad()
    out.grad = 1.0
    backward: list[BackwardRow] = []
    for node in reversed(order):
        for parent, local in zip(node.parents, node.local_grads):
            backward.append(
                BackwardRow(names[id(node)], names[id(parent)], local, node.grad, local * node.grad)
            )
            parent.grad += local * node.grad
    return Walkthrough(
        expression,
        {k: float(v) for k, v in variables.items()},
        forward,
        backward,
        out.data,
        {k: leaves[k].grad for k in variables},
    )
