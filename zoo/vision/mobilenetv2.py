"""MobileNetV2 (Sandler et al. 2018) — torchvision's module tree and keys (``features.<i>.conv.<j>``)."""

from __future__ import annotations

from hubkit import nn
from hubkit.errors import ArgumentError
from hubkit.hub.registry import register_model
from hubkit.tensor import Tensor

from ._imagenet import torchvision_tag
from ._layers import Conv2dNormActivation, adaptive_avg_pool_flatten, make_divisible
from .backbone import Backbone, run_modules, sequential_stages, stages_by_stride

__all__ = ["InvertedResidual", "MobileNetV2", "mobilenet_v2"]


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear projection; residual when shapes allow.

    ``(N, inp, H, W) -> (N, oup, H/stride, W/stride)``.
    """

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ArgumentError(f"stride should be 1 or 2, got {stride}")
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, activation_layer=nn.ReLU6))
        layers += [
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim, activation_layer=nn.ReLU6),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(Backbone, nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)`` logits.

    Stages: the blocks up to each stride-2 block (16, 24, 32, 96, 320 channels at 1/2 .. 1/32); the final 1x1
    conv to 1280 channels ends the trunk.
    """

    first_conv = "features.0.0"
    classifier_name = "classifier.1"
    head_modules = ("classifier",)

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, round_nearest: int = 8,
                 dropout: float = 0.2) -> None:
        super().__init__()
        input_channel = 32
        last_channel = 1280
        settings = [  # t (expansion), c (channels), n (repeats), s (first stride)
            [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
        ]
        input_channel = make_divisible(input_channel * width_mult, round_nearest)
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [
            Conv2dNormActivation(3, input_channel, stride=2, activation_layer=nn.ReLU6)
        ]
        strides, channels = [2], [input_channel]
        for t, c, n, s in settings:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, expand_ratio=t))
                strides.append(s if i == 0 else 1)
                channels.append(output_channel)
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1,
                                             activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = self.last_channel
        self._stage_ranges, self.feature_info = sequential_stages(self.features, stages_by_stride(strides, channels))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, 1280, h, w) -> (N, num_classes)``, or the pooled ``(N, 1280)`` (after dropout) with ``pre_logits``."""
        x = run_modules(list(self.classifier)[:-1])(adaptive_avg_pool_flatten(x))
        return x if pre_logits else self.classifier[-1](x)


@register_model(
    modality="vision", task="image-classification",
    description="MobileNetV2 image classifier", paper="https://arxiv.org/abs/1801.04381",
    default="IMAGENET1K_V2", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("MobileNet_V2_Weights", "IMAGENET1K_V1", "mobilenet_v2-b0353104.pth", acc1=71.878,
                        acc5=90.286, num_params=3504872, gflops=0.301, file_size_mb=13.555,
                        recipe="https://github.com/pytorch/vision/tree/main/references/classification#mobilenetv2"),
        torchvision_tag("MobileNet_V2_Weights", "IMAGENET1K_V2", "mobilenet_v2-7ebf99e0.pth", acc1=72.154,
                        acc5=90.822, num_params=3504872, gflops=0.301, file_size_mb=13.598, resize_size=232,
                        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe-with-reg-tuning"),
    ),
)
def mobilenet_v2(**kwargs) -> MobileNetV2:
    """MobileNetV2 at width 1.0, 3.5 M parameters."""
    return MobileNetV2(**kwargs)
