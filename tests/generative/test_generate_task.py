"""The generate task: a GAN with two optimizers and a VAE with one, through the Trainer and the CLI."""

import csv

import pytest
import torch

from deepnotes.cli import main
from deepnotes.data.datasets import TensorDataset
from deepnotes.generative import GAN, VAE, SampleGrid, dcgan, vae
from deepnotes.train import NonFiniteLossError, Trainer
from deepnotes.train.callbacks import Callback
from deepnotes.train.checkpoint import list_checkpoints
from deepnotes.train.tasks.generate import GenerationTask


def _data(n=48):
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.rand(n, 1, 8, 8, generator=g), torch.zeros(n, dtype=torch.long))


def _gan_trainer(out, epochs, callbacks=(), ema_decay=None, augment=()):
    torch.manual_seed(0)
    model = dcgan((1, 8, 8), latent_dim=4, width=8, ema_decay=ema_decay, augment=augment)
    opts = {
        "generator": torch.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
    }
    return Trainer(model, opts, _data(), val_data=_data(16), task=GenerationTask(kind="gan"), epochs=epochs,
                   batch_size=16, out_dir=out, callbacks=list(callbacks))


def _gan_ema_trainer(out, epochs):
    return _gan_trainer(out, epochs, ema_decay=0.9)


def _gan_augment_trainer(out, epochs):
    return _gan_trainer(out, epochs, ema_decay=0.9, augment="translation,cutout,color")


def _vae_trainer(out, epochs, arch="mlp"):
    torch.manual_seed(0)
    model = vae((1, 8, 8), latent_dim=2, hidden=16, arch=arch, width=4)
    return Trainer(model, torch.optim.Adam(model.parameters(), lr=1e-3), _data(), val_data=_data(16),
                   task=GenerationTask(kind="vae"), epochs=epochs, batch_size=16, out_dir=out)


def test_gan_task_trains_both_networks_and_logs_their_losses(tmp_path):
    tr = _gan_trainer(tmp_path / "run", 2, [SampleGrid(n=8)])
    before = {k: v.clone() for k, v in tr.module.state_dict().items()}
    tr.fit()
    changed = {k.split(".")[0] for k, v in tr.module.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"generator", "discriminator"}
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert len(rows) == 2 and {"train_loss", "train_g_loss", "train_d_real", "train_d_fake", "val_loss"} <= set(rows[0])
    assert (tmp_path / "run" / "samples" / "epoch_0002.png").is_file()


def _conv_vae_trainer(out, epochs):
    return _vae_trainer(out, epochs, arch="conv")


@pytest.mark.parametrize(
    "make",
    [_gan_trainer, _gan_ema_trainer, _gan_augment_trainer, _vae_trainer, _conv_vae_trainer],
    ids=["gan", "gan-ema", "gan-augment", "vae", "vae-conv"],
)
def test_resume_is_exact(tmp_path, make):
    straight = make(tmp_path / "a", 3)
    straight.fit()
    first = make(tmp_path / "b", 1)
    first.fit()
    resumed = make(tmp_path / "b", 3)
    resumed.fit(resume=True)
    for (k, a), (_, b) in zip(straight.module.state_dict().items(), resumed.module.state_dict().items()):
        assert torch.equal(a, b), k  # with ema_decay: the averaged generator too
    for name in straight.optimizers:
        sa, sb = straight.optimizers[name].state_dict()["state"], resumed.optimizers[name].state_dict()["state"]
        for i in sa:
            for key in sa[i]:
                assert torch.equal(torch.as_tensor(sa[i][key]), torch.as_tensor(sb[i][key]))


class _Poison(Callback):
    def on_epoch_start(self, trainer, epoch):
        if epoch == 2:
            with torch.no_grad():
                next(trainer.module.discriminator.parameters()).fill_(float("nan"))


def test_non_finite_loss_stops_with_the_last_good_checkpoint(tmp_path):
    tr = _gan_trainer(tmp_path / "run", 3, [_Poison()])
    with pytest.raises(NonFiniteLossError):
        tr.fit()
    ckpts = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in ckpts] == ["epoch_0001.pt"]


def test_task_kind_must_match_the_model(tmp_path):
    torch.manual_seed(0)
    model = vae((1, 8, 8), latent_dim=2, hidden=4)
    tr = Trainer(model, {"generator": torch.optim.SGD(model.parameters(), lr=0.1),
                         "discriminator": torch.optim.SGD(model.parameters(), lr=0.1)},
                 _data(), task=GenerationTask(kind="gan"), epochs=1, batch_size=16)
    with pytest.raises(TypeError, match="needs a GAN"):
        tr.fit()


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="kind must be one of"):
        GenerationTask(kind="flow")


@pytest.mark.parametrize("model,kw", [("dcgan", ["latent_dim=4", "width=8"]), ("vae", ["latent_dim=2", "hidden=16"])])
def test_cli_trains_then_samples(tmp_path, model, kw):
    out = tmp_path / model
    args = ["train", "--task", "generate", "--model", model, "--data", "digits", "--epochs", "1", "--batch-size",
            "128", "--out", str(out), "--no-progress"]
    for k in kw:
        args += ["--model-kw", k]
    assert main(args) == 0
    assert (out / "samples" / "epoch_0001.png").is_file()
    assert main(["sample", str(out), "--n", "16", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").is_file()
    assert isinstance(_load(out), GAN if model == "dcgan" else VAE)


def _load(out):
    from deepnotes.commands.sample import load_generative_run

    return load_generative_run(out)[0]


def test_cli_resumes_a_gan_run(tmp_path):
    out = tmp_path / "gan"
    base = ["train", "--task", "generate", "--model", "dcgan", "--data", "digits", "--optimizer", "adam_gan",
            "--batch-size", "256", "--out", str(out), "--no-progress", "--model-kw", "latent_dim=4",
            "--model-kw", "width=8"]
    assert main(base + ["--epochs", "1"]) == 0
    assert main(base + ["--epochs", "2", "--resume"]) == 0
    assert (out / "samples" / "epoch_0002.png").is_file()


@pytest.mark.parametrize("task_beta,want", [(None, 0.25), (1.0, 1.0)])
def test_vae_task_weighs_the_kl_by_the_model_beta_unless_given_one(task_beta, want):
    torch.manual_seed(0)
    model = vae((1, 8, 8), latent_dim=2, hidden=8, beta=0.25)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    seen = []
    task = GenerationTask(kind="vae", beta=task_beta)

    class Ctx:
        module = model

        @staticmethod
        def optimize(loss):
            seen.append(float(loss.detach()))
            return seen[-1]

    torch.manual_seed(5)
    task.training_step(Ctx, (x, torch.zeros(6)))
    torch.manual_seed(5)
    assert seen[0] == pytest.approx(float(model.loss(x, beta=want).detach()), rel=1e-6)


def test_generate_task_rejects_a_negative_beta():
    with pytest.raises(ValueError, match="beta must be >= 0"):
        GenerationTask(kind="vae", beta=-1.0)
