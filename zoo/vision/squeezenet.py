"""SqueezeNet 1.1 (Iandola et al. 2016; the 1.1 revision from the authors' repository) — torchvision's keys."""

from __future__ import annotations

import hubkit
from hubkit import nn
from hubkit.errors import ArgumentError
from hubkit.hub.registry import register_model
from hubkit.nn import functional as F
from hubkit.tensor import Tensor

from ._imagenet import old_file, torchvision_tag
from .backbone import Backbone, sequential_stages

__all__ = ["Fire", "SqueezeNet", "squeezenet1_1"]


class Fire(nn.Module):
    """1x1 squeeze, then 1x1 and 3x3 expands concatenated: ``(N, inplanes, H, W) -> (N, e1 + e3, H, W)``."""

    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int) -> None:
        super().__init__()
        self.inplanes = inplanes
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return hubkit.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


class SqueezeNet(Backbone, nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)``; H, W >= 17. Version ``"1_1"`` only (the one with upstream weights).

    Stages: the first conv's ReLU (1/2 size), then the Fire modules before each max pool (1/4, 1/8) and after the
    last (1/16). The classifier is a 1x1 conv applied before the global average pool.
    """

    first_conv = "features.0"
    classifier_name = "classifier.1"
    head_modules = ("classifier",)

    def __init__(self, version: str = "1_1", num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        if version != "1_1":
            raise ArgumentError(f"SqueezeNet version {version!r} is not in the zoo; use '1_1'")
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256),
        )
        final_conv = nn.Conv2d(512, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )
        self.num_features = self.head_hidden_size = 512
        self._stage_ranges, self.feature_info = sequential_stages(
            self.features, [(0, 2, 64, 2), (2, 5, 128, 4), (5, 8, 256, 8), (8, 13, 512, 16)])

    def _new_classifier(self, num_classes: int) -> nn.Module:
        return nn.Conv2d(self.head_hidden_size, num_classes, kernel_size=1)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, 512, h, w) -> (N, num_classes)``, or the average-pooled ``(N, 512)`` with ``pre_logits``."""
        if pre_logits:
            return F.flatten(self.classifier[3](self.classifier[0](x)), 1)
        return F.flatten(self.classifier(x), 1)


@register_model(
    modality="vision", task="image-classification",
    description="SqueezeNet 1.1 image classifier", paper="https://arxiv.org/abs/1602.07360",
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("SqueezeNet1_1_Weights", "IMAGENET1K_V1", "squeezenet1_1-b8a52dc0.pth", acc1=58.178,
                        acc5=80.624, num_params=1235496, gflops=0.349, file_size_mb=4.729, min_size=(17, 17),
                        recipe="https://github.com/pytorch/vision/pull/49#issuecomment-277560717",
                        aliases=(old_file("squeezenet1_1-f364aa15.pth"),)),
    ),
)
def squeezenet1_1(**kwargs) -> SqueezeNet:
    """SqueezeNet 1.1: 2.4x fewer FLOPs than 1.0 at the same accuracy; 1.2 M parameters."""
    return SqueezeNet("1_1", **kwargs)
