"""ShuffleNetV2 (Ma et al. 2018) at widths 0.5 and 1.0 — torchvision's module tree and keys."""

from __future__ import annotations

import hubkit
from hubkit import nn
from hubkit.errors import ArgumentError
from hubkit.hub.registry import register_model
from hubkit.tensor import Tensor

from ._imagenet import torchvision_tag
from .backbone import Backbone, FeatureInfo, Stage

__all__ = ["InvertedResidual", "ShuffleNetV2", "channel_shuffle", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0"]


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave channel groups: ``(N, C, H, W) -> (N, C, H, W)`` with channel ``g*k + i`` moved to ``i*G + g``."""
    n, c, h, w = x.shape
    x = x.reshape(n, groups, c // groups, h, w).transpose(1, 2)
    return x.reshape(n, c, h, w)


def _depthwise(i: int, o: int, kernel_size: int, stride: int = 1, padding: int = 0) -> nn.Conv2d:
    return nn.Conv2d(i, o, kernel_size, stride, padding, bias=False, groups=i)


class InvertedResidual(nn.Module):
    """Split (stride 1) or duplicate (stride 2) the input, transform one/both branches, concat, shuffle.

    ``(N, inp, H, W) -> (N, oup, H/stride, W/stride)``.
    """

    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        if not 1 <= stride <= 3:
            raise ArgumentError(f"illegal stride value {stride}")
        self.stride = stride
        branch_features = oup // 2
        if stride == 1 and inp != branch_features << 1:
            raise ArgumentError(f"invalid combination of stride {stride}, inp {inp} and oup {oup}")
        if stride > 1:
            self.branch1 = nn.Sequential(
                _depthwise(inp, inp, kernel_size=3, stride=stride, padding=1),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, kernel_size=1, stride=1, padding=0, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch_features, branch_features, kernel_size=1, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
            _depthwise(branch_features, branch_features, kernel_size=3, stride=stride, padding=1),
            nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, kernel_size=1, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = hubkit.cat([x1, self.branch2(x2)], 1)
        else:
            out = hubkit.cat([self.branch1(x), self.branch2(x)], 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(Backbone, nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)`` logits.

    Stages: ``conv1`` (1/2 size), the max pool with ``stage2`` (1/8), ``stage3`` (1/16), ``stage4`` (1/32);
    ``conv5`` ends the trunk.
    """

    first_conv = "conv1.0"
    classifier_name = "fc"
    head_modules = ("fc",)

    def __init__(self, stages_repeats: list[int], stages_out_channels: list[int], num_classes: int = 1000) -> None:
        super().__init__()
        if len(stages_repeats) != 3 or len(stages_out_channels) != 5:
            raise ArgumentError(
                f"expected 3 stage repeats and 5 stage output channels, got {stages_repeats} and {stages_out_channels}"
            )
        self._stage_out_channels = stages_out_channels
        input_channels = 3
        output_channels = stages_out_channels[0]
        self.conv1 = nn.Sequential(
            nn.Conv2d(input_channels, output_channels, 3, 2, 1, bias=False),
            nn.BatchNorm2d(output_channels),
            nn.ReLU(inplace=True),
        )
        input_channels = output_channels
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for name, repeats, output_channels in zip(["stage2", "stage3", "stage4"], stages_repeats,
                                                  stages_out_channels[1:]):
            seq = [InvertedResidual(input_channels, output_channels, 2)]
            seq += [InvertedResidual(output_channels, output_channels, 1) for _ in range(repeats - 1)]
            setattr(self, name, nn.Sequential(*seq))
            input_channels = output_channels
        output_channels = stages_out_channels[-1]
        self.conv5 = nn.Sequential(
            nn.Conv2d(input_channels, output_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(output_channels),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(output_channels, num_classes)
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = output_channels
        self.feature_info = FeatureInfo([{"num_chs": c, "reduction": r, "module": m} for c, r, m in zip(
            stages_out_channels[:4], (2, 8, 16, 32), ("conv1", "stage2", "stage3", "stage4"))])

    def _stages(self) -> list[Stage]:
        return [self.conv1, lambda x: self.stage2(self.maxpool(x)), self.stage3, self.stage4]

    def _features_tail(self, x: Tensor) -> Tensor:
        return self.conv5(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, num_features, h, w) -> (N, num_classes)``, or the pooled ``(N, num_features)`` with ``pre_logits``."""
        x = x.mean([2, 3])
        return x if pre_logits else self.fc(x)


_RECIPE = "https://github.com/ericsun99/Shufflenet-v2-Pytorch"
_PAPER = "https://arxiv.org/abs/1807.11164"


@register_model(
    modality="vision", task="image-classification",
    description="ShuffleNetV2 0.5x image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ShuffleNet_V2_X0_5_Weights", "IMAGENET1K_V1", "shufflenetv2_x0.5-f707e7126e.pth",
                        acc1=60.552, acc5=81.746, num_params=1366792, gflops=0.04, file_size_mb=5.282,
                        recipe=_RECIPE),
    ),
)
def shufflenet_v2_x0_5(**kwargs) -> ShuffleNetV2:
    """ShuffleNetV2 0.5x, 1.4 M parameters."""
    return ShuffleNetV2([4, 8, 4], [24, 48, 96, 192, 1024], **kwargs)


@register_model(
    modality="vision", task="image-classification",
    description="ShuffleNetV2 1.0x image classifier", paper=_PAPER,
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ShuffleNet_V2_X1_0_Weights", "IMAGENET1K_V1", "shufflenetv2_x1-5666bf0f80.pth",
                        acc1=69.362, acc5=88.316, num_params=2278604, gflops=0.145, file_size_mb=8.791,
                        recipe=_RECIPE),
    ),
)
def shufflenet_v2_x1_0(**kwargs) -> ShuffleNetV2:
    """ShuffleNetV2 1.0x, 2.3 M parameters."""
    return ShuffleNetV2([4, 8, 4], [24, 116, 232, 464, 1024], **kwargs)
