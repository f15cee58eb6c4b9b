"""``deepnotes explain`` on a freshly trained ``cnn`` digits run."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from deepnotes.cli import main
from deepnotes.explain.run import load_classifier_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "cnn-digits"
    args = ["train", "--model", "cnn", "--data", "digits", "--epochs", "1", "--model-kw", "width=4",
            "--no-progress", "--out", str(out)]
    assert main(args) == 0
    return out


def _png_ok(path):
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


@pytest.mark.parametrize("method", ["all", "saliency", "guided_backprop", "grad_cam", "occlusion", "activations",
                                    "patches", "neighbors", "filters", "embedding", "class_model"])
def test_every_method_writes_a_png(run_dir, tmp_path, method, capsys):
    assert main(["explain", str(run_dir), "--index", "2", "--method", method, "--out", str(tmp_path)]) == 0
    _png_ok(tmp_path / f"{method}.png")
    assert f"wrote {tmp_path / method}.png" in capsys.readouterr().out


def test_image_file_and_target(run_dir, tmp_path, capsys):
    run = load_classifier_run(run_dir)
    x, _ = run.splits.test[5]
    path = tmp_path / "digit.png"
    mpimg.imsave(path, x[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)  # written as RGBA, read back as grey
    args = ["explain", str(run_dir), "--image", str(path), "--method", "grad_cam", "--target", "3", "--out", str(tmp_path)]
    assert main(args) == 0
    assert "explained class 3" in capsys.readouterr().out
    _png_ok(tmp_path / "grad_cam.png")


def test_bad_input_is_reported_with_exit_2(run_dir, tmp_path, capsys):
    def err(*extra):
        assert main(["explain", str(run_dir), *extra, "--out", str(tmp_path)]) == 2
        return capsys.readouterr().err

    assert "--method must be one of 'saliency'" in err("--method", "nope")
    assert "--target must be <= 9" in err("--method", "saliency", "--target", "10")
    assert "--index: index must be <= 268" in err("--index", "9999")
    assert "--layer 'conv9' is not a layer of the model; valid names: features" in err("--layer", "conv9")
    big = tmp_path / "big.png"
    mpimg.imsave(big, np.zeros((16, 16)), cmap="gray")
    assert "--image: image" in (msg := err("--image", str(big))) and "is 16x16 but the run's model was trained on 8x8" in msg
    assert "does not exist" in err("--image", str(tmp_path / "none.png"))


def test_run_dir_must_be_a_classification_run(tmp_path, capsys):
    reg = tmp_path / "reg"
    assert main(["train", "--model", "linear", "--data", "linear", "--epochs", "1", "--no-progress", "--out", str(reg)]) == 0
    capsys.readouterr()
    assert main(["explain", str(reg), "--method", "saliency"]) == 2
    assert "is a regression run" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err
