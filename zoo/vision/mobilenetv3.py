"""MobileNetV3 Small and Large (Howard et al. 2019) — torchvision's module tree and keys.

BatchNorm here uses eps 0.001 (momentum 0.01), as torchvision's; the squeeze-excitation block
squeezes to ``make_divisible(expanded / 4, 8)`` channels and gates with Hardsigmoid.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

from hubkit import nn
from hubkit.errors import ArgumentError
from hubkit.hub.registry import register_model
from hubkit.tensor import Tensor

from ._imagenet import torchvision_tag
from ._layers import (
    Conv2dNormActivation,
    SqueezeExcitation,
    adaptive_avg_pool_flatten,
    make_divisible,
)
from .backbone import Backbone, run_modules, sequential_stages, stages_by_stride

__all__ = ["InvertedResidual", "MobileNetV3", "mobilenet_v3_large", "mobilenet_v3_small"]


class BlockConfig(NamedTuple):
    input_channels: int
    kernel: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    use_hs: bool
    stride: int
    dilation: int = 1


class InvertedResidual(nn.Module):
    """[1x1 expand] -> kxk depthwise -> [SE] -> 1x1 project, residual when stride 1 and channels match."""

    def __init__(self, cnf: BlockConfig, norm_layer) -> None:
        super().__init__()
        if cnf.stride not in (1, 2):
            raise ArgumentError(f"illegal stride value {cnf.stride}")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        activation = nn.Hardswish if cnf.use_hs else nn.ReLU
        layers: list[nn.Module] = []
        if cnf.expanded_channels != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, cnf.expanded_channels, kernel_size=1,
                                               norm_layer=norm_layer, activation_layer=activation))
        stride = 1 if cnf.dilation > 1 else cnf.stride
        layers.append(Conv2dNormActivation(cnf.expanded_channels, cnf.expanded_channels, kernel_size=cnf.kernel,
                                           stride=stride, dilation=cnf.dilation, groups=cnf.expanded_channels,
                                           norm_layer=norm_layer, activation_layer=activation))
        if cnf.use_se:
            squeeze = make_divisible(cnf.expanded_channels // 4, 8)
            layers.append(SqueezeExcitation(cnf.expanded_channels, squeeze, scale_activation=nn.Hardsigmoid))
        layers.append(Conv2dNormActivation(cnf.expanded_channels, cnf.out_channels, kernel_size=1,
                                           norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = cnf.out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.use_res_connect else out


class MobileNetV3(Backbone, nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)`` logits.

    Stages: the blocks up to each stride-2 block (Large: 16, 24, 40, 112, 160 channels at 1/2 .. 1/32); the final
    1x1 conv (960 or 576 channels) ends the trunk, and the head is Linear, Hardswish, Dropout, Linear.
    """

    first_conv = "features.0.0"
    classifier_name = "classifier.3"
    head_modules = ("avgpool", "classifier")

    def __init__(self, settings: list[BlockConfig], last_channel: int, num_classes: int = 1000,
                 dropout: float = 0.2) -> None:
        super().__init__()
        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        first = settings[0].input_channels
        layers: list[nn.Module] = [
            Conv2dNormActivation(3, first, kernel_size=3, stride=2, norm_layer=norm_layer,
                                 activation_layer=nn.Hardswish)
        ]
        layers += [InvertedResidual(cnf, norm_layer) for cnf in settings]
        last_in = settings[-1].out_channels
        last_out = 6 * last_in
        layers.append(Conv2dNormActivation(last_in, last_out, kernel_size=1, norm_layer=norm_layer,
                                           activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_out, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        self.num_classes = num_classes
        self.num_features, self.head_hidden_size = last_out, last_channel
        strides = [2] + [1 if cnf.dilation > 1 else cnf.stride for cnf in settings]
        channels = [first] + [cnf.out_channels for cnf in settings]
        self._stage_ranges, self.feature_info = sequential_stages(self.features, stages_by_stride(strides, channels))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, num_features, h, w) -> (N, num_classes)``, or the ``(N, last_channel)`` pre-logits."""
        x = run_modules(list(self.classifier)[:-1])(adaptive_avg_pool_flatten(x))
        return x if pre_logits else self.classifier[-1](x)


def _settings(rows: list[tuple], width_mult: float = 1.0) -> list[BlockConfig]:
    def ch(c: int) -> int:
        return make_divisible(c * width_mult, 8)

    return [BlockConfig(ch(i), k, ch(e), ch(o), se, hs, s, d) for i, k, e, o, se, hs, s, d in rows]


# (input, kernel, expanded, output, SE, hardswish, stride, dilation)
_LARGE = [
    (16, 3, 16, 16, False, False, 1, 1),
    (16, 3, 64, 24, False, False, 2, 1),
    (24, 3, 72, 24, False, False, 1, 1),
    (24, 5, 72, 40, True, False, 2, 1),
    (40, 5, 120, 40, True, False, 1, 1),
    (40, 5, 120, 40, True, False, 1, 1),
    (40, 3, 240, 80, False, True, 2, 1),
    (80, 3, 200, 80, False, True, 1, 1),
    (80, 3, 184, 80, False, True, 1, 1),
    (80, 3, 184, 80, False, True, 1, 1),
    (80, 3, 480, 112, True, True, 1, 1),
    (112, 3, 672, 112, True, True, 1, 1),
    (112, 5, 672, 160, True, True, 2, 1),
    (160, 5, 960, 160, True, True, 1, 1),
    (160, 5, 960, 160, True, True, 1, 1),
]
_SMALL = [
    (16, 3, 16, 16, True, False, 2, 1),
    (16, 3, 72, 24, False, False, 2, 1),
    (24, 3, 88, 24, False, False, 1, 1),
    (24, 5, 96, 40, True, True, 2, 1),
    (40, 5, 240, 40, True, True, 1, 1),
    (40, 5, 240, 40, True, True, 1, 1),
    (40, 5, 120, 48, True, True, 1, 1),
    (48, 5, 144, 48, True, True, 1, 1),
    (48, 5, 288, 96, True, True, 2, 1),
    (96, 5, 576, 96, True, True, 1, 1),
    (96, 5, 576, 96, True, True, 1, 1),
]


_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#mobilenetv3-large--small"
_PAPER = "https://arxiv.org/abs/1905.02244"


@register_model(
    modality="vision", task="image-classification",
    description="MobileNetV3-Large image classifier", paper=_PAPER,
    default="IMAGENET1K_V2", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("MobileNet_V3_Large_Weights", "IMAGENET1K_V1", "mobilenet_v3_large-8738ca79.pth",
                        acc1=74.042, acc5=91.34, num_params=5483032, gflops=0.217, file_size_mb=21.114,
                        recipe=_RECIPE),
        torchvision_tag("MobileNet_V3_Large_Weights", "IMAGENET1K_V2", "mobilenet_v3_large-5c1a4163.pth",
                        acc1=75.274, acc5=92.566, num_params=5483032, gflops=0.217, file_size_mb=21.107,
                        resize_size=232,
                        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe-with-reg-tuning"),
    ),
)
def mobilenet_v3_large(**kwargs) -> MobileNetV3:
    """MobileNetV3-Large, 5.5 M parameters."""
    return MobileNetV3(_settings(_LARGE), last_channel=1280, **kwargs)


@register_model(
    modality="vision", task="image-classification",
    description="MobileNetV3-Small image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("MobileNet_V3_Small_Weights", "IMAGENET1K_V1", "mobilenet_v3_small-047dcff4.pth",
                        acc1=67.668, acc5=87.402, num_params=2542856, gflops=0.057, file_size_mb=9.829,
                        recipe=_RECIPE),
    ),
)
def mobilenet_v3_small(**kwargs) -> MobileNetV3:
    """MobileNetV3-Small, 2.5 M parameters."""
    return MobileNetV3(_settings(_SMALL), last_channel=1024, **kwargs)
