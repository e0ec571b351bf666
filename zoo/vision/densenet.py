"""DenseNet-121 (Huang et al. 2016) — torchvision's module tree and keys (``features.denseblock1.denselayer1``).

Old checkpoints name the layers inside a dense layer ``norm.1`` / ``conv.2`` instead of ``norm1`` /
``conv2``; ``remap_legacy_keys`` (the registry's key-mapping hook) rewrites them before a strict load.
"""

from __future__ import annotations

import re

import hubkit
from hubkit import nn
from hubkit.hub.registry import register_model
from hubkit.nn import functional as F
from hubkit.tensor import Tensor

from ._imagenet import torchvision_tag
from .backbone import Backbone, Stage, sequential_stages

__all__ = ["DenseNet", "densenet121", "remap_legacy_keys"]

_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def remap_legacy_keys(state_dict: dict) -> dict:
    """``...denselayer3.norm.1.weight`` -> ``...denselayer3.norm1.weight``; other keys unchanged, order kept."""
    out = {}
    for key, value in state_dict.items():
        m = _LEGACY_KEY.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out


class _DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (to ``bn_size * growth_rate``) - BN-ReLU-3x3 conv (to ``growth_rate``) on the concat input."""

    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        x = hubkit.cat(inputs, 1)
        x = self.conv1(self.relu1(self.norm1(x)))
        x = self.conv2(self.relu2(self.norm2(x)))
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x


class _DenseBlock(nn.Module):
    """``num_layers`` dense layers, each seeing all earlier outputs: ``(N, C, H, W) -> (N, C + L*growth, H, W)``."""

    def __init__(self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int,
                 drop_rate: float) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, init_features: Tensor) -> Tensor:
        features = [init_features]
        for layer in self.children():
            features.append(layer(features))
        return hubkit.cat(features, 1)


class _Transition(nn.Sequential):
    """BN-ReLU-1x1 conv-2x2 avg pool: halves channels and resolution."""

    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(num_input_features))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1,
                                          bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNet(Backbone, nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)`` logits; H, W >= 29.

    Stages: the stem (``features.relu0``, 1/2 size), then each dense block at its full width (its transition
    belongs to the next stage), the last one followed by ``norm5`` and the final ReLU (1/32).
    """

    first_conv = "features.conv0"
    classifier_name = "classifier"
    head_modules = ("classifier",)

    def __init__(self, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, drop_rate: float = 0.0,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3,
                                                    bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(num_init_features))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        num_features = num_init_features
        stages = [(0, 3, num_init_features, 2)]  # (first, last + 1 block of features, channels, reduction)
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(num_layers, num_features, bn_size, growth_rate, drop_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            num_features += num_layers * growth_rate
            # a stage starts where the last one ended: with the max pool or the transition before its block
            stages.append((stages[-1][1], len(self.features), num_features, 4 * 2**i))
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(num_features, num_features // 2))
                num_features //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        stages[-1] = (*stages[-1][:1], len(self.features), *stages[-1][2:])
        self._stage_ranges, self.feature_info = sequential_stages(self.features, stages)
        self.classifier = nn.Linear(num_features, num_classes)
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = num_features

    def _stages(self) -> list[Stage]:
        stages = super()._stages()
        last = stages[-1]
        return [*stages[:-1], lambda x: F.relu(last(x))]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, num_features, h, w) -> (N, num_classes)``, or the pooled ``(N, num_features)`` with ``pre_logits``."""
        x = F.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        return x if pre_logits else self.classifier(x)


@register_model(
    modality="vision", task="image-classification",
    description="DenseNet-121 image classifier", paper="https://arxiv.org/abs/1608.06993",
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1", key_map=remap_legacy_keys,
    weights=(
        torchvision_tag("DenseNet121_Weights", "IMAGENET1K_V1", "densenet121-a639ec97.pth", acc1=74.434,
                        acc5=91.972, num_params=7978856, gflops=2.834, file_size_mb=30.845, min_size=(29, 29),
                        recipe="https://github.com/pytorch/vision/pull/116"),
    ),
)
def densenet121(**kwargs) -> DenseNet:
    """DenseNet-121: growth 32, blocks (6, 12, 24, 16), 8.0 M parameters."""
    return DenseNet(32, (6, 12, 24, 16), 64, **kwargs)
