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

__all__ = [
    "LearnedPositionalEncoding",
    "MultiheadAttention",
    "SinusoidalPositionalEncoding",
    "TransformerEncoderLayer",
    "attention_with_weights",
    "causal_mask",
    "scaled_dot_product_attention",
    "sinusoidal_encoding",
]
