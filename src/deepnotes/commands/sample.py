"""``deepnotes sample``: draw a grid of samples (or a VAE interpolation strip) from a trained generative run."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="draw samples from a trained GAN or VAE run",
        description="Load the newest checkpoint of a 'deepnotes train --task generate' run and write a PNG grid "
        "of N samples; with --interpolate (VAE only) write strips decoding the straight latent path between "
        "pairs of test digits.",
    )
    p.add_argument("run_dir", help="run directory written by deepnotes train --task generate")
    p.add_argument("--n", type=int, default=64, help="samples (or interpolation strips) to draw (default: 64)")
    p.add_argument("--out", default="grid.png", help="PNG file to write (default: grid.png)")
    p.add_argument("--interpolate", action="store_true", help="VAE: latent interpolation strips instead of samples")
    p.add_argument("--steps", type=int, default=10, help="points per interpolation strip (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent draws (default: 0)")
    p.add_argument("--prior", choices=("normal", "mixture"), default="normal",
                   help="VAE: draw z from N(0, I) (default) or from a Gaussian mixture fitted to the codes "
                   "(posterior means) of the run's training images")
    p.add_argument("--components", type=int, default=None,
                   help="components of the --prior mixture (default: 10)")
    p.add_argument("--quality", type=int, default=0, metavar="N",
                   help="also score N samples (e.g. 1000) with the digits classifier: Fréchet distance, share "
                   "classified with p >= 0.9, class histogram, beside a Gaussian baseline and real digits")
    from deepnotes.commands._common import add_threads_option

    add_threads_option(p)
    p.set_defaults(func=run)


def load_generative_run(run_dir: str | Path):
    """The model of a generative run directory, with the newest checkpoint's weights, in eval mode.

    Returns ``(model, config, splits)``. A missing folder, a folder without ``config.json`` or
    checkpoints, or a run of another task raises ``ValueError``.
    """
    from deepnotes.commands.train import parse_model_kw
    from deepnotes.core.registry import MODELS
    from deepnotes.data import resolve_dataset
    from deepnotes.train.checkpoint import list_checkpoints, load_checkpoint

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise ValueError(f"run_dir {str(run_dir)!r} is not a run directory (no config.json)")
    config = json.loads((run_dir / "config.json").read_text())
    model_name = config.get("model")
    task = MODELS.meta(model_name).get("task", "classification") if model_name in MODELS else None
    if config.get("task", task) != "generate" or task != "generate":
        raise ValueError(
            f"run_dir {str(run_dir)!r} holds a {config.get('task', task)!r} run of model {model_name!r}; "
            "deepnotes sample needs a run of task 'generate' (models: "
            + ", ".join(n for n in MODELS.names() if MODELS.meta(n).get("task") == "generate")
            + ")"
        )
    ckpts = list_checkpoints(run_dir / "checkpoints")
    if not ckpts:
        raise ValueError(f"run_dir {str(run_dir)!r} has no checkpoint yet")
    splits = resolve_dataset(config.get("data", "digits"))(seed=config.get("seed", 0))
    kw = config.get("model_kw") or []
    model = MODELS.create(model_name, splits.in_shape, splits.num_classes, **(parse_model_kw(kw) if isinstance(kw, list) else kw))
    model.load_state_dict(load_checkpoint(ckpts[-1])["model"])
    return model.eval(), config, splits


def run(args) -> int:
    import torch

    from deepnotes.commands._common import apply_threads, console
    from deepnotes.core.checks import check_int
    from deepnotes.generative.grid import save_grid
    from deepnotes.generative.vae import VAE
    from deepnotes.plugins import load_all

    apply_threads(args)  # small tensor work collapses when the thread pool outnumbers free cores
    load_all()
    n = check_int("--n", args.n, min=1)
    steps = check_int("--steps", args.steps, min=2)
    g = torch.Generator().manual_seed(check_int("--seed", args.seed, min=0))
    if args.components is not None and args.prior != "mixture":
        raise ValueError("--components sets the size of the --prior mixture; give --prior mixture too")
    components = check_int("--components", 10 if args.components is None else args.components, min=1)
    model, config, splits = load_generative_run(args.run_dir)
    prior = None
    if args.prior == "mixture":
        if not isinstance(model, VAE):
            raise ValueError(f"--prior mixture needs a VAE run; {args.run_dir!r} holds model {config['model']!r}")
        if args.interpolate:
            raise ValueError("--prior applies to samples; --interpolate decodes the codes of test digits instead")
        prior = _fit_prior(model, splits, components, args.seed)
    if args.interpolate:
        if not isinstance(model, VAE):
            raise ValueError(f"--interpolate needs a VAE run; {args.run_dir!r} holds model {config['model']!r}")
        from torch.utils.data import DataLoader

        x, _ = next(iter(DataLoader(splits.test, batch_size=len(splits.test))))
        pairs = torch.randint(len(x), (n, 2), generator=g)
        images = torch.cat([model.interpolate(x[a], x[b], steps) for a, b in pairs.tolist()])
        path = save_grid(images, args.out, nrow=steps)
    else:
        path = save_grid(_sample(model, n, g, prior), args.out, nrow=min(n, 8))
    con = console()
    con.print(f"wrote {path}" + (f" (z from a {components}-component mixture fitted to the training codes)"
                                 if prior is not None else ""))
    if args.quality:
        _print_quality(con, model, check_int("--quality", args.quality, min=2), args.seed, config, prior)
    return 0


def _sample(model, n, generator, prior):
    return model.sample(n, generator) if prior is None else model.sample(n, generator, prior=prior)


def _fit_prior(model, splits, components: int, seed: int):
    """A :class:`~deepnotes.generative.latent_prior.LatentMixture` fitted to the training images' codes."""
    from torch.utils.data import DataLoader

    from deepnotes.generative.latent_prior import LatentMixture

    x, _ = next(iter(DataLoader(splits.train, batch_size=len(splits.train))))
    if components > len(x):
        raise ValueError(f"--components {components} exceeds the {len(x)} training images")
    return LatentMixture.fit_vae(model, x, components, seed)


def _print_quality(con, model, n: int, seed: int, config: dict, prior=None) -> None:
    import torch

    from deepnotes.generative.quality import quality_report

    if config.get("data", "digits") != "digits":
        raise ValueError(f"--quality scores digits samples; this run was trained on {config.get('data')!r}")
    data_seed = int(config.get("seed", 0))  # the run's own split: its test digits are the reference
    report = quality_report(_sample(model, n, torch.Generator().manual_seed(seed + 1), prior), seed=seed,
                            data_seed=data_seed)
    con.print(f"sample quality (digits cnn features; the run's test digits, split seed {data_seed}, as reference):")
    for row, q in report.items():
        hist = " ".join(f"{s:.2f}" for s in q["class_shares"])
        con.print(f"  {row:<16} n {q['n']:>4}  Fréchet {q['frechet']:8.3f}  p>=0.9 {q['confident_share']:6.1%}  "
                  f"min class {q['min_class_share']:5.1%}  classes 0-9: {hist}")
    base, heldout = report["heldout_baseline"]["frechet"], report["heldout_real"]["frechet"]
    con.print(f"  at n = {report['heldout_real']['n']}: the baseline's Fréchet is "
              f"{base / report['heldout_samples']['frechet']:.1f}× that of the samples and "
              f"{base / heldout:.1f}× that of held-out real digits (the measure's floor at that size)")
