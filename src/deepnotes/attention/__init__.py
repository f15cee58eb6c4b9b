"""Attention and Transformers: scaled dot-product and multi-head attention, positional encodings,
the encoder block, and the vision Transformers ViT, Swin and PVT."""

from deepnotes.attention.encoder import TransformerEncoderLayer
from deepnotes.attention.functional import (
    attention_with_weights,
    causal_mask,
    scaled_dot_product_attention,
)
from deepnotes.attention.multihead import MultiheadAttention
from deepnotes.attention.positional import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    sinusoidal_encoding,
)
from deepnotes.attention.pvt import (
    PyramidVisionTransformer,
    SpatialReductionAttention,
    pvt,
    pvt_tiny,
)
from deepnotes.attention.swin import (
    PatchMerging,
    ShiftedWindowAttention,
    SwinTransformer,
    SwinTransformerBlock,
    shifted_window_attention,
    swin,
    swin_t,
)
from deepnotes.attention.vit import VisionTransformer, vit, vit_b_16

__all__ = [
    "PatchMerging",
    "PyramidVisionTransformer",
    "ShiftedWindowAttention",
    "SpatialReductionAttention",
    "SwinTransformer",
    "SwinTransformerBlock",
    "VisionTransformer",
    "pvt",
    "pvt_tiny",
    "shifted_window_attention",
    "swin",
    "swin_t",
    "vit",
    "vit_b_16",
    "LearnedPositionalEncoding",
    "MultiheadAttention",
    "SinusoidalPositionalEncoding",
    "TransformerEncoderLayer",
    "attention_with_weights",
    "causal_mask",
    "scaled_dot_product_attention",
    "sinusoidal_encoding",
]
