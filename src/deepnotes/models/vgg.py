"""VGG-16 and VGG-19, with or without batch norm, and their small-input variant.

Only 3×3 convolutions (stride 1, padding 1) and 2×2 max pools: two stacked 3×3 layers see 5×5,
three see 7×7, with fewer weights and more non-linearities than one big kernel. The ImageNet
variant follows ``torchvision.models.vgg16/vgg19[_bn]`` (parameter names included: 138,357,544 /
143,667,240 parameters for 1000 classes). The small variant (inputs below 64 px, e.g. 8×8 digits
or 32×32 CIFAR) keeps only the pools the input can afford (each needs a side of at least 2),
ends with global average pooling and a 512-512-classes head.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_int, check_probability
from deepnotes.core.registry import MODELS
from deepnotes.models.interface import ImageClassifier, parse_in_shape, pick_variant

# channel plan per stage; "M" is a 2×2 max pool (configurations D and E of the paper)
CONFIGS = {
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(ImageClassifier):
    """VGG network.

    Parameters
    ----------
    depth : {16, 19}
    batch_norm : bool
        Conv → BN → ReLU instead of Conv → ReLU.
    variant : {"imagenet", "small"}
    image_size : int
        Input side, used by the small variant to decide how many pools to keep.
    """

    def __init__(
        self,
        depth: int = 16,
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        variant: str = "imagenet",
        image_size: int = 224,
        dropout: float = 0.5,
    ):
        super().__init__()
        depth = check_choice("depth", depth, tuple(CONFIGS))
        self.in_channels = check_int("in_channels", in_channels, min=1)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.variant = check_choice("variant", variant, ("imagenet", "small"))
        dropout = check_probability("dropout", dropout)
        size = check_int("image_size", image_size, min=1)
        layers: list[nn.Module] = []
        c, pools = self.in_channels, 0
        for v in CONFIGS[depth]:
            if v == "M":
                if self.variant == "small" and size < 2:
                    continue  # the small variant drops pools the input cannot afford
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                size //= 2
                pools += 1
                continue
            layers.append(nn.Conv2d(c, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            c = v
        self.features = nn.Sequential(*layers)
        self.min_size = 2**pools
        if self.variant == "imagenet":
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(4096, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(4096, self.num_classes),
            )
        else:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.classifier = nn.Sequential(
                nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(512, self.num_classes)
            )
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's scheme: He (fan-out) for convs, N(0, 0.01) for linear layers
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(features), 1))


def _factory(name: str, depth: int, batch_norm: bool):
    def make(in_shape, num_classes: int, variant: str = "auto", **kw) -> nn.Module:
        v = pick_variant(variant, in_shape)
        c, h, w = parse_in_shape(in_shape, 32 if v == "imagenet" else None, name)
        return VGG(depth, num_classes, c, batch_norm, v, min(h, w), **kw)

    make.__name__ = make.__qualname__ = name
    return make


for _name, _depth, _bn in (("vgg16", 16, False), ("vgg16_bn", 16, True), ("vgg19", 19, False), ("vgg19_bn", 19, True)):
    MODELS.add(_name, _factory(_name, _depth, _bn), description=f"VGG-{_depth}{' with BN' if _bn else ''}; small variant below 64 px")

vgg16 = MODELS.get("vgg16")
vgg16_bn = MODELS.get("vgg16_bn")
vgg19 = MODELS.get("vgg19")
vgg19_bn = MODELS.get("vgg19_bn")
