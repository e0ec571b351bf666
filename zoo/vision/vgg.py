"""VGG (Simonyan & Zisserman 2014), with and without BatchNorm — torchvision's module tree and keys.

``features.<i>`` numbers every layer of the conv stack (conv, [bn], relu, pool), so VGG-16's convs
sit at ``features.0, 2, 5, 7, 10, ...``; the classifier is ``classifier.0/3/6``.
"""

from __future__ import annotations

from hubkit import nn
from hubkit.hub.registry import register_model
from hubkit.nn import functional as F
from hubkit.tensor import Tensor

from ._imagenet import old_file, torchvision_tag
from .backbone import Backbone, run_modules, sequential_stages, stages_by_stride

__all__ = ["VGG", "make_layers", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn"]

CFGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(Backbone, nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)``; H, W >= 32 (five 2x2 pools, then adaptive pooling to 7x7).

    Stages: the conv stack up to the ReLU before each max pool (64, 128, 256, 512, 512 channels at 1, 1/2 .. 1/16
    size); the last pool ends the trunk. ``features``: a :func:`make_layers` stack.
    """

    first_conv = "features.0"
    classifier_name = "classifier.6"
    head_modules = ("avgpool", "classifier")

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        self.num_classes = num_classes
        self.num_features, self.head_hidden_size = 512, 4096
        strides, channels, width = [], [], 3
        for block in list(features)[:-1]:
            width = block.out_channels if isinstance(block, nn.Conv2d) else width
            strides.append(2 if isinstance(block, nn.MaxPool2d) else 1)
            channels.append(width)
        self._stage_ranges, self.feature_info = sequential_stages(features, stages_by_stride(strides, channels))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, 512, h, w) -> (N, num_classes)``, or the ``(N, 4096)`` pre-logits."""
        x = run_modules(list(self.classifier)[:-1])(F.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.classifier[-1](x)


def make_layers(cfg: list[int | str], batch_norm: bool = False) -> nn.Sequential:
    """The conv stack: each int is a 3x3 conv (padding 1) [+ BatchNorm] + ReLU, each ``"M"`` a 2x2 max pool."""
    layers: list[nn.Module] = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU(inplace=True))
        in_channels = int(v)
    return nn.Sequential(*layers)


_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg"
_PAPER = "https://arxiv.org/abs/1409.1556"


@register_model(
    modality="vision", task="image-classification", description="VGG-11 image classifier",
    paper=_PAPER, default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("VGG11_Weights", "IMAGENET1K_V1", "vgg11-8a719046.pth", acc1=69.02, acc5=88.628,
                        num_params=132863336, gflops=7.609, file_size_mb=506.84, recipe=_RECIPE, min_size=(32, 32),
                        aliases=(old_file("vgg11-bbd30ac9.pth"),)),
    ),
)
def vgg11(**kwargs) -> VGG:
    """VGG-11 (configuration A), 132.9 M parameters."""
    return VGG(make_layers(CFGS["A"]), **kwargs)


@register_model(
    modality="vision", task="image-classification", description="VGG-11 with BatchNorm, image classifier",
    paper=_PAPER, default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("VGG11_BN_Weights", "IMAGENET1K_V1", "vgg11_bn-6002323d.pth", acc1=70.37, acc5=89.81,
                        num_params=132868840, gflops=7.609, file_size_mb=506.881, recipe=_RECIPE, min_size=(32, 32)),
    ),
)
def vgg11_bn(**kwargs) -> VGG:
    """VGG-11 with BatchNorm after every conv."""
    return VGG(make_layers(CFGS["A"], batch_norm=True), **kwargs)


@register_model(
    modality="vision", task="image-classification", description="VGG-16 image classifier",
    paper=_PAPER, default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("VGG16_Weights", "IMAGENET1K_V1", "vgg16-397923af.pth", acc1=71.592, acc5=90.382,
                        num_params=138357544, gflops=15.47, file_size_mb=527.796, recipe=_RECIPE, min_size=(32, 32)),
        # Ported from amdegroot/ssd.pytorch as an SSD backbone: Caffe-style input (0..255 minus the channel
        # means), no classifier categories; the classifier weights in the file are not a trained ImageNet head.
        torchvision_tag("VGG16_Weights", "IMAGENET1K_FEATURES", "vgg16_features-amdegroot-88682ab5.pth",
                        acc1=float("nan"), acc5=float("nan"), num_params=138357544, gflops=15.47, file_size_mb=527.802,
                        recipe="https://github.com/amdegroot/ssd.pytorch#training-ssd", min_size=(32, 32),
                        mean=(0.48235, 0.45882, 0.40784), std=(1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0),
                        categories=False),
    ),
)
def vgg16(**kwargs) -> VGG:
    """VGG-16 (configuration D), 138.4 M parameters."""
    return VGG(make_layers(CFGS["D"]), **kwargs)


@register_model(
    modality="vision", task="image-classification", description="VGG-16 with BatchNorm, image classifier",
    paper=_PAPER, default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("VGG16_BN_Weights", "IMAGENET1K_V1", "vgg16_bn-6c64b313.pth", acc1=73.36, acc5=91.516,
                        num_params=138365992, gflops=15.47, file_size_mb=527.866, recipe=_RECIPE, min_size=(32, 32)),
    ),
)
def vgg16_bn(**kwargs) -> VGG:
    """VGG-16 with BatchNorm after every conv."""
    return VGG(make_layers(CFGS["D"], batch_norm=True), **kwargs)
