"""Sample grids against torchvision.utils.make_grid; the ``deepnotes sample`` command on hand-made run folders."""

import json

import pytest
import torch
import torchvision

from deepnotes.cli import main
from deepnotes.core.registry import MODELS
from deepnotes.generative.grid import image_grid, save_grid
from deepnotes.train.checkpoint import save_checkpoint


@pytest.mark.parametrize("n,nrow,padding", [(10, 4, 2), (3, 8, 1), (16, 4, 0), (2, 1, 3)])
def test_image_grid_matches_torchvision(n, nrow, padding):
    x = torch.rand(n, 3, 5, 6, generator=torch.Generator().manual_seed(n))
    want = torchvision.utils.make_grid(x, nrow=nrow, padding=padding, pad_value=0.3)
    assert torch.equal(image_grid(x, nrow, padding, 0.3), want)


def test_save_grid_writes_a_png_of_the_expected_size(tmp_path):
    from PIL import Image

    path = save_grid(torch.rand(12, 1, 8, 8), tmp_path / "g.png", nrow=4, scale=2)
    with Image.open(path) as im:
        assert im.size == ((4 * 9 + 1) * 2, (3 * 9 + 1) * 2)


def test_image_grid_rejects_non_batches():
    with pytest.raises(ValueError, match="images must have 4 dimensions"):
        image_grid(torch.rand(8, 8))


def _run_dir(tmp_path, model_name, seed=0, **kw):
    torch.manual_seed(0)
    model = MODELS.create(model_name, (1, 8, 8), 10, **kw)
    run = tmp_path / model_name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(
        json.dumps({"model": model_name, "data": "digits", "seed": seed, "task": MODELS.meta(model_name).get("task", "classification"),
                    "model_kw": [f"{k}={v}" for k, v in kw.items()]})
    )
    save_checkpoint({"model": model.state_dict()}, run / "checkpoints", 1)
    return run, model


def test_sample_writes_the_grid_of_the_checkpointed_model(tmp_path):
    from PIL import Image

    run, _ = _run_dir(tmp_path, "dcgan", latent_dim=4, width=8)
    out = tmp_path / "grid.png"
    assert main(["sample", str(run), "--n", "10", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == ((8 * 9 + 1) * 8, (2 * 9 + 1) * 8)


def test_sample_interpolates_a_vae(tmp_path):
    run, _ = _run_dir(tmp_path, "vae", latent_dim=2, hidden=8)
    out = tmp_path / "strip.png"
    assert main(["sample", str(run), "--n", "2", "--interpolate", "--steps", "5", "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_sample_rejects_a_non_positive_count(tmp_path, capsys):
    run, _ = _run_dir(tmp_path, "vae", latent_dim=2, hidden=8)
    assert main(["sample", str(run), "--n", "0", "--out", str(tmp_path / "x.png")]) == 2
    assert "--n must be >= 1" in capsys.readouterr().err


def test_sample_rejects_a_run_of_another_task(tmp_path, capsys):
    run, _ = _run_dir(tmp_path, "cnn")
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "needs a run of task 'generate'" in err and "'classification'" in err


def test_sample_rejects_interpolation_of_a_gan(tmp_path, capsys):
    run, _ = _run_dir(tmp_path, "dcgan", latent_dim=4, width=8)
    assert main(["sample", str(run), "--interpolate", "--out", str(tmp_path / "x.png")]) == 2
    assert "--interpolate needs a VAE run" in capsys.readouterr().err


def test_sample_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["sample", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_sample_reports_quality_beside_the_baseline(tmp_path, capsys):
    run, _ = _run_dir(tmp_path, "vae", latent_dim=2, hidden=8)
    assert main(["sample", str(run), "--n", "4", "--quality", "50", "--out", str(tmp_path / "x.png")]) == 0
    out = capsys.readouterr().out
    assert all(row in out for row in ("samples", "baseline", "real_train")) and "Fréchet" in out
    assert "heldout_real" in out and "n   50" in out and "held-out real digits" in out


def test_sample_quality_is_measured_on_the_runs_own_split(tmp_path, capsys):
    """A run trained on the digits split of seed 1 is scored against that split's test digits."""
    run, _ = _run_dir(tmp_path, "vae", seed=1, latent_dim=2, hidden=8)
    assert main(["sample", str(run), "--n", "4", "--quality", "50", "--out", str(tmp_path / "x.png")]) == 0
    assert "split seed 1" in capsys.readouterr().out


def test_sample_quality_needs_a_digits_run():
    from deepnotes.commands.sample import _print_quality

    with pytest.raises(ValueError, match="--quality scores digits samples"):
        _print_quality(None, None, 10, 0, {"data": "folder:imgs", "seed": 0})


def test_sample_draws_a_vae_from_a_mixture_prior(tmp_path, capsys):
    run, _ = _run_dir(tmp_path, "vae", latent_dim=2, hidden=8)
    out = tmp_path / "mix.png"
    assert main(["sample", str(run), "--n", "6", "--prior", "mixture", "--components", "3", "--quality", "20",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.stat().st_size > 0 and "3-component mixture fitted to the training codes" in printed
    assert "heldout_real" in printed


def test_sample_rejects_a_mixture_prior_for_a_gan_and_bad_components(tmp_path, capsys):
    gan, _ = _run_dir(tmp_path, "dcgan", latent_dim=4, width=8)
    assert main(["sample", str(gan), "--prior", "mixture", "--out", str(tmp_path / "x.png")]) == 2
    assert "--prior mixture needs a VAE run" in capsys.readouterr().err
    run, _ = _run_dir(tmp_path, "vae", latent_dim=2, hidden=8)
    assert main(["sample", str(run), "--prior", "mixture", "--components", "0", "--out", str(tmp_path / "x.png")]) == 2
    assert "--components must be >= 1" in capsys.readouterr().err
    assert main(["sample", str(run), "--prior", "mixture", "--components", "99999", "--out", str(tmp_path / "x.png")]) == 2
    assert "--components 99999 exceeds the" in capsys.readouterr().err
    assert main(["sample", str(run), "--prior", "mixture", "--interpolate", "--out", str(tmp_path / "x.png")]) == 2
    assert "--prior applies to samples" in capsys.readouterr().err
    assert main(["sample", str(run), "--components", "5", "--out", str(tmp_path / "x.png")]) == 2
    assert "give --prior mixture too" in capsys.readouterr().err
