"""Vision Transformer ViT-B/16 (Dosovitskiy et al. 2020) — torchvision's module tree and keys.

Keys: ``conv_proj``, ``class_token``, ``encoder.pos_embedding``,
``encoder.layers.encoder_layer_<i>.{ln_1, self_attention, ln_2, mlp.0, mlp.3}``, ``encoder.ln``,
``heads.head``. LayerNorm eps 1e-6; exact (erf) GELU.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import hubkit
from hubkit import nn
from hubkit.errors import ArgumentError, ShapeError
from hubkit.hub.registry import register_model
from hubkit.tensor import Tensor

from ._imagenet import torchvision_tag
from .backbone import Backbone, FeatureInfo, feature_take_indices

__all__ = ["Encoder", "EncoderBlock", "VisionTransformer", "vit_b_16"]


class MLPBlock(nn.Sequential):
    """Linear(hidden, mlp) - GELU - Dropout - Linear(mlp, hidden) - Dropout, keys ``0`` and ``3``."""

    def __init__(self, in_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__(nn.Linear(in_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, in_dim),
                         nn.Dropout(dropout))


class EncoderBlock(nn.Module):
    """Pre-LN transformer block: ``(N, S, hidden) -> (N, S, hidden)``."""

    def __init__(self, num_heads: int, hidden_dim: int, mlp_dim: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.ln_1 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(hidden_dim, num_heads, dropout=attention_dropout,
                                                    batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.mlp = MLPBlock(hidden_dim, mlp_dim, dropout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = self.dropout(y) + x
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """Learned position embedding, ``num_layers`` blocks, final LayerNorm: ``(N, S, hidden) -> (N, S, hidden)``."""

    def __init__(self, seq_length: int, num_layers: int, num_heads: int, hidden_dim: int, mlp_dim: int,
                 dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(hubkit.randn(1, seq_length, hidden_dim) * 0.02)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential()
        for i in range(num_layers):
            self.layers.add_module(f"encoder_layer_{i}",
                                   EncoderBlock(num_heads, hidden_dim, mlp_dim, dropout, attention_dropout))
        self.ln = nn.LayerNorm(hidden_dim, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(Backbone, nn.Module):
    """``(N, 3, image_size, image_size) -> (N, num_classes)``; the input size is fixed by the position embedding.

    ``forward_features`` gives the normalised tokens ``(N, 1 + (image_size / patch_size)**2, hidden_dim)``, class
    token first; the stages are the encoder blocks, whose feature maps are their patch tokens laid out on the
    patch grid, ``(N, hidden_dim, image_size / patch_size, image_size / patch_size)``.
    """

    first_conv = "conv_proj"
    classifier_name = "heads.head"
    head_modules = ("heads",)
    fixed_input_size = True

    def __init__(self, image_size: int, patch_size: int, num_layers: int, num_heads: int, hidden_dim: int,
                 mlp_dim: int, dropout: float = 0.0, attention_dropout: float = 0.0, num_classes: int = 1000) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ArgumentError(f"image_size {image_size} is not divisible by patch_size {patch_size}")
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.conv_proj = nn.Conv2d(3, hidden_dim, kernel_size=patch_size, stride=patch_size)
        seq_length = (image_size // patch_size) ** 2 + 1
        self.class_token = nn.Parameter(hubkit.zeros(1, 1, hidden_dim))
        self.encoder = Encoder(seq_length, num_layers, num_heads, hidden_dim, mlp_dim, dropout, attention_dropout)
        self.seq_length = seq_length
        self.heads = nn.Sequential()
        self.heads.add_module("head", nn.Linear(hidden_dim, num_classes))
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = hidden_dim
        self.default_input_size = (3, image_size, image_size)
        self.feature_info = FeatureInfo([{"num_chs": hidden_dim, "reduction": patch_size,
                                          "module": f"encoder.layers.encoder_layer_{i}"} for i in range(num_layers)])
        fan_in = 3 * patch_size * patch_size
        nn.init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.conv_proj.bias)

    def _process_input(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        if h != self.image_size or w != self.image_size:
            raise ShapeError(
                f"ViT expected input of {self.image_size}x{self.image_size} pixels, got {h}x{w}; resize and crop "
                f"with the weights' transforms(), or build the model with another image_size (a multiple of "
                f"{self.patch_size})"
            )
        x = self.conv_proj(x)  # (N, hidden, H/p, W/p)
        return x.reshape(n, self.hidden_dim, -1).permute(0, 2, 1)

    def _tokens(self, x: Tensor) -> Tensor:
        x = self._process_input(x)
        return hubkit.cat([self.class_token.expand(x.shape[0], -1, -1), x], 1)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.encoder(self._tokens(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, S, hidden_dim) -> (N, num_classes)`` from the class token, or that token with ``pre_logits``."""
        x = x[:, 0]
        return x if pre_logits else self.heads(x)

    def forward_intermediates(self, x: Tensor, indices: int | Iterable[int] | None = None) -> list[Tensor]:
        take = feature_take_indices(len(self.feature_info), indices)
        n, grid = x.shape[0], self.image_size // self.patch_size
        x = self.encoder.dropout(self._tokens(x) + self.encoder.pos_embedding)
        out = []
        for i, block in enumerate(list(self.encoder.layers)[: take[-1] + 1]):
            x = block(x)
            if i in take:
                out.append(x[:, 1:].reshape(n, grid, grid, self.hidden_dim).permute(0, 3, 1, 2))
        return out


_SWAG_LICENSE = "CC-BY-NC-4.0 (https://github.com/facebookresearch/SWAG/blob/main/LICENSE)"


@register_model(
    modality="vision", task="image-classification",
    description="Vision Transformer B/16 image classifier", paper="https://arxiv.org/abs/2010.11929",
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ViT_B_16_Weights", "IMAGENET1K_V1", "vit_b_16-c867db91.pth", acc1=81.072, acc5=95.318,
                        num_params=86567656, gflops=17.564, file_size_mb=330.285, min_size=(224, 224),
                        recipe="https://github.com/pytorch/vision/tree/main/references/classification#vit_b_16"),
        torchvision_tag("ViT_B_16_Weights", "IMAGENET1K_SWAG_E2E_V1", "vit_b_16_swag-9ac1b537.pth", acc1=85.304,
                        acc5=97.65, num_params=86859496, gflops=55.484, file_size_mb=331.398, resize_size=384,
                        crop_size=384, interpolation="bicubic", min_size=(384, 384),
                        recipe="https://github.com/facebookresearch/SWAG", license=_SWAG_LICENSE,
                        model_kwargs={"image_size": 384}),
        torchvision_tag("ViT_B_16_Weights", "IMAGENET1K_SWAG_LINEAR_V1", "vit_b_16_lc_swag-4e70ced5.pth",
                        acc1=81.886, acc5=96.18, num_params=86567656, gflops=17.564, file_size_mb=330.285,
                        resize_size=224, crop_size=224, interpolation="bicubic", min_size=(224, 224),
                        recipe="https://github.com/pytorch/vision/pull/5793", license=_SWAG_LICENSE),
    ),
)
def vit_b_16(*, image_size: int = 224, **kwargs) -> VisionTransformer:
    """ViT-B/16: 12 layers, 12 heads, hidden 768, MLP 3072; 86.6 M parameters at 224 px."""
    return VisionTransformer(image_size=image_size, patch_size=16, num_layers=12, num_heads=12, hidden_dim=768,
                             mlp_dim=3072, **kwargs)
