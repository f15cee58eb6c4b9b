"""Every method leaves the model in its train/eval mode with no hook attached — also when it fails —
and bad input raises a clear error naming the argument."""

import json

import pytest
import torch
from torch import nn

from deepnotes.explain import (
    activation_maps,
    class_model,
    grad_cam,
    guided_backprop,
    layer_geometry,
    load_classifier_run,
    nearest_neighbors,
    occlusion,
    penultimate_features,
    saliency,
    top_patches,
)
from deepnotes.models.basic import SmallCNN
from tests.explain._models import Residual, images

# name → (a call that succeeds, a call that fails with ValueError after the model has run or hooks were set)
BAD_T = torch.tensor([0, 9, 1])
CALLS = {
    "saliency": (lambda m, x: saliency(m, x, 1), lambda m, x: saliency(m, x, BAD_T)),
    "guided_backprop": (lambda m, x: guided_backprop(m, x, 1), lambda m, x: guided_backprop(m, x, BAD_T)),
    "grad_cam": (lambda m, x: grad_cam(m, "features.7", x, 1), lambda m, x: grad_cam(m, "head", x, 1)),
    "occlusion": (lambda m, x: occlusion(m, x, 1, 3, 2), lambda m, x: occlusion(m, x, BAD_T, 3, 2)),
    "class_model": (lambda m, x: class_model(m, 1, (2, 8, 8), steps=3), lambda m, x: class_model(m, 9, (2, 8, 8), steps=3)),
    "activation_maps": (lambda m, x: activation_maps(m, "features.2", x), lambda m, x: activation_maps(m, "head", x)),
    "top_patches": (lambda m, x: top_patches(m, "features.5", x, channel=1, k=2),
                    lambda m, x: top_patches(m, "features.5", x, channel=99, k=2)),
    "layer_geometry": (lambda m, x: layer_geometry(m, "features.5", x), lambda m, x: layer_geometry(m, "features.1", x[:, :, :0])),
    "penultimate_features": (lambda m, x: penultimate_features(m, x), lambda m, x: penultimate_features(m, x, layer="nope")),
}


def _hook_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
        for m in model.modules()
    )


def _model(training: bool) -> nn.Module:
    torch.manual_seed(0)
    m = SmallCNN((2, 8, 8), 4, width=3).double()
    m.train(training)
    m.features[1].eval() if training else m.features[1].train()  # a mixed-mode model must stay mixed
    return m


def _modes(m: nn.Module) -> list[bool]:
    return [mod.training for mod in m.modules()]


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_mode_and_hooks_restored_after_success_and_failure(name, training):
    m = _model(training)
    x = images()
    modes = _modes(m)
    good, bad = CALLS[name]
    good(m, x)
    assert _modes(m) == modes and _hook_count(m) == 0
    with pytest.raises(ValueError):
        bad(m, x)
    assert _modes(m) == modes and _hook_count(m) == 0


class _Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


@pytest.mark.parametrize("name", sorted(set(CALLS) - {"layer_geometry"}))
def test_hooks_removed_and_mode_kept_when_the_forward_pass_fails(name):
    m = _model(True)
    m.head = nn.Sequential(_Boom(), nn.Linear(12, 4))  # fails after the hooks on the conv layers have run
    modes = _modes(m)
    with pytest.raises(RuntimeError, match="boom"):
        CALLS[name][0](m, images())
    assert _modes(m) == modes and _hook_count(m) == 0


def test_hooks_removed_when_a_residual_model_fails():
    m = Residual().double()
    m.head = _Boom()
    for call in (lambda: guided_backprop(m, images(), 0), lambda: grad_cam(m, "conv2", images(), 0)):
        with pytest.raises(RuntimeError, match="boom"):
            call()
        assert _hook_count(m) == 0


def test_unknown_layer_lists_the_valid_names():
    m = _model(False)
    with pytest.raises(ValueError, match=r"layer 'conv9' is not a layer of the model; valid names: features, features\.0"):
        grad_cam(m, "conv9", images(), 0)
    with pytest.raises(ValueError, match="valid names: .*head"):
        activation_maps(m, "conv9", images())


def test_target_out_of_range_names_the_valid_range():
    m = _model(False)
    with pytest.raises(ValueError, match=r"target must be a class index in \[0, 3\], got 4"):
        saliency(m, images(), 4)
    with pytest.raises(ValueError, match=r"target must be a class index in \[0, 3\], got -1"):
        occlusion(m, images(), torch.tensor([0, -1, 2]), 2)
    with pytest.raises(ValueError, match="one class per image"):
        saliency(m, images(), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="target must be an int"):
        saliency(m, images(), 1.0)


def test_wrong_channels_and_rank_name_the_argument():
    m = _model(False)
    with pytest.raises(ValueError, match=r"x has 3 channels but the model's first convolution expects 2"):
        saliency(m, torch.rand(2, 3, 8, 8, dtype=torch.float64), 0)
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        grad_cam(m, None, torch.rand(2, 8, 8, dtype=torch.float64), 0)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        occlusion(m, torch.zeros(1, 2, 8, 8, dtype=torch.int64), 0, 2)


def test_occlusion_window_and_stride_checked():
    m = _model(False)
    with pytest.raises(ValueError, match="window .* does not fit"):
        occlusion(m, images(), 0, 9)
    with pytest.raises(ValueError, match="stride .* must not exceed window"):
        occlusion(m, images(), 0, 2, 3)


def test_grad_cam_needs_a_conv_layer_and_a_feature_map():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(2 * 8 * 8, 4)).double()
    with pytest.raises(ValueError, match="has no convolutional layer"):
        grad_cam(mlp, None, images(), 0)
    m = _model(False)
    with pytest.raises(ValueError, match=r"layer 'head' must output a feature map"):
        grad_cam(m, "head", images(), 0)


def test_guided_backprop_needs_a_relu_module():
    class NoReLU(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3)
            self.fc = nn.Linear(3 * 6 * 6, 4)

        def forward(self, x):
            return self.fc(torch.tanh(self.conv(x)).flatten(1))

    with pytest.raises(ValueError, match="no nn.ReLU module"):
        guided_backprop(NoReLU().double(), images(), 0)


def test_receptive_field_after_a_global_pool_is_refused():
    with pytest.raises(ValueError, match="comes after the adaptive pooling 'features.10'"):
        layer_geometry(_model(False), "head", images())


def test_neighbour_and_class_model_arguments():
    bank = torch.rand(5, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="k must be <= 5"):
        nearest_neighbors(bank, bank, k=6)
    with pytest.raises(ValueError, match="query rows have 3 values but bank rows have 4"):
        nearest_neighbors(torch.rand(2, 3, dtype=torch.float64), bank)
    m = _model(False)
    with pytest.raises(ValueError, match=r"shape must be \(C, H, W\)"):
        class_model(m, 0, (8, 8))
    with pytest.raises(ValueError, match="value_clip must be < 1.0"):
        class_model(m, 0, (2, 8, 8), value_clip=1.0)
    with pytest.raises(ValueError, match="shape has 1 channels but the model's first convolution expects 2"):
        class_model(m, 0, (1, 8, 8))


def test_run_dir_that_is_not_a_classification_run(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        load_classifier_run(tmp_path / "missing")
    with pytest.raises(ValueError, match="has no config.json"):
        load_classifier_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model": "linear", "data": "linear", "seed": 0}))
    with pytest.raises(ValueError, match="holds no checkpoint"):
        load_classifier_run(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "epoch_0001.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="is a regression run .*explanations need a classification run"):
        load_classifier_run(tmp_path)
