"""Seeing inside CNNs: filters, features, activations, occlusion, saliency, guided backprop, Grad-CAM, class models."""

from deepnotes.explain.grad_cam import cam_overlay, grad_cam, last_conv_name, upsample_cam
from deepnotes.explain.guided_backprop import guided_backprop
from deepnotes.explain.occlusion import occlusion, occlusion_masks
from deepnotes.explain.saliency import channel_max, input_gradient, saliency

__all__ = [
    "cam_overlay",
    "channel_max",
    "grad_cam",
    "guided_backprop",
    "input_gradient",
    "last_conv_name",
    "occlusion",
    "occlusion_masks",
    "saliency",
    "upsample_cam",
]
