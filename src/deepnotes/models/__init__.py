"""Models with one registry and one interface: ``MODELS.create(name, in_shape, num_classes)``."""

from deepnotes.models.basic import MLP, LinearModel, SmallCNN

__all__ = ["MLP", "LinearModel", "SmallCNN"]
