"""AlexNet (torchvision's single-tower layout and the paper's two-tower layout) and ZFNet.

* ``alexnet`` — the layout of ``torchvision.models.alexnet`` (64-192-384-256-256 channels, no LRN,
  no groups): 61,100,840 parameters for 1000 classes. Parameter names match torchvision's, so
  its state dicts load directly.
* ``alexnet_original`` — Krizhevsky et al. (2012): 96-256-384-384-256 channels on 227×227
  inputs, local response normalization after conv1 and conv2, and conv2/4/5 split into two
  groups (the two GPUs) while conv3 and the fully connected layers see both towers.
* ``zfnet`` — Zeiler & Fergus (2013): AlexNet with a 7×7 stride-2 first layer and a stride-2
  conv2, which keeps more of the early spatial detail.

All three end with an adaptive 6×6 average pool (an identity at their native input size) and
the 4096-4096 classifier with dropout 0.5.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_int, check_probability
from deepnotes.core.registry import MODELS
from deepnotes.models.interface import ImageClassifier, parse_in_shape
from deepnotes.nn.lrn import LocalResponseNorm


def _classifier(in_features: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(in_features, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    )


class _AlexNetFamily(ImageClassifier):
    def _finish(self, in_channels: int, num_classes: int, dropout: float) -> None:
        self.in_channels, self.num_classes = in_channels, num_classes
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = _classifier(256 * 6 * 6, num_classes, dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(features), 1))


class AlexNet(_AlexNetFamily):
    """torchvision's AlexNet layout. Minimum input 63×63."""

    min_size = 63

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        c = check_int("in_channels", in_channels, min=1)
        nc = check_int("num_classes", num_classes, min=1)
        dropout = check_probability("dropout", dropout)
        self.features = nn.Sequential(
            nn.Conv2d(c, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # overlapping pooling: 3×3 windows every 2 pixels
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self._finish(c, nc, dropout)


class AlexNetOriginal(_AlexNetFamily):
    """The paper's two-tower AlexNet with LRN (k=2, n=5, α=1e-4, β=0.75). Native input 227×227; minimum 67×67."""

    min_size = 67

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        c = check_int("in_channels", in_channels, min=1)
        nc = check_int("num_classes", num_classes, min=1)
        dropout = check_probability("dropout", dropout)
        self.features = nn.Sequential(
            nn.Conv2d(c, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),  # each tower sees its own 48 maps
            nn.ReLU(inplace=True),
            LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),  # the towers communicate here
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self._finish(c, nc, dropout)


class ZFNet(_AlexNetFamily):
    """ZFNet: 7×7/2 first layer, stride-2 conv2, 96-256-384-384-256 channels. Native 224×224; minimum 53×53."""

    min_size = 53

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        c = check_int("in_channels", in_channels, min=1)
        nc = check_int("num_classes", num_classes, min=1)
        dropout = check_probability("dropout", dropout)
        self.features = nn.Sequential(
            nn.Conv2d(c, 96, kernel_size=7, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            nn.Conv2d(96, 256, kernel_size=5, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self._finish(c, nc, dropout)


def _factory(cls, name):
    def make(in_shape, num_classes: int, **kw) -> nn.Module:
        c, _, _ = parse_in_shape(in_shape, cls.min_size, name)
        return cls(num_classes=num_classes, in_channels=c, **kw)

    make.__name__ = name
    make.__qualname__ = name
    make.__doc__ = cls.__doc__
    return make


alexnet = MODELS.register("alexnet", description="AlexNet, torchvision layout (min 63x63)")(_factory(AlexNet, "alexnet"))
alexnet_original = MODELS.register(
    "alexnet_original", description="AlexNet as in the paper: two towers, grouped convs, LRN (min 67x67)"
)(_factory(AlexNetOriginal, "alexnet_original"))
zfnet = MODELS.register("zfnet", description="ZFNet: 7x7/2 first layer (min 53x53)")(_factory(ZFNet, "zfnet"))
