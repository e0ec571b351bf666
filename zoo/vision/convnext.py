"""ConvNeXt (Liu et al. 2022) — torchvision's module tree and keys.

Keys: ``features.0.{0,1}`` (4x4/4 patchify conv + LayerNorm2d), stages ``features.{1,3,5,7}.<i>.block.{0,2,3,5}``
(7x7 depthwise conv, LayerNorm, Linear 4x, Linear back) with ``layer_scale``, downsampling
``features.{2,4,6}.{0,1}`` (LayerNorm2d + 2x2/2 conv), ``classifier.{0,2}`` (LayerNorm2d, Linear). LayerNorm
eps 1e-6, exact (erf) GELU.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import hubkit
import hubkit.nn.functional as F
from hubkit import nn
from hubkit.errors import ArgumentError
from hubkit.hub.registry import register_model
from hubkit.tensor import Tensor

from ._imagenet import torchvision_tag
from .backbone import Backbone, run_modules, sequential_stages, stages_by_stride
from .efficientnet import StochasticDepth

__all__ = ["CNBlock", "ConvNeXt", "LayerNorm2d", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) tensor (at every position)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class Permute(nn.Module):
    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={list(self.dims)}"


class CNBlock(nn.Module):
    """7x7 depthwise conv -> LayerNorm -> Linear(4C) -> GELU -> Linear(C), scaled by ``layer_scale``, + residual."""

    def __init__(self, dim: int, layer_scale: float, stochastic_depth_prob: float) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute((0, 2, 3, 1)),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute((0, 3, 1, 2)),
        )
        self.layer_scale = nn.Parameter(hubkit.full((dim, 1, 1), layer_scale))
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, x: Tensor) -> Tensor:
        return self.stochastic_depth(self.layer_scale * self.block(x)) + x


class StageConfig(NamedTuple):
    channels: int
    out_channels: int | None  # None: the last stage, no downsampling after it
    num_layers: int


class ConvNeXt(Backbone, nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)`` logits; H and W at least 32.

    Stages: the patchify stem with stage 1 (1/4 size), then each downsampling layer with its stage (1/8, 1/16,
    1/32); the head is LayerNorm2d, Flatten, Linear.
    """

    first_conv = "features.0.0"
    classifier_name = "classifier.2"
    head_modules = ("avgpool", "classifier")

    def __init__(self, stages: list[StageConfig], stochastic_depth_prob: float = 0.0, layer_scale: float = 1e-6,
                 num_classes: int = 1000) -> None:  # fmt: skip
        super().__init__()
        if not stages:
            raise ArgumentError("ConvNeXt needs at least one stage")
        first = stages[0].channels
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, first, kernel_size=4, stride=4), LayerNorm2d(first,
                                                                                                       eps=1e-6))]
        total = sum(s.num_layers for s in stages)
        block_id = 0
        strides, channels = [4], [first]
        for stage in stages:
            blocks = []
            for _ in range(stage.num_layers):
                sd_prob = stochastic_depth_prob * block_id / max(total - 1.0, 1.0)
                blocks.append(CNBlock(stage.channels, layer_scale, sd_prob))
                block_id += 1
            layers.append(nn.Sequential(*blocks))
            strides.append(1)
            channels.append(stage.channels)
            if stage.out_channels is not None:
                layers.append(nn.Sequential(LayerNorm2d(stage.channels, eps=1e-6),
                                            nn.Conv2d(stage.channels, stage.out_channels, kernel_size=2, stride=2)))
                strides.append(2)
                channels.append(stage.out_channels)
        self.features = nn.Sequential(*layers)
        self._stage_ranges, self.feature_info = sequential_stages(self.features, stages_by_stride(strides, channels))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last = stages[-1].out_channels or stages[-1].channels
        self.classifier = nn.Sequential(LayerNorm2d(last, eps=1e-6), nn.Flatten(1), nn.Linear(last, num_classes))
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = last
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, num_features, h, w) -> (N, num_classes)``, or the pooled, normalised ``(N, num_features)``."""
        x = run_modules(list(self.classifier)[:-1])(self.avgpool(x))
        return x if pre_logits else self.classifier[-1](x)


def _stages(widths: tuple[int, int, int, int], depths: tuple[int, int, int, int]) -> list[StageConfig]:
    outs = (*widths[1:], None)
    return [StageConfig(w, o, d) for w, o, d in zip(widths, outs, depths)]


_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#convnext"
_PAPER = "https://arxiv.org/abs/2201.03545"


@register_model(
    modality="vision", task="image-classification", description="ConvNeXt-T image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ConvNeXt_Tiny_Weights", "IMAGENET1K_V1", "convnext_tiny-983f1562.pth",
                        acc1=82.52, acc5=96.146, num_params=28589128, gflops=4.456, file_size_mb=109.119,
                        resize_size=236, min_size=(32, 32), recipe=_RECIPE),
    ),
)
def convnext_tiny(**kwargs: Any) -> ConvNeXt:
    """ConvNeXt-T: widths 96-768, depths 3-3-9-3, 28.6 M parameters."""
    kwargs.setdefault("stochastic_depth_prob", 0.1)
    return ConvNeXt(_stages((96, 192, 384, 768), (3, 3, 9, 3)), **kwargs)


@register_model(
    modality="vision", task="image-classification", description="ConvNeXt-S image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ConvNeXt_Small_Weights", "IMAGENET1K_V1", "convnext_small-0c510722.pth",
                        acc1=83.616, acc5=96.65, num_params=50223688, gflops=8.684, file_size_mb=191.703,
                        resize_size=230, min_size=(32, 32), recipe=_RECIPE),
    ),
)
def convnext_small(**kwargs: Any) -> ConvNeXt:
    """ConvNeXt-S: widths 96-768, depths 3-3-27-3, 50.2 M parameters."""
    kwargs.setdefault("stochastic_depth_prob", 0.4)
    return ConvNeXt(_stages((96, 192, 384, 768), (3, 3, 27, 3)), **kwargs)


@register_model(
    modality="vision", task="image-classification", description="ConvNeXt-B image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ConvNeXt_Base_Weights", "IMAGENET1K_V1", "convnext_base-6075fbad.pth",
                        acc1=84.062, acc5=96.87, num_params=88591464, gflops=15.355, file_size_mb=338.064,
                        resize_size=232, min_size=(32, 32), recipe=_RECIPE),
    ),
)
def convnext_base(**kwargs: Any) -> ConvNeXt:
    """ConvNeXt-B: widths 128-1024, depths 3-3-27-3, 88.6 M parameters."""
    kwargs.setdefault("stochastic_depth_prob", 0.5)
    return ConvNeXt(_stages((128, 256, 512, 1024), (3, 3, 27, 3)), **kwargs)


@register_model(
    modality="vision", task="image-classification", description="ConvNeXt-L image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ConvNeXt_Large_Weights", "IMAGENET1K_V1", "convnext_large-ea097f82.pth",
                        acc1=84.414, acc5=96.976, num_params=197767336, gflops=34.361, file_size_mb=754.537,
                        resize_size=232, min_size=(32, 32), recipe=_RECIPE),
    ),
)
def convnext_large(**kwargs: Any) -> ConvNeXt:
    """ConvNeXt-L: widths 192-1536, depths 3-3-27-3, 197.8 M parameters."""
    kwargs.setdefault("stochastic_depth_prob", 0.5)
    return ConvNeXt(_stages((192, 384, 768, 1536), (3, 3, 27, 3)), **kwargs)
