"""ResNet-18/34/50/101/152 with basic (3×3, 3×3) and bottleneck (1×1, 3×3, 1×1) residual blocks.

Each block computes ``relu(F(x) + shortcut(x))``: the layers learn a residual on top of the
identity, so a deep stack can always fall back to passing its input through. The shortcut is
the identity, or a strided 1×1 conv + BN when the shape changes.

The ImageNet variant follows ``torchvision.models.resnet*`` (parameter names included:
11,689,512 parameters for resnet18 and 25,557,032 for resnet50 with 1000 classes). The small
variant (inputs below 64 px: 8×8 digits, 32×32 CIFAR) replaces the 7×7/2 stem and its max pool
with one 3×3/1 conv, as in the paper's CIFAR experiments, so an 8×8 input still reaches the last
stage at 1×1. ``zero_init_residual=True`` zero-initializes the last BN of every residual branch,
making each block without downsampling exactly the identity at initialization.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnotes.core.checks import check_choice, check_int
from deepnotes.core.registry import MODELS
from deepnotes.models.interface import ImageClassifier, parse_in_shape, pick_variant


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convs; output channels = ``planes``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 (reduce to ``planes``) → 3×3 (stride here, as torchvision's "v1.5") → 1×1 (expand ×4)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


SPECS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(ImageClassifier):
    """Residual network.

    Parameters
    ----------
    depth : {18, 34, 50, 101, 152}
    variant : {"imagenet", "small"}
        ``"small"``: 3×3/1 stem without max pool, for inputs from 8×8 to ~32×32.
    zero_init_residual : bool
        Zero-initialize the last BN scale of every residual branch.
    """

    def __init__(
        self,
        depth: int = 18,
        num_classes: int = 1000,
        in_channels: int = 3,
        variant: str = "imagenet",
        zero_init_residual: bool = False,
    ):
        super().__init__()
        block, counts = SPECS[check_choice("depth", depth, tuple(SPECS))]
        self.in_channels = check_int("in_channels", in_channels, min=1)
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.variant = check_choice("variant", variant, ("imagenet", "small"))
        self.inplanes = 64
        if self.variant == "imagenet":
            self.conv1 = nn.Conv2d(self.in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(self.in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 64, counts[0])
        self.layer2 = self._make_layer(block, 128, counts[1], stride=2)
        self.layer3 = self._make_layer(block, 256, counts[2], stride=2)
        self.layer4 = self._make_layer(block, 512, counts[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, self.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_bn().weight)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def blocks(self) -> list[nn.Module]:
        """Every residual block, in order."""
        return [m for m in self.modules() if isinstance(m, (BasicBlock, Bottleneck))]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(features), 1))


def _factory(depth: int):
    name = f"resnet{depth}"

    def make(in_shape, num_classes: int, variant: str = "auto", **kw) -> nn.Module:
        v = pick_variant(variant, in_shape)
        c, _, _ = parse_in_shape(in_shape, None, name)
        return ResNet(depth, num_classes, c, v, **kw)

    make.__name__ = make.__qualname__ = name
    return make


for _depth in SPECS:
    MODELS.add(f"resnet{_depth}", _factory(_depth), description=f"ResNet-{_depth}; small 3x3 stem below 64 px")

resnet18 = MODELS.get("resnet18")
resnet34 = MODELS.get("resnet34")
resnet50 = MODELS.get("resnet50")
resnet101 = MODELS.get("resnet101")
resnet152 = MODELS.get("resnet152")
