"""Hyperparameter search on Optuna: search spaces, samplers, storage, pruning, coarse-to-fine.

The search runs on Optuna's engine and storage, not on a home-made loop, so a study can be shared
by several worker processes or machines (each runs the same command against the same storage URL)
and resumed by rerunning the command. The default storage is a SQLite file in the run directory;
see ``docs/scaling.md`` for SQLite's limits and the journal-file / PostgreSQL alternatives.

Search-space specs (``NAME=KIND:ARGS``)::

    lr=loguniform:1e-4:1e-1     float, sampled uniformly in log space (the notes' advice for rates)
    dropout=uniform:0:0.5       float, uniform
    hidden=int:16:256           integer, uniform;   hidden=logint:16:256   integer, log-uniform
    optimizer=choice:sgd,adam   categorical

Coarse-to-fine: :func:`refine_space` shrinks every numeric range to the span of the best trials
(widened a little, log-aware) and a second study searches there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from deepnotes.core.checks import check_choice, check_int, check_type

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
_KINDS = ("uniform", "loguniform", "int", "logint", "choice")


@dataclass(frozen=True)
class Param:
    """One dimension of a search space."""

    name: str
    kind: str  # one of _KINDS
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def log(self) -> bool:
        return self.kind in ("loguniform", "logint")

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def grid(self, points: int) -> list[Any]:
        """``points`` evenly spaced values (in log space for log kinds); all choices for categoricals."""
        if self.kind == "choice":
            return list(self.choices)
        if points == 1:
            vals = [math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2]
        elif self.log:
            a, b = math.log(self.low), math.log(self.high)
            vals = [math.exp(a + (b - a) * i / (points - 1)) for i in range(points)]
        else:
            vals = [self.low + (self.high - self.low) * i / (points - 1) for i in range(points)]
        if self.kind in ("int", "logint"):
            return sorted({int(round(v)) for v in vals})
        return vals


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: bound must be finite, got {text!r}")
    return value


def make_param(name: str, kind: str, low: float | None = None, high: float | None = None,
               choices: Sequence[Any] = ()) -> Param:
    """Validate one dimension: ``low < high`` (an empty or inverted range is an error), log bounds > 0."""
    check_type("name", name, str)
    if not name.isidentifier():
        raise ValueError(f"parameter name must be an identifier, got {name!r}")
    kind = check_choice(f"kind of {name}", kind, _KINDS)
    if kind == "choice":
        choices = tuple(choices)
        if not choices:
            raise ValueError(f"search space for {name!r} is empty: no choices")
        if len(set(map(str, choices))) != len(choices):
            raise ValueError(f"search space for {name!r} repeats a choice: {choices}")
        return Param(name, kind, choices=choices)
    if low is None or high is None:
        raise ValueError(f"search space for {name!r} needs low and high")
    if kind in ("int", "logint") and (low != int(low) or high != int(high)):
        raise ValueError(f"search space for {name!r}: int bounds must be whole numbers, got {low}, {high}")
    if low == high:
        raise ValueError(f"search space for {name!r} is empty: low == high == {low}")
    if low > high:
        raise ValueError(f"search space for {name!r} is inverted: low {low} > high {high}")
    if kind in ("loguniform", "logint") and low <= 0:
        raise ValueError(f"search space for {name!r}: a log range needs low > 0, got {low}")
    return Param(name, kind, float(low), float(high))


def parse_param(spec: str) -> Param:
    """Parse ``NAME=KIND:ARGS`` (see the module docstring)."""
    check_type("spec", spec, str)
    if "=" not in spec or ":" not in spec:
        raise ValueError(f"--param must look like NAME=KIND:LOW:HIGH or NAME=choice:A,B; got {spec!r}")
    name, rest = spec.split("=", 1)
    kind, _, args = rest.partition(":")
    name, kind = name.strip(), kind.strip()
    check_choice(f"kind in --param {spec!r}", kind, _KINDS)
    if kind == "choice":
        return make_param(name, kind, choices=[_auto(v.strip()) for v in args.split(",") if v.strip()])
    parts = args.split(":")
    if len(parts) != 2:
        raise ValueError(f"--param {spec!r}: expected {kind}:LOW:HIGH")
    return make_param(name, kind, _number(parts[0], f"--param {spec!r}"), _number(parts[1], f"--param {spec!r}"))


def _auto(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def make_space(params: Iterable[Param]) -> dict[str, Param]:
    space: dict[str, Param] = {}
    for p in params:
        check_type("param", p, Param)
        if p.name in space:
            raise ValueError(f"parameter {p.name!r} is given twice")
        space[p.name] = p
    if not space:
        raise ValueError("the search space is empty: give at least one --param")
    return space


def make_sampler(name: str, space: dict[str, Param], seed: int = 0, grid_points: int = 4):
    """Optuna sampler by name: ``tpe``, ``random`` or ``grid`` (``grid_points`` values per numeric axis)."""
    import optuna

    name = check_choice("sampler", name, SAMPLERS)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    grid_points = check_int("grid_points", grid_points, min=1)
    return optuna.samplers.GridSampler({k: p.grid(grid_points) for k, p in space.items()}, seed=seed)


def make_pruner(name: str):
    """``median``: stop a trial whose intermediate value is worse than the median of earlier trials."""
    import optuna

    name = check_choice("pruner", name, PRUNERS)
    if name == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def open_storage(url: str):
    """An Optuna storage for ``url``: an RDB URL (``sqlite:///…``, ``postgresql://…``) or a journal
    file (a path ending in ``.log`` / ``.jsonl``, or ``journal:PATH``).

    A storage that cannot be opened — unreachable server, missing driver, a file that is not a
    database — raises ``ValueError`` naming it; nothing is written to it.
    """
    import optuna

    check_type("storage", url, str)
    try:
        if url.startswith("journal:") or url.endswith((".log", ".jsonl")):
            from optuna.storages.journal import JournalFileBackend

            path = url.removeprefix("journal:")
            return optuna.storages.JournalStorage(JournalFileBackend(path))
        if "://" not in url:
            raise ValueError("expected a database URL such as sqlite:///study.db or a journal file path")
        return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"cannot open storage {url!r}: {msg}") from exc


def _engine_kwargs(url: str) -> dict[str, Any]:
    # several processes writing one SQLite file: wait for the lock instead of failing at once
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def load_study(storage, study_name: str, direction: str = "minimize", sampler=None, pruner=None):
    """Create the study, or continue it when it already exists in ``storage``."""
    import optuna

    direction = check_choice("direction", direction, ("minimize", "maximize"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(storage=storage, study_name=study_name, direction=direction,
                                    sampler=sampler, pruner=pruner, load_if_exists=True)
    except Exception as exc:
        raise ValueError(f"cannot open study {study_name!r}: {str(exc).splitlines()[0]}") from exc
    if study.direction.name.lower() != direction:
        raise ValueError(f"study {study_name!r} exists with direction {study.direction.name.lower()}, not {direction}")
    return study


def run_search(
    objective: Callable[[Any, dict[str, Any]], float],
    space: dict[str, Param],
    *,
    storage,
    study_name: str,
    n_trials: int,
    sampler: str = "tpe",
    pruner: str = "median",
    direction: str = "minimize",
    seed: int = 0,
    grid_points: int = 4,
    on_trial: Callable[[Any], Any] | None = None,
):
    """Add ``n_trials`` trials to the study (created or continued); returns the study.

    A trial whose training stops on a non-finite loss or diverges is recorded as failed (with the
    reason in its ``fail_reason`` user attribute) and the search goes on. ``on_trial(trial)`` is
    called after each trial (the CLI prints a line).

    ``objective(trial, params)`` gets the Optuna trial (to report intermediate values) and the
    sampled parameters. The sampler's seed is offset by the number of trials already stored, so
    a resumed random search does not replay the first run's points.
    """
    import optuna

    n_trials = check_int("n_trials", n_trials, min=1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    probe = load_study(storage, study_name, direction)
    offset = len(probe.trials)
    study = load_study(storage, study_name, direction, make_sampler(sampler, space, seed + offset, grid_points),
                       make_pruner(pruner))

    from deepnotes.train.guards import DivergenceError
    from deepnotes.train.trainer import NonFiniteLossError

    def wrapped(trial):
        params = {name: p.suggest(trial) for name, p in space.items()}
        try:
            return objective(trial, params)
        except (NonFiniteLossError, DivergenceError) as exc:
            trial.set_user_attr("fail_reason", str(exc))
            raise

    callbacks = [lambda _study, trial: on_trial(trial)] if on_trial is not None else None
    study.optimize(wrapped, n_trials=n_trials, catch=(NonFiniteLossError, DivergenceError), callbacks=callbacks)
    return study


def check_study_name(name: str) -> str:
    """A study name is a name, not a path: letters, digits, ``_``, ``-`` and ``.``, not starting with ``.``."""
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise ValueError(
            f"--study must be a name of letters, digits, '_', '-' and '.' (not starting with '.'), got {name!r}"
        )
    return name


def refine_space(study, space: dict[str, Param], top_k: int = 5, widen: float = 0.25) -> dict[str, Param]:
    """The region of the ``top_k`` best completed trials: each numeric range becomes their span,
    widened by ``widen`` of it on each side (in log space for log kinds) and clipped to the old range;
    a categorical keeps the choices those trials used.
    """
    import optuna

    top_k = check_int("top_k", top_k, min=1)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise ValueError("refine_space: the study has no completed trial")
    best = sorted(done, key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE")[:top_k]
    out = {}
    for name, p in space.items():
        vals = [t.params[name] for t in best if name in t.params]
        if not vals:
            out[name] = p
            continue
        if p.kind == "choice":
            out[name] = replace(p, choices=tuple(c for c in p.choices if c in vals))
            continue
        f = math.log if p.log else (lambda v: v)
        inv = math.exp if p.log else (lambda v: v)
        lo, hi = f(min(vals)), f(max(vals))
        span = hi - lo if hi > lo else (f(p.high) - f(p.low)) * 0.1
        lo, hi = max(f(p.low), lo - widen * span), min(f(p.high), hi + widen * span)
        low, high = inv(lo), inv(hi)
        if p.kind in ("int", "logint"):
            low, high = math.floor(low), math.ceil(high)
            if low == high:
                high = min(p.high, low + 1) if low + 1 <= p.high else high
                low = high - 1 if high == low else low
        out[name] = replace(p, low=float(low), high=float(high))
    return out


def trials_table(study) -> list[dict[str, Any]]:
    return [{"number": t.number, "state": t.state.name, "value": t.value, **t.params} for t in study.trials]


def plot_trials(study, space: dict[str, Param]):
    """Objective per trial with the best so far, and the objective against each numeric parameter."""
    import optuna

    from deepnotes.viz import new_figure

    numeric = [p for p in space.values() if p.kind != "choice"][:2]
    fig, axes = new_figure(1 + len(numeric))
    axes = list(axes) if numeric else [axes]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    maximize = study.direction.name == "MAXIMIZE"
    xs = [t.number for t in done]
    ys = [t.value for t in done]
    best, running = [], None
    for y in ys:
        running = y if running is None else (max(running, y) if maximize else min(running, y))
        best.append(running)
    axes[0].plot(xs, ys, "o", ms=4, label="complete")
    axes[0].step(xs, best, where="post", color="r", label="best so far")
    if pruned:
        axes[0].plot([t.number for t in pruned], [t.intermediate_values.get(max(t.intermediate_values), float("nan"))
                                                  if t.intermediate_values else float("nan") for t in pruned],
                     "x", color="0.5", label="pruned (last report)")
    axes[0].set_xlabel("trial")
    axes[0].set_ylabel("objective")
    axes[0].legend(fontsize=7)
    for ax, p in zip(axes[1:], numeric):
        ax.plot([t.params.get(p.name) for t in done], ys, "o", ms=4)
        if p.log:
            ax.set_xscale("log")
        ax.set_xlabel(p.name)
        ax.set_ylabel("objective")
    return fig
