"""The detector zoo: train each detector on ``shapes`` with its recorded settings, measure it the
same way, and tabulate all of them.

A detector's settings live with the model, in its registration's ``zoo`` metadata
(``MODELS.register("ssd", task="detect", zoo={...})``): ``epochs``, ``batch_size``, ``lr``,
``optimizer`` (a name of the OPTIMIZERS registry), ``weight_decay``, ``model_kw``, ``data_kw``
(arguments of the ``shapes`` dataset), ``schedule`` (``"constant"`` or ``"cosine"``) and
``target_map50``. :func:`train_and_measure` trains through the normal :class:`~deepnotes.train.Trainer`
with the ``detect`` task (one run directory per model, so ``deepnotes detect`` can use it) and
returns one row:

- ``map_50`` and ``map`` (mAP@[.5:.95]) on the test split, as the detect task measures them;
- ``mask_map_50`` only for a detector whose predictions hold ``masks`` (else ``None``);
- ``cpu_minutes``: the CPU time of the training process during ``Trainer.fit`` (all its threads,
  per-epoch validation included) — what a dedicated machine would need, however busy this one is;
- ``fps``: test images per CPU-second in eval mode, batch 16, post-processing included (median of
  repeated batches);
- ``params`` and the settings used.

:func:`write_table` regenerates ``table.md``, ``table.json`` and ``table.png`` from every
``rows/*.json`` of a folder, so several people can fill one folder one model at a time.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepnotes.core.checks import check_int, check_type
from deepnotes.core.io import atomic_write_json, atomic_write_text
from deepnotes.core.registry import MODELS

#: the training budget of a detector without its own ``budget_minutes``, in CPU minutes
BUDGET_MINUTES = 10.0
#: what a registration's ``zoo`` dict may leave out
DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 16,
    "lr": 1e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "model_kw": {},
    "data_kw": {},
    "schedule": "constant",
    "target_map50": None,
    "budget_minutes": BUDGET_MINUTES,
}
SCHEDULES = ("constant", "cosine")
FPS_BATCH = 16


def zoo_models() -> list[str]:
    """Every detector registered with zoo settings."""
    return [m for m in MODELS.names() if MODELS.meta(m).get("task") == "detect" and "zoo" in MODELS.meta(m)]


def zoo_settings(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recorded settings of detector ``name`` (its ``zoo`` metadata over :data:`DEFAULTS`),
    with ``overrides`` on top; unknown keys, a model without zoo settings or a bad schedule are a
    ``ValueError``."""
    meta = MODELS.meta(name)
    if meta.get("task") != "detect":
        raise ValueError(f"--models: {name!r} is not a detector (task={meta.get('task')!r})")
    if "zoo" not in meta:
        raise ValueError(f"--models: {name!r} has no recorded zoo settings (zoo={{...}} in its registration)")
    settings = {**DEFAULTS, **meta["zoo"], **(overrides or {})}
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"zoo settings of {name!r}: unknown keys {unknown}; valid keys: {sorted(DEFAULTS)}")
    if settings["schedule"] not in SCHEDULES:
        raise ValueError(f"zoo settings of {name!r}: schedule must be one of {SCHEDULES}, got {settings['schedule']!r}")
    check_type("model_kw", settings["model_kw"], dict)
    check_type("data_kw", settings["data_kw"], dict)
    return settings


def _schedule(name: str, optimizer, epochs: int):
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return None


def cpu_fps(model: torch.nn.Module, images: torch.Tensor, repeats: int = 5) -> float:
    """Images per CPU-second of ``model(images)`` in eval mode: ``len(images)`` over the median
    process CPU time of ``repeats`` calls after one untimed call."""
    model.eval()
    times = []
    with torch.no_grad():
        model(images)
        for _ in range(repeats):
            t0 = time.process_time()
            model(images)
            times.append(time.process_time() - t0)
    return len(images) / max(float(np.median(times)), 1e-9)


def train_and_measure(name: str, out: str | Path, *, seed: int = 0, overrides: dict[str, Any] | None = None,
                      replace: bool = False, progress=None) -> dict[str, Any]:
    """Train detector ``name`` with its zoo settings into ``out/runs/<name>``, measure it on the
    test split and write ``out/rows/<name>.json``; returns the row.

    A previous run of the model in ``out/runs/<name>`` is a ``ValueError`` unless ``replace``.
    """
    from deepnotes.core.registry import OPTIMIZERS
    from deepnotes.core.seeding import seed_everything
    from deepnotes.data import shapes
    from deepnotes.train import Trainer
    from deepnotes.train.reporting import EpochReporter
    from deepnotes.train.tasks import get_task

    seed = check_int("seed", seed, min=0)
    s = zoo_settings(name, overrides)
    out = Path(out)
    run_dir = out / "runs" / name
    if run_dir.exists():
        if not replace:
            raise ValueError(f"{str(run_dir)!r} already holds a run of {name!r}; pass --replace to train it again")
        shutil.rmtree(run_dir)
    seed_everything(seed)
    splits = shapes(seed=seed, **s["data_kw"])
    task = get_task("detect")
    model = task.build_model(name, splits, **s["model_kw"])
    opt_kw = {"lr": s["lr"]}
    if s["weight_decay"]:
        opt_kw["weight_decay"] = s["weight_decay"]
    optimizer = OPTIMIZERS.create(s["optimizer"], model.parameters(), **opt_kw)
    config = {  # what `deepnotes detect RUN_DIR` and `deepnotes train --resume` read
        "task": "detect", "model": name, "data": "shapes", "optimizer": s["optimizer"], "lr": s["lr"],
        "weight_decay": s["weight_decay"] or None, "batch_size": s["batch_size"], "seed": seed,
        "schedule": s["schedule"], "model_kw": [f"{k}={v!r}" for k, v in s["model_kw"].items()],
        "epochs": s["epochs"], "zoo": s,
    }
    callbacks = [EpochReporter(progress)] if progress is not None else []
    trainer = Trainer(model, optimizer, splits.train, val_data=splits.val, task=task, epochs=s["epochs"],
                      batch_size=s["batch_size"], seed=seed, out_dir=run_dir,
                      scheduler=_schedule(s["schedule"], optimizer, s["epochs"]), callbacks=callbacks, config=config)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    trainer.fit()
    cpu_seconds, wall_seconds = time.process_time() - cpu0, time.perf_counter() - wall0
    test = trainer.evaluate(splits.test, batch_size=FPS_BATCH)
    model.eval()
    batch = [splits.test[i] for i in range(min(FPS_BATCH, len(splits.test)))]
    images = torch.stack([x for x, _ in batch])
    # the detect task measures mask mAP (pycocotools' segm evaluation) when predictions carry masks
    mask_map = test.get("map_segm_50")
    row = {
        "model": name,
        "map_50": test["map_50"],
        "map": test["map"],
        "mask_map_50": mask_map,
        "cpu_minutes": cpu_seconds / 60,
        "wall_minutes": wall_seconds / 60,
        "fps": cpu_fps(model, images),
        "params": sum(p.numel() for p in model.parameters()),
        "epochs": trainer.epoch,
        "threads": torch.get_num_threads(),
        "seed": seed,
        "n_train": len(splits.train),
        "n_test": len(splits.test),
        "settings": s,
        "overrides": dict(overrides or {}),
        "target_map50": s["target_map50"],
        "budget_minutes": s["budget_minutes"],
        "target": target_status(test["map_50"], cpu_seconds / 60, s["target_map50"], s["budget_minutes"]),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    (out / "rows").mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "rows" / f"{name}.json", row)
    return row


def target_status(map50: float, cpu_minutes: float, target: float | None,
                  budget_minutes: float = BUDGET_MINUTES) -> str:
    """``met`` when mAP@0.5 reaches the target within ``budget_minutes`` of CPU time; ``missed``
    (with the reason) otherwise; ``-`` without a target."""
    if target is None:
        return "-"
    if map50 < target:
        return "missed (mAP)"
    if cpu_minutes > budget_minutes:
        return "missed (time)"
    return "met"


def read_rows(out: str | Path) -> list[dict[str, Any]]:
    """Every ``rows/*.json`` of ``out``, best mAP@0.5 first."""
    rows = []
    for path in sorted((Path(out) / "rows").glob("*.json")):
        try:
            rows.append(json.loads(path.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{str(path)!r} is not a zoo row (invalid JSON: {exc})") from None
    return sorted(rows, key=lambda r: (-r["map_50"], r["model"]))


def _fmt(v, spec: str) -> str:
    return "" if v is None else format(v, spec)


def _status(row: dict[str, Any]) -> str:
    """The row's target status against its model's budget (rows written before budgets were
    recorded take the budget from the model's registration). A run with overridden settings does
    not test the target: its status says so."""
    if row.get("overrides"):
        return "not tested (overridden settings)"
    budget = row.get("budget_minutes")
    if budget is None:
        meta = MODELS.meta(row["model"]) if row["model"] in MODELS else {}
        budget = meta.get("zoo", {}).get("budget_minutes", BUDGET_MINUTES)
    return target_status(row["map_50"], row["cpu_minutes"], row.get("target_map50"), budget)


def table_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "Detectors on `shapes` (128 × 128 RGB, 3 classes), each trained with its recorded settings "
        "(`MODELS.meta(name)['zoo']`) by `deepnotes zoo detect --models NAME --out DIR --threads 1`. "
        "mAP on the test split (COCO-style); CPU min = CPU time of the training process during "
        "`Trainer.fit` (per-epoch validation included); FPS = test images per CPU-second in eval mode, "
        "batch 16, post-processing included; target = mAP@0.5 reached within the model's budget "
        "(10 CPU minutes for one-stage detectors, 15 for two-stage ones). Measured on a shared machine.",
        "",
        "| model | mAP@0.5 | mAP@[.5:.95] | mask mAP@0.5 | CPU min | FPS | params | epochs | threads | target | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        flag = " *" if r.get("overrides") else ""
        lines.append(
            f"| {r['model']}{flag} | {r['map_50']:.3f} | {r['map']:.3f} | {_fmt(r.get('mask_map_50'), '.3f')} "
            f"| {r['cpu_minutes']:.1f} | {r['fps']:.0f} | {r['params']:,} | {r['epochs']} | {r['threads']} "
            f"| {_fmt(r.get('target_map50'), '.2f')} | {_status(r)} |"
        )
    if any(r.get("overrides") for r in rows):
        lines += ["", "\\* trained with overridden settings (`--set`), not the recorded ones."]
    return "\n".join(lines) + "\n"


def table_figure(rows: list[dict[str, Any]]):
    """mAP bars per detector (targets marked) and mAP@0.5 against CPU speed."""
    from deepnotes.viz import new_figure

    fig, (ax, ax2) = new_figure(2, width=5.5, height=max(3.0, 0.45 * len(rows) + 1.5))
    label = {id(r): r["model"] + (" *" if r.get("overrides") else "") for r in rows}  # * = reduced run
    names = [label[id(r)] for r in rows][::-1]
    y = np.arange(len(rows))
    m50 = [r["map_50"] for r in rows][::-1]
    mall = [r["map"] for r in rows][::-1]
    ax.barh(y + 0.2, m50, 0.4, label="mAP@0.5")
    ax.barh(y - 0.2, mall, 0.4, label="mAP@[.5:.95]")
    targets = [r.get("target_map50") for r in rows][::-1]
    ty = [yy for yy, t in zip(y, targets) if t is not None]
    ax.scatter([t for t in targets if t is not None], [v + 0.2 for v in ty], marker="|", s=300, color="k",
               label="target mAP@0.5", zorder=3)
    ax.set_yticks(y, names)
    ax.set_xlim(0, 1)
    ax.set_xlabel("mAP on the shapes test split (* = overridden settings)" if any(r.get("overrides") for r in rows)
                  else "mAP on the shapes test split")
    ax.legend(loc="lower right", fontsize=8)
    for r in rows:
        ax2.scatter(r["fps"], r["map_50"])
        ax2.annotate(label[id(r)], (r["fps"], r["map_50"]), textcoords="offset points", xytext=(4, 3), fontsize=8)
    ax2.set_xscale("log")
    ax2.margins(x=0.2)  # room for the names
    ax2.set_xlabel("CPU speed (test images per CPU-second, batch 16)")
    ax2.set_ylabel("mAP@0.5")
    ax2.set_ylim(0, 1)
    ax2.grid(alpha=0.3)
    return fig


def write_table(out: str | Path) -> list[dict[str, Any]]:
    """Regenerate ``table.md``, ``table.json`` and ``table.png`` in ``out`` from all its rows."""
    import matplotlib.pyplot as plt

    out = Path(out)
    rows = read_rows(out)
    atomic_write_json(out / "table.json", rows)
    atomic_write_text(out / "table.md", table_markdown(rows))
    if rows:
        fig = table_figure(rows)
        fig.savefig(out / "table.png", dpi=120)
        plt.close(fig)
    return rows
