"""Class-folder datasets: one class is refused, skipped files are named, every file is checked
before training, images are read with Pillow's decompression-bomb limit."""

import numpy as np
import pytest
from PIL import Image

from deepnotes.cli import main
from deepnotes.data import image_folder, image_folder_splits, read_image


def _png(path, size=(6, 5), value=100, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"L": (), "RGB": (3,), "RGBA": (4,)}[mode]
    Image.fromarray(np.full((size[1], size[0], *channels), value, dtype=np.uint8), mode=mode).save(path)


def _classes(root, per_class=4, names=("a", "b")):
    for name in names:
        for i in range(per_class):
            _png(root / name / f"{i}.png", value=40 * (i + 1))


def test_one_class_is_refused(tmp_path, capsys):
    _classes(tmp_path, names=("only",))
    with pytest.raises(ValueError, match="at least two class folders"):
        image_folder(tmp_path)
    assert main(["train", "--data", f"folder:{tmp_path}", "--out", str(tmp_path / "run")]) == 2
    assert "at least two class folders" in capsys.readouterr().err


def test_hidden_and_nested_files_are_skipped_with_a_warning_naming_them(tmp_path):
    _classes(tmp_path)
    (tmp_path / "a" / "._0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # macOS resource fork
    _png(tmp_path / "b" / "deeper" / "x.png")
    with pytest.warns(UserWarning) as record:
        ds = image_folder(tmp_path)
    text = " ".join(str(w.message) for w in record)
    assert "1 hidden image file(s): a/._0.png" in text and "nested below a class folder" in text and "b/deeper/x.png" in text
    assert len(ds) == 8


def test_a_corrupt_image_is_found_before_training(tmp_path, capsys):
    _classes(tmp_path, per_class=5)
    (tmp_path / "b" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ValueError, match=r"1 image file\(s\) cannot be used: 'b/3.png'"):
        image_folder(tmp_path)
    assert main(["train", "--data", f"folder:{tmp_path}", "--epochs", "50", "--out", str(tmp_path / "run")]) == 2
    assert "cannot be used" in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_too_few_images_for_the_splits_is_a_clear_error(tmp_path, capsys):
    _classes(tmp_path, per_class=1)
    with pytest.raises(ValueError, match="too few for train / val / test splits"):
        image_folder_splits(tmp_path, size=(4, 4))
    assert main(["train", "--data", f"folder:{tmp_path}", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "too few" in err and "Traceback" not in err


def test_decompression_bombs_are_refused_by_name(tmp_path, monkeypatch):
    _png(tmp_path / "big.png", size=(40, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a 40 × 40 image is then 16× over the limit
    with pytest.raises(ValueError, match=r"big.png' refused: too many pixels"):
        read_image(tmp_path / "big.png")
    _classes(tmp_path / "data")
    _png(tmp_path / "data" / "a" / "huge.png", size=(40, 40))
    with pytest.raises(ValueError, match="huge.png': too many pixels"):
        image_folder(tmp_path / "data")


@pytest.mark.parametrize("mode, channels", [("L", 1), ("RGB", 3), ("RGBA", 4)])
def test_read_image_keeps_channels_and_scales_to_unit_range(tmp_path, mode, channels):
    _png(tmp_path / "x.png", value=51, mode=mode)
    x = read_image(tmp_path / "x.png")
    assert x.shape == (channels, 5, 6) and x.dtype.is_floating_point
    assert float(x[0, 0, 0]) == pytest.approx(51 / 255)
