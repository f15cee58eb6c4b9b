"""``deepnotes autograd``: print the forward and backward pass of a small expression."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "autograd",
        help="walk through forward values, local derivatives and the chain rule of an expression",
        description=(
            "Example: deepnotes autograd \"max(x*y, x+z)\" x=2 y=-3 z=4. Supported: numbers, "
            "names, + - * / **, max, exp, log, tanh, sigmoid, relu."
        ),
    )
    p.add_argument("expression", help='e.g. "max(x*y, x+z)"')
    p.add_argument("values", nargs="*", metavar="NAME=VALUE", help="the value of each variable")
    p.set_defaults(func=run)


def parse_assignments(items: list[str]) -> dict[str, float]:
    """``["x=2", "y=-3"]`` -> ``{"x": 2.0, "y": -3.0}``; raises ValueError on a bad item."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ValueError(f"values: expected NAME=VALUE, got {item!r}")
        try:
            out[name] = float(raw)
        except ValueError:
            raise ValueError(f"values: {name} must be a number, got {raw!r}") from None
    return out


def run(args) -> int:
    from deepnotes.autograd import walkthrough

    values = parse_assignments(args.values)
    try:
        text = walkthrough(args.expression, **values).format()
    except ZeroDivisionError:
        raise ValueError("expression: division by zero (a divisor evaluates to 0 with these values)") from None
    except OverflowError as exc:
        raise ValueError(f"expression: a value is too large for a float64 ({exc})") from None
    except RecursionError:
        raise ValueError("expression: nested too deeply for the walk-through (split it into smaller expressions)") from None
    print(text)
    return 0
