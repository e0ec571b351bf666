"""EfficientNet-B0 (Tan & Le 2019) — torchvision's module tree and keys (``features.<stage>.<block>.block.<j>``).

Stochastic depth is a training-time regularizer; at inference it is the identity, and it has no
parameters, so the module tree keeps torchvision's keys without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import hubkit
from hubkit import nn
from hubkit.errors import ArgumentError
from hubkit.hub.registry import WeightTag, register_model
from hubkit.tensor import Tensor

from ._imagenet import old_file, torchvision_tag
from ._layers import (
    Conv2dNormActivation,
    SqueezeExcitation,
    adaptive_avg_pool_flatten,
    make_divisible,
)
from .backbone import Backbone, run_modules, sequential_stages, stages_by_stride

__all__ = ["MBConv", "EfficientNet", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
           "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7"]


class MBConfig(NamedTuple):
    expand_ratio: float
    kernel: int
    stride: int
    input_channels: int
    out_channels: int
    num_layers: int


class StochasticDepth(nn.Module):
    """Drops the residual branch per sample with probability ``p`` in training; identity in eval."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1) if self.mode == "row" else (1,) * x.ndim
        keep = (hubkit.rand(*shape, device=x.device) < survival).float()
        return x * keep / survival

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class MBConv(nn.Module):
    """[1x1 expand] -> kxk depthwise -> SE -> 1x1 project (+ residual): ``(N, in, H, W) -> (N, out, H/s, W/s)``."""

    def __init__(
        self, cnf: MBConfig, stochastic_depth_prob: float, norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d
    ) -> None:
        super().__init__()
        if cnf.stride not in (1, 2):
            raise ArgumentError(f"illegal stride value {cnf.stride}")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        layers: list[nn.Module] = []
        expanded = make_divisible(cnf.input_channels * cnf.expand_ratio, 8)
        if expanded != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, expanded, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=nn.SiLU))  # fmt: skip
        layers.append(Conv2dNormActivation(expanded, expanded, kernel_size=cnf.kernel, stride=cnf.stride,
                                           groups=expanded, norm_layer=norm_layer, activation_layer=nn.SiLU))
        layers.append(SqueezeExcitation(expanded, max(1, cnf.input_channels // 4), activation=nn.SiLU))
        layers.append(Conv2dNormActivation(expanded, cnf.out_channels, kernel_size=1, norm_layer=norm_layer,
                                           activation_layer=None))  # fmt: skip
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = cnf.out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = self.stochastic_depth(out) + x
        return out


class EfficientNet(Backbone, nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)`` logits.

    Stages: the MBConv stages up to each stride-2 stage (B0: 16, 24, 40, 112, 320 channels at 1/2 .. 1/32); the
    final 1x1 conv (4x the last stage's width) ends the trunk.
    """

    first_conv = "features.0.0"
    classifier_name = "classifier.1"
    head_modules = ("avgpool", "classifier")

    def __init__(self, settings: list[MBConfig], dropout: float, stochastic_depth_prob: float = 0.2,
                 num_classes: int = 1000, last_channel: int | None = None,
                 norm_layer: Callable[..., nn.Module] | None = None) -> None:  # fmt: skip
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        layers: list[nn.Module] = [
            Conv2dNormActivation(3, settings[0].input_channels, kernel_size=3, stride=2, norm_layer=norm_layer,
                                 activation_layer=nn.SiLU)  # fmt: skip
        ]
        total_blocks = sum(cnf.num_layers for cnf in settings)
        stage_block_id = 0
        for cnf in settings:
            stage: list[nn.Module] = []
            for i in range(cnf.num_layers):
                block_cnf = cnf if i == 0 else cnf._replace(input_channels=cnf.out_channels, stride=1)
                sd_prob = stochastic_depth_prob * float(stage_block_id) / total_blocks
                stage.append(MBConv(block_cnf, sd_prob, norm_layer))
                stage_block_id += 1
            layers.append(nn.Sequential(*stage))
        last_in = settings[-1].out_channels
        last_out = last_channel if last_channel is not None else 4 * last_in
        layers.append(Conv2dNormActivation(last_in, last_out, kernel_size=1, norm_layer=norm_layer,
                                           activation_layer=nn.SiLU))  # fmt: skip
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(last_out, num_classes))
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = last_out
        strides = [2] + [cnf.stride for cnf in settings]
        channels = [settings[0].input_channels] + [cnf.out_channels for cnf in settings]
        self._stage_ranges, self.feature_info = sequential_stages(self.features, stages_by_stride(strides, channels))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, num_features, h, w) -> (N, num_classes)``, or the pooled ``(N, num_features)`` (after dropout)."""
        x = run_modules(list(self.classifier)[:-1])(adaptive_avg_pool_flatten(x))
        return x if pre_logits else self.classifier[-1](x)


def _b_settings(width_mult: float, depth_mult: float) -> list[MBConfig]:
    rows = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
            (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
    return [
        MBConfig(e, k, s, make_divisible(i * width_mult, 8), make_divisible(o * width_mult, 8),
                 int(math.ceil(n * depth_mult)))
        for e, k, s, i, o, n in rows
    ]


_PAPER = "https://arxiv.org/abs/1905.11946"
_V1 = "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1"


@register_model(
    modality="vision", task="image-classification", description="EfficientNet-B0 image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("EfficientNet_B0_Weights", "IMAGENET1K_V1", "efficientnet_b0_rwightman-7f5810bc.pth",
                        acc1=77.692, acc5=93.532, num_params=5288548, gflops=0.386, file_size_mb=20.451,
                        interpolation="bicubic", recipe=_V1,
                        aliases=(old_file("efficientnet_b0_rwightman-3dd342df.pth", hashed=False,
                                          note="renamed in torchvision 0.16: its name's hex is not its sha256 prefix "
                                               "(pytorch/vision#8036)"),)),
    ),
)
def efficientnet_b0(**kwargs) -> EfficientNet:
    """EfficientNet-B0 (width 1.0, depth 1.0, dropout 0.2), 5.3 M parameters."""
    kwargs.setdefault("dropout", 0.2)
    return EfficientNet(_b_settings(1.0, 1.0), **kwargs)


# Width and depth multipliers, dropout, and whether the BatchNorms use TF's eps=1e-3 (B5-B7, ported from TF by
# lukemelas) — torchvision's efficientnet_b<i> builders.
_VARIANTS = {
    1: (1.0, 1.1, 0.2, False), 2: (1.1, 1.2, 0.3, False), 3: (1.2, 1.4, 0.3, False), 4: (1.4, 1.8, 0.4, False),
    5: (1.6, 2.2, 0.4, True), 6: (1.8, 2.6, 0.5, True), 7: (2.0, 3.1, 0.5, True),
}


def _variant(index: int, **kwargs) -> EfficientNet:
    width, depth, dropout, tf_eps = _VARIANTS[index]
    kwargs.setdefault("dropout", dropout)
    if tf_eps:
        kwargs.setdefault("norm_layer", partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01))
    return EfficientNet(_b_settings(width, depth), **kwargs)


# B1-B7's IMAGENET1K_V1 weights: file, acc@1, acc@5, params, GFLOPS, MB, resize, crop
_B_WEIGHTS = {
    1: ("efficientnet_b1_rwightman-bac287d4.pth", 78.642, 94.186, 7794184, 0.687, 30.134, 256, 240),
    2: ("efficientnet_b2_rwightman-c35c1473.pth", 80.608, 95.31, 9109994, 1.088, 35.174, 288, 288),
    3: ("efficientnet_b3_rwightman-b3899882.pth", 82.008, 96.054, 12233232, 1.827, 47.184, 320, 300),
    4: ("efficientnet_b4_rwightman-23ab8bcd.pth", 83.384, 96.594, 19341616, 4.394, 74.489, 384, 380),
    5: ("efficientnet_b5_lukemelas-1a07897c.pth", 83.444, 96.628, 30389784, 10.266, 116.864, 456, 456),
    6: ("efficientnet_b6_lukemelas-24a108a5.pth", 84.008, 96.916, 43040704, 19.068, 165.362, 528, 528),
    7: ("efficientnet_b7_lukemelas-c5b4e57e.pth", 84.122, 96.908, 66347960, 37.746, 254.675, 600, 600),
}


def _v1_tag(index: int) -> WeightTag:
    file, acc1, acc5, params, gflops, mb, resize, crop = _B_WEIGHTS[index]
    return torchvision_tag(f"EfficientNet_B{index}_Weights", "IMAGENET1K_V1", file, acc1=acc1, acc5=acc5,
                           num_params=params, gflops=gflops, file_size_mb=mb, resize_size=resize, crop_size=crop,
                           interpolation="bicubic", recipe=_V1)


@register_model(
    modality="vision", task="image-classification", description="EfficientNet-B1 image classifier", paper=_PAPER,
    default="IMAGENET1K_V2", legacy_default="IMAGENET1K_V1",
    weights=(
        _v1_tag(1),
        torchvision_tag("EfficientNet_B1_Weights", "IMAGENET1K_V2", "efficientnet_b1-c27df63c.pth", acc1=79.838,
                        acc5=94.934, num_params=7794184, gflops=0.687, file_size_mb=30.136, resize_size=255,
                        crop_size=240,
                        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe-with-lr-wd-crop-tuning"),
    ),
)
def efficientnet_b1(**kwargs) -> EfficientNet:
    """EfficientNet-B1 (width 1.0, depth 1.1), 7.8 M parameters, 240 px."""
    return _variant(1, **kwargs)


@register_model(
    modality="vision", task="image-classification", description="EfficientNet-B2 image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1", weights=(_v1_tag(2),),
)
def efficientnet_b2(**kwargs) -> EfficientNet:
    """EfficientNet-B2 (width 1.1, depth 1.2), 9.1 M parameters, 288 px."""
    return _variant(2, **kwargs)


@register_model(
    modality="vision", task="image-classification", description="EfficientNet-B3 image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1", weights=(_v1_tag(3),),
)
def efficientnet_b3(**kwargs) -> EfficientNet:
    """EfficientNet-B3 (width 1.2, depth 1.4), 12.2 M parameters, 300 px."""
    return _variant(3, **kwargs)


@register_model(
    modality="vision", task="image-classification", description="EfficientNet-B4 image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1", weights=(_v1_tag(4),),
)
def efficientnet_b4(**kwargs) -> EfficientNet:
    """EfficientNet-B4 (width 1.4, depth 1.8), 19.3 M parameters, 380 px."""
    return _variant(4, **kwargs)


@register_model(
    modality="vision", task="image-classification", description="EfficientNet-B5 image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1", weights=(_v1_tag(5),),
)
def efficientnet_b5(**kwargs) -> EfficientNet:
    """EfficientNet-B5 (width 1.6, depth 2.2, BatchNorm eps 1e-3), 30.4 M parameters, 456 px."""
    return _variant(5, **kwargs)


@register_model(
    modality="vision", task="image-classification", description="EfficientNet-B6 image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1", weights=(_v1_tag(6),),
)
def efficientnet_b6(**kwargs) -> EfficientNet:
    """EfficientNet-B6 (width 1.8, depth 2.6, BatchNorm eps 1e-3), 43.0 M parameters, 528 px."""
    return _variant(6, **kwargs)


@register_model(
    modality="vision", task="image-classification", description="EfficientNet-B7 image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1", weights=(_v1_tag(7),),
)
def efficientnet_b7(**kwargs) -> EfficientNet:
    """EfficientNet-B7 (width 2.0, depth 3.1, BatchNorm eps 1e-3), 66.3 M parameters, 600 px."""
    return _variant(7, **kwargs)
