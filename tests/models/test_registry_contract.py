"""Contract over the image models this package registers: output shape, no NaN, a gradient on every
parameter — each at the smallest (or small-variant) input it accepts, batch of 2."""

import gc

import pytest
import torch

from deepnotes.core.registry import MODELS

IN_SHAPES = {
    "alexnet": (3, 63, 63),
    "alexnet_original": (3, 67, 67),
    "zfnet": (3, 53, 53),
    "googlenet": (3, 15, 15),
    "inception_v3": (3, 75, 75),
    **{name: (1, 8, 8) for name in ("vgg16", "vgg16_bn", "vgg19", "vgg19_bn")},
    **{f"resnet{d}": (1, 8, 8) for d in (18, 34, 50, 101, 152)},
}


pytestmark = pytest.mark.usefixtures("one_thread")



# the deepest models reuse the block classes checked for real on resnet50 / googlenet; on the meta
# device their contract (shapes, a gradient reaching every parameter) costs no compute
META = {"resnet101", "resnet152", "inception_v3"}


@pytest.mark.parametrize("name", sorted(IN_SHAPES))
def test_model_contract(name):
    torch.manual_seed(0)
    device = torch.device("meta" if name in META else "cpu")
    with device:
        model = MODELS.create(name, IN_SHAPES[name], 3)
        x = torch.rand(2, *IN_SHAPES[name])
    out = model(x)
    outs = out if isinstance(out, tuple) else (out,)
    assert outs[0].shape == (2, 3)
    if device.type == "cpu":
        assert all(bool(torch.isfinite(o).all()) for o in outs)
    sum(o.sum() for o in outs).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    if device.type == "cpu":
        model.eval()  # dropout off: forward must be forward_head ∘ forward_features
        with torch.no_grad():
            feats = model.forward_features(x)
            assert feats.dim() == 4
            torch.testing.assert_close(model.forward_head(feats), model(x))
    del model, out, outs
    gc.collect()


def test_aux_heads_get_gradients():
    from deepnotes.models import GoogLeNet

    m = GoogLeNet(num_classes=3, aux_logits=True)
    logits, aux = m.forward_with_aux(torch.rand(2, 3, 32, 32))
    assert len(aux) == 2 and all(a.shape == (2, 3) for a in aux)
    (logits.sum() + 0.3 * sum(a.sum() for a in aux)).backward()
    assert all(p.grad is not None for p in m.parameters())


def test_every_image_model_is_covered():
    mine = {f"deepnotes.models.{m}" for m in ("alexnet", "vgg", "googlenet", "inception", "resnet")}
    ours = {n for n in MODELS.names() if MODELS.get(n).__module__ in mine}
    assert ours == set(IN_SHAPES)
