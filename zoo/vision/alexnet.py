"""AlexNet (Krizhevsky 2014, "One weird trick" variant) — torchvision's module tree and keys."""

from __future__ import annotations

from hubkit import nn
from hubkit.hub.registry import register_model
from hubkit.nn import functional as F
from hubkit.tensor import Tensor

from ._imagenet import old_file, torchvision_tag
from .backbone import Backbone, sequential_stages

__all__ = ["AlexNet", "alexnet"]


class AlexNet(Backbone, nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)``; H, W >= 63.

    Stages: the ReLU before each max pool (``features.1``, ``.4``, ``.11``: 64, 192, 256 channels at 1/4, 1/8,
    1/16); the last pool ends the trunk.
    """

    first_conv = "features.0"
    classifier_name = "classifier.6"
    head_modules = ("avgpool", "classifier")

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        self.num_classes = num_classes
        self.num_features, self.head_hidden_size = 256, 4096
        # (first, last + 1 block of features, channels, reduction) of each stage
        self._stage_ranges, self.feature_info = sequential_stages(
            self.features, [(0, 2, 64, 4), (2, 5, 192, 8), (5, 12, 256, 16)])

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, 256, h, w) -> (N, num_classes)``, or the ``(N, 4096)`` pre-logits."""
        x = F.flatten(self.avgpool(x), 1)
        for layer in list(self.classifier)[:-1]:
            x = layer(x)
        return x if pre_logits else self.classifier[-1](x)


@register_model(
    modality="vision", task="image-classification",
    description="AlexNet image classifier", paper="https://arxiv.org/abs/1404.5997",
    default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("AlexNet_Weights", "IMAGENET1K_V1", "alexnet-owt-7be5be79.pth", acc1=56.522, acc5=79.066,
                        num_params=61100840, gflops=0.714, file_size_mb=233.087, min_size=(63, 63),
                        recipe="https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg",
                        aliases=(old_file("alexnet-owt-4df8aa71.pth"),)),
    ),
)
def alexnet(**kwargs) -> AlexNet:
    """AlexNet, 61.1 M parameters at 1000 classes."""
    return AlexNet(**kwargs)
