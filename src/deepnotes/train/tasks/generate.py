"""Generation: a GAN (two optimizers, "generator" and "discriminator") or a VAE (one) on images.

Labels of the dataset are ignored. Which of the two a task trains is its ``kind``: set it
(``GenerationTask(kind="gan")``) when building a :class:`~deepnotes.train.Trainer` yourself, or let
:meth:`GenerationTask.build_model` set it from the model (the CLI's path).

Training metrics: for the GAN ``loss`` (the discriminator's, the step's first optimized loss, which
the divergence guard watches), ``g_loss`` (the generator's) and the mean ``D`` on real and fake
samples (``d_real``, ``d_fake``); for the VAE ``loss``, the negative ELBO (its KL weighed by the task's
``beta``, or by the model's when the task's is None). Evaluation metric ``loss``: for the
VAE the same of the evaluation images; for the GAN the discriminator loss on the
evaluation images against as many fakes (ln 4 ≈ 1.386 when D cannot tell them apart). The random
draws of an evaluation come from a private generator, so evaluating never shifts the training's
random stream (exact resume).
"""

from __future__ import annotations

from typing import Any

import torch

from deepnotes.core.checks import check_choice, check_float
from deepnotes.core.registry import TASKS
from deepnotes.generative.gan_losses import GENERATOR_LOSSES, discriminator_loss
from deepnotes.generative.networks import GAN
from deepnotes.generative.training import gan_step, vae_step
from deepnotes.generative.vae import VAE
from deepnotes.train.tasks.base import StepContext, Task

KINDS = ("gan", "vae")
_GAN_TRAIN = ("loss", "g_loss", "d_real", "d_fake")


@TASKS.register("generate", description="GAN (generator + discriminator optimizers) or VAE on images, labels ignored")
class GenerationTask(Task):
    name = "generate"
    data_tasks = ("classification",)  # image datasets with labels: the labels are ignored
    metrics = {"loss": False}
    train_metrics = ("loss",)
    monitor = "loss"

    def __init__(self, kind: str | None = None, gan_loss: str = "non_saturating", beta: float | None = None):
        self.gan_loss = check_choice("gan_loss", gan_loss, GENERATOR_LOSSES)
        # None: each VAE's own beta (the CLI's path: --model-kw beta=0.5); a number overrides it
        self.beta = None if beta is None else check_float("beta", beta, min=0.0)
        self.kind: str | None = None
        if kind is not None:
            self.set_kind(kind)

    def set_kind(self, kind: str) -> None:
        self.kind = check_choice("kind", kind, KINDS)
        gan = kind == "gan"
        self.optimizer_names = ("generator", "discriminator") if gan else ("default",)
        self.train_metrics = _GAN_TRAIN if gan else ("loss",)

    def build_model(self, name: str, splits: Any, **kwargs: Any):
        model = super().build_model(name, splits, **kwargs)
        if isinstance(model, GAN):
            self.set_kind("gan")
        elif isinstance(model, VAE):
            self.set_kind("vae")
        else:
            raise ValueError(f"model {name!r} is neither a GAN nor a VAE: the generate task cannot train it")
        return model

    def _module(self, ctx: StepContext):
        if self.kind is None:
            raise ValueError("GenerationTask needs kind='gan' or 'vae' (or build_model) before training")
        module = ctx.module
        want = GAN if self.kind == "gan" else VAE
        if not isinstance(module, want):
            raise TypeError(f"task kind {self.kind!r} needs a {want.__name__}, got {type(module).__name__}")
        return module

    # -- training ----------------------------------------------------------------------------------
    def training_step(self, ctx: StepContext, batch: Any) -> dict[str, float]:
        x, n = batch[0], len(batch[0])
        model = self._module(ctx)
        if self.kind == "gan":
            out = gan_step(model, x, ctx.optimize, self.gan_loss)
            out["loss"] = out.pop("d_loss")
        else:
            out = vae_step(model, x, lambda loss, _: ctx.optimize(loss), self.beta)
        return {**{k: v * n for k, v in out.items()}, "count": n}

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        return {k: v / sums["count"] for k, v in sums.items() if k != "count"}

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, ctx: StepContext, batches) -> dict[str, float]:
        g = torch.Generator().manual_seed(0)  # the same draws at every evaluation; global RNG untouched
        sums = {"loss": 0.0, "count": 0.0}
        model = self._module(ctx)
        for batch in batches:
            x, n = batch[0], len(batch[0])
            if self.kind == "gan":
                fake = model.generator(model.latent(n, g))
                loss = discriminator_loss(model.discriminator(x), model.discriminator(fake))
            else:
                loss = -model.elbo(x, self.beta, g).mean()
            sums["loss"] += float(loss) * n
            sums["count"] += n
        sums = ctx.all_reduce_sums(sums)
        if not sums["count"]:
            raise ValueError("evaluation data is empty: nothing to measure")
        return {"loss": sums["loss"] / sums["count"]}

    def predict_step(self, module, batch):
        """A GAN's prediction for a batch of latent codes is its images; a VAE's, the reconstructions' means."""
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if isinstance(module, VAE):
            mu, _ = module.encode(x)
            return module.mean_image(module.decode(mu))
        return module(x)

    def optimizer_parameters(self, model) -> dict[str, Any]:
        """The parameters of each named optimizer: the GAN's two networks, or the whole VAE."""
        if isinstance(model, GAN):
            return {"generator": model.generator.parameters(), "discriminator": model.discriminator.parameters()}
        return {"default": model.parameters()}

    def callbacks(self) -> list:
        """Callbacks the CLI adds for this task: a sample grid per epoch."""
        from deepnotes.generative.callbacks import SampleGrid

        return [SampleGrid()]
