"""Models with one registry and one interface: ``MODELS.create(name, in_shape, num_classes)``."""

from deepnotes.models.alexnet import AlexNet, AlexNetOriginal, ZFNet
from deepnotes.models.basic import MLP, LinearModel, SmallCNN
from deepnotes.models.factory import create
from deepnotes.models.googlenet import GoogLeNet, Inception, InceptionAux
from deepnotes.models.inception import InceptionV3
from deepnotes.models.interface import ImageClassifier
from deepnotes.models.localization import ClassifyLocalize, make_shapes, train_localizer
from deepnotes.models.residual_mlp import ResidualBlock, ResidualMLP
from deepnotes.models.resnet import BasicBlock, Bottleneck, ResNet
from deepnotes.models.vgg import VGG

__all__ = [
    "MLP",
    "VGG",
    "AlexNet",
    "AlexNetOriginal",
    "BasicBlock",
    "Bottleneck",
    "ClassifyLocalize",
    "GoogLeNet",
    "ImageClassifier",
    "Inception",
    "InceptionAux",
    "InceptionV3",
    "LinearModel",
    "ResNet",
    "ResidualBlock",
    "ResidualMLP",
    "SmallCNN",
    "ZFNet",
    "create",
    "make_shapes",
    "train_localizer",
]
