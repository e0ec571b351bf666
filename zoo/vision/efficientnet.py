"""EfficientNet-B0 (Tan & Le 2019) — torchvision's module tree and keys (``features.<stage>.<block>.block.<j>``).

Stochastic depth is a training-time regularizer; at inference it is the identity, and it has no
parameters, so the module tree keeps torchvision's keys without it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import hubkit
from hubkit import nn
from hubkit.errors import ArgumentError
from hubkit.hub.registry import ModelEntry, register
from hubkit.tensor import Tensor

from ._imagenet import old_file, torchvision_tag
from ._layers import (
    Conv2dNormActivation,
    SqueezeExcitation,
    adaptive_avg_pool_flatten,
    make_divisible,
)

__all__ = ["MBConv", "EfficientNet", "efficientnet_b0"]


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
        keep = (hubkit.rand(*shape) < survival).float()
        return x * keep / survival

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class MBConv(nn.Module):
    """[1x1 expand] -> kxk depthwise -> SE -> 1x1 project (+ residual): ``(N, in, H, W) -> (N, out, H/s, W/s)``."""

    def __init__(self, cnf: MBConfig, stochastic_depth_prob: float) -> None:
        super().__init__()
        if cnf.stride not in (1, 2):
            raise ArgumentError(f"illegal stride value {cnf.stride}")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        layers: list[nn.Module] = []
        expanded = make_divisible(cnf.input_channels * cnf.expand_ratio, 8)
        if expanded != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, expanded, kernel_size=1, activation_layer=nn.SiLU))
        layers.append(Conv2dNormActivation(expanded, expanded, kernel_size=cnf.kernel, stride=cnf.stride,
                                           groups=expanded, activation_layer=nn.SiLU))
        layers.append(SqueezeExcitation(expanded, max(1, cnf.input_channels // 4), activation=nn.SiLU))
        layers.append(Conv2dNormActivation(expanded, cnf.out_channels, kernel_size=1, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = cnf.out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = self.stochastic_depth(out) + x
        return out


class EfficientNet(nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)`` logits."""

    def __init__(self, settings: list[MBConfig], dropout: float, stochastic_depth_prob: float = 0.2,
                 num_classes: int = 1000, last_channel: int | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            Conv2dNormActivation(3, settings[0].input_channels, kernel_size=3, stride=2, activation_layer=nn.SiLU)
        ]
        total_blocks = sum(cnf.num_layers for cnf in settings)
        stage_block_id = 0
        for cnf in settings:
            stage: list[nn.Module] = []
            for i in range(cnf.num_layers):
                block_cnf = cnf if i == 0 else cnf._replace(input_channels=cnf.out_channels, stride=1)
                sd_prob = stochastic_depth_prob * float(stage_block_id) / total_blocks
                stage.append(MBConv(block_cnf, sd_prob))
                stage_block_id += 1
            layers.append(nn.Sequential(*stage))
        last_in = settings[-1].out_channels
        last_out = last_channel if last_channel is not None else 4 * last_in
        layers.append(Conv2dNormActivation(last_in, last_out, kernel_size=1, activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(last_out, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(adaptive_avg_pool_flatten(self.features(x)))


def _b_settings(width_mult: float, depth_mult: float) -> list[MBConfig]:
    rows = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
            (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
    return [
        MBConfig(e, k, s, make_divisible(i * width_mult, 8), make_divisible(o * width_mult, 8),
                 int(math.ceil(n * depth_mult)))
        for e, k, s, i, o, n in rows
    ]


def efficientnet_b0(**kwargs) -> EfficientNet:
    """EfficientNet-B0 (width 1.0, depth 1.0, dropout 0.2), 5.3 M parameters."""
    kwargs.setdefault("dropout", 0.2)
    return EfficientNet(_b_settings(1.0, 1.0), **kwargs)


register(ModelEntry(
    name="efficientnet_b0", builder=efficientnet_b0, modality="vision", task="image-classification",
    description="EfficientNet-B0 image classifier", paper="https://arxiv.org/abs/1905.11946",
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("EfficientNet_B0_Weights", "IMAGENET1K_V1", "efficientnet_b0_rwightman-7f5810bc.pth",
                        acc1=77.692, acc5=93.532, num_params=5288548, gflops=0.386, file_size_mb=20.451,
                        interpolation="bicubic",
                        recipe="https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1",
                        aliases=(old_file("efficientnet_b0_rwightman-3dd342df.pth", hashed=False,
                                          note="renamed in torchvision 0.16: its name's hex is not its sha256 prefix "
                                               "(pytorch/vision#8036)"),)),
    ),
))
