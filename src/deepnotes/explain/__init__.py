"""Seeing inside CNNs: filters, features, activations, occlusion, saliency, guided backprop, Grad-CAM, class models.

Every method takes a model and a batch and returns tensors (plotting lives in :mod:`deepnotes.viz`);
the model is left in the train/eval mode it was given, with no hook attached, even when a call fails.
"""

from deepnotes.explain.activations import (
    Geometry,
    TopPatches,
    activation_maps,
    layer_geometry,
    top_patches,
)
from deepnotes.explain.class_model import class_model, clip_smallest, gaussian_blur, total_variation
from deepnotes.explain.features import (
    embed_2d,
    nearest_neighbors,
    neighbor_label_agreement,
    penultimate_features,
)
from deepnotes.explain.filters import filter_grid, first_layer_filters, normalize_filters
from deepnotes.explain.grad_cam import cam_overlay, grad_cam, last_conv_name, upsample_cam
from deepnotes.explain.guided_backprop import guided_backprop
from deepnotes.explain.occlusion import occlusion, occlusion_masks
from deepnotes.explain.run import ClassifierRun, load_classifier_run, resolve_image, stack_split
from deepnotes.explain.saliency import channel_max, input_gradient, saliency

__all__ = [
    "ClassifierRun",
    "Geometry",
    "TopPatches",
    "activation_maps",
    "cam_overlay",
    "channel_max",
    "class_model",
    "clip_smallest",
    "embed_2d",
    "filter_grid",
    "first_layer_filters",
    "gaussian_blur",
    "grad_cam",
    "guided_backprop",
    "input_gradient",
    "last_conv_name",
    "layer_geometry",
    "load_classifier_run",
    "nearest_neighbors",
    "neighbor_label_agreement",
    "normalize_filters",
    "occlusion",
    "occlusion_masks",
    "penultimate_features",
    "resolve_image",
    "saliency",
    "stack_split",
    "top_patches",
    "total_variation",
    "upsample_cam",
]
