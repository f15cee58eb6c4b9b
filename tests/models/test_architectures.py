"""Our architectures against torchvision: parameter counts, parameter names/shapes (strict state-dict
load), and identical outputs (float64) after copying the weights."""

import pytest
import torch
import torchvision.models as tvm

from deepnotes.core.registry import MODELS, UnknownNameError
from deepnotes.models import AlexNetOriginal, GoogLeNet, InceptionV3, ResNet, create
from deepnotes.nn.calculators import conv_params
from tests._reference import assert_same_maths

pytestmark = pytest.mark.usefixtures("one_thread")



def _count(m):
    return sum(p.numel() for p in m.parameters())


# (our name, our kwargs, torchvision builder, its kwargs, expected count from the issue / torchvision docs)
COUNTS = [
    ("alexnet", {}, tvm.alexnet, {}, 61_100_840),
    ("vgg16", {}, tvm.vgg16, {}, 138_357_544),
    ("vgg19", {}, tvm.vgg19, {}, 143_667_240),
    ("vgg16_bn", {}, tvm.vgg16_bn, {}, 138_365_992),
    ("vgg19_bn", {}, tvm.vgg19_bn, {}, 143_678_248),
    ("googlenet", {}, tvm.googlenet, {"aux_logits": False, "init_weights": False}, 6_624_904),
    ("googlenet", {"aux_logits": True}, tvm.googlenet, {"aux_logits": True, "init_weights": False}, 13_004_888),
    ("inception_v3", {}, tvm.inception_v3, {"aux_logits": False, "init_weights": False}, 23_834_568),
    ("inception_v3", {"aux_logits": True}, tvm.inception_v3, {"aux_logits": True, "init_weights": False}, 27_161_264),
    ("resnet18", {}, tvm.resnet18, {}, 11_689_512),
    ("resnet34", {}, tvm.resnet34, {}, 21_797_672),
    ("resnet50", {}, tvm.resnet50, {}, 25_557_032),
    ("resnet101", {}, tvm.resnet101, {}, 44_549_160),
    ("resnet152", {}, tvm.resnet152, {}, 60_192_808),
]


@pytest.mark.parametrize("name,kw,tv,tkw,expected", COUNTS, ids=[f"{c[0]}{'+aux' if c[1] else ''}" for c in COUNTS])
def test_parameter_count_and_names_equal_torchvision(name, kw, tv, tkw, expected):
    size = 299 if name == "inception_v3" else 224
    with torch.device("meta"):  # no memory, no init cost: only shapes and names are compared
        ours, ref = create(name, 1000, 3, size, **kw), tv(**tkw)
    assert _count(ours) == _count(ref) == expected
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert list(ours_sd) == list(ref_sd)
    assert all(ours_sd[k].shape == ref_sd[k].shape for k in ref_sd)


def _randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype) * (0.1 if "weight" in name else 0.05))


def _pair(ours, ref, seed=0):
    ours, ref = ours.double(), ref.double()
    _randomize(ours, seed)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


@pytest.mark.parametrize("name,tv,size", [("alexnet", tvm.alexnet, 63), ("vgg16_bn", tvm.vgg16_bn, 32)])
def test_feature_extractors_equal_torchvision(name, tv, size):
    # the huge fully connected heads are compared by name and shape above; the conv stacks by value
    kw = {"variant": "imagenet"} if name.startswith("vgg") else {}
    with torch.device("meta"):  # build the (huge) heads without memory; only the conv stacks get real weights
        ours, ref = create(name, 10, 3, size, **kw), tv(num_classes=10)
    ours.features, ref.features = _pair(ours.features.to_empty(device="cpu"), ref.features.to_empty(device="cpu"))
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    assert_same_maths(ours.forward_features(x), ref.features(x))


@pytest.mark.parametrize("depth,size", [(18, 64), (50, 32)])
def test_resnet_outputs_equal_torchvision(depth, size):
    ours = create(f"resnet{depth}", 7, 3, size, variant="imagenet")
    ours, ref = _pair(ours, getattr(tvm, f"resnet{depth}")(num_classes=7))
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    ours.eval(), ref.eval()
    assert_same_maths(ours(x), ref(x))
    ours.train(), ref.train()  # batch statistics, no dropout in ResNet
    assert_same_maths(ours(x), ref(x))


def test_googlenet_outputs_equal_torchvision_with_aux():
    ours = GoogLeNet(num_classes=5, aux_logits=True, dropout=0.0, dropout_aux=0.0)
    ref = tvm.googlenet(num_classes=5, aux_logits=True, init_weights=False, dropout=0.0, dropout_aux=0.0,
                        transform_input=False)
    ours, ref = _pair(ours, ref)
    x = torch.randn(2, 3, 40, 40, dtype=torch.float64)
    ours.train(), ref.train()
    logits, (a1, a2) = ours.forward_with_aux(x)
    out = ref(x)
    assert_same_maths(logits, out.logits)
    assert_same_maths(a1, out.aux_logits1)
    assert_same_maths(a2, out.aux_logits2)
    ours.eval(), ref.eval()
    assert_same_maths(ours(x), ref(x))


def test_inception_v3_outputs_equal_torchvision_with_aux():
    ours = InceptionV3(num_classes=4, aux_logits=True, dropout=0.0)
    ref = tvm.inception_v3(num_classes=4, aux_logits=True, init_weights=False, dropout=0.0, transform_input=False)
    ours, ref = _pair(ours, ref)
    x = torch.randn(2, 3, 75, 75, dtype=torch.float64)
    ours.eval(), ref.eval()
    assert_same_maths(ours(x), ref(x))
    # the aux head needs a 17x17 grid (a 299x299 input): compare it on such a grid directly
    grid = torch.randn(2, 768, 17, 17, dtype=torch.float64)
    assert_same_maths(ours.AuxLogits(grid), ref.AuxLogits(grid))


def test_alexnet_original_counts_follow_the_paper():
    with torch.device("meta"):
        m = AlexNetOriginal()
    # the paper's layer list, counted with the calculator (two towers = groups of 2)
    expected = (
        conv_params(3, 96, 11) + conv_params(96, 256, 5, groups=2) + conv_params(256, 384, 3)
        + conv_params(384, 384, 3, groups=2) + conv_params(384, 256, 3, groups=2)
        + (9216 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    )
    assert _count(m) == expected
    x = torch.zeros(1, 3, 227, 227)
    real = AlexNetOriginal(num_classes=3)
    assert real.forward_features(x).shape == (1, 256, 6, 6)


@pytest.mark.parametrize("name,size,shape", [("zfnet", 224, (256, 6, 6)), ("alexnet", 224, (256, 6, 6)),
                                              ("alexnet_original", 227, (256, 6, 6))])
def test_native_feature_map_sizes(name, size, shape):
    with torch.device("meta"):
        m = create(name, 10, 3, size)
        assert tuple(m.forward_features(torch.zeros(1, 3, size, size)).shape[1:]) == shape


def test_small_variants_on_digits_and_cifar_sizes():
    r = create("resnet18", 10, 1, 8)
    assert isinstance(r, ResNet) and r.variant == "small"
    assert r.forward_features(torch.zeros(2, 1, 8, 8)).shape == (2, 512, 1, 1)
    assert r(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert create("resnet18", 10, 3, 32).variant == "small"
    assert create("resnet18", 10, 3, 64).variant == "imagenet"
    with torch.device("meta"):
        assert create("resnet50", 10, 3, 32).forward_features(torch.zeros(1, 3, 32, 32)).shape == (1, 2048, 4, 4)
    v = create("vgg16", 10, 1, 8)
    assert v.variant == "small" and v.min_size == 8
    assert v(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="minimum input size 63x63"):
        create("alexnet", 10, 3, 32)
    with pytest.raises(ValueError, match="minimum input size 75x75"):
        MODELS.create("inception_v3", (3, 64, 64), 10)
    with pytest.raises(ValueError, match="minimum input size 15x15"):
        MODELS.create("googlenet", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="minimum input size 32x32"):
        create("vgg16", 10, 3, 16, variant="imagenet")
    m = create("resnet18", 10, 3, 32)
    with pytest.raises(ValueError, match="channels"):
        m(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="input"):
        m(torch.zeros(3, 32, 32))
    with torch.device("meta"), pytest.raises(ValueError, match="aux_min_size 299"):
        InceptionV3(aux_logits=True).forward_with_aux(torch.zeros(1, 3, 100, 100))
    g = create("googlenet", 10, 3, 32)
    with pytest.raises(ValueError, match="minimum size 15x15"):
        g(torch.zeros(1, 3, 12, 12))
    with pytest.raises(UnknownNameError, match="resnet18"):
        create("resnet19")
    with pytest.raises(ValueError, match="in_shape"):
        MODELS.create("resnet18", (3, 32), 10)
    with pytest.raises(ValueError, match="variant"):
        create("resnet18", 10, 3, 32, variant="tiny")
    with pytest.raises(ValueError, match="num_classes"):
        create("resnet18", 0)
    with pytest.raises(ValueError, match="branch3_kernel"):
        GoogLeNet(branch3_kernel=7)


def test_paper_googlenet_uses_5x5():
    with torch.device("meta"):
        g = GoogLeNet(branch3_kernel=5)
    assert g.inception3a.branch3[1].conv.kernel_size == (5, 5)
