"""``create(name, num_classes, in_channels)``: build any registered image model by name."""

from __future__ import annotations

from torch import nn

from deepnotes.core.checks import check_int, check_type
from deepnotes.core.registry import MODELS


def create(name: str, num_classes: int = 1000, in_channels: int = 3, image_size: int = 224, **kwargs) -> nn.Module:
    """Build model ``name`` for ``in_channels × image_size × image_size`` inputs.

    Equivalent to ``MODELS.create(name, (in_channels, image_size, image_size), num_classes, **kwargs)``.
    Unknown names raise :class:`~deepnotes.core.registry.UnknownNameError` listing the valid ones;
    an ``image_size`` below a model's minimum raises ``ValueError`` naming the minimum (models with a
    small-input variant — ``resnet*``, ``vgg*`` — switch to it below 64 px instead).

    Example
    -------
    >>> m = create("resnet18", num_classes=10, in_channels=1, image_size=8)
    >>> m.variant
    'small'
    """
    check_type("name", name, str)
    c = check_int("in_channels", in_channels, min=1)
    s = check_int("image_size", image_size, min=1)
    return MODELS.create(name, (c, s, s), check_int("num_classes", num_classes, min=1), **kwargs)
