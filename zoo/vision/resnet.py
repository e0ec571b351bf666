"""ResNet, ResNeXt and Wide ResNet (He et al. 2015; Xie et al. 2016; Zagoruyko & Komodakis 2016).

torchvision's ``ResNet`` exactly: same module tree and state-dict keys (``conv1``, ``bn1``,
``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc``), the stride on the 3x3 conv of a bottleneck
("ResNet v1.5"), BatchNorm eps 1e-5.
"""

from __future__ import annotations

from hubkit import nn
from hubkit.errors import ArgumentError
from hubkit.hub.registry import register_model
from hubkit.nn import functional as F
from hubkit.tensor import Tensor

from ._imagenet import old_file, torchvision_tag
from .backbone import Backbone, FeatureInfo, Stage

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=dilation, groups=groups, bias=False,
                     dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual: ``(N, inplanes, H, W) -> (N, planes, H/stride, W/stride)``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ArgumentError("BasicBlock only supports groups=1 and base_width=64")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, grouped), 1x1 expand x4, residual: ``(N, inplanes, H, W) -> (N, 4*planes, ...)``."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(Backbone, nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)`` logits; any H, W >= 1 (global average pooling before ``fc``).

    Stages (``feature_info``): the stem's ``relu`` (64 channels, 1/2 size), ``layer1`` .. ``layer4`` (1/4 .. 1/32).
    """

    first_conv = "conv1"
    classifier_name = "fc"
    head_modules = ("avgpool", "fc")

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], num_classes: int = 1000,
                 zero_init_residual: bool = False, groups: int = 1, width_per_group: int = 64) -> None:
        super().__init__()
        self.inplanes = 64
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = 512 * block.expansion
        self.feature_info = FeatureInfo(
            [{"num_chs": 64, "reduction": 2, "module": "relu"}]
            + [{"num_chs": planes * block.expansion, "reduction": 4 * 2**i, "module": f"layer{i + 1}"}
               for i, planes in enumerate((64, 128, 256, 512))]
        )
        if zero_init_residual:
            for m in self.modules():
                last_bn = m.bn3 if isinstance(m, Bottleneck) else m.bn2 if isinstance(m, BasicBlock) else None
                if last_bn is not None:
                    nn.init.zeros_(last_bn.weight)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width))
        return nn.Sequential(*layers)

    def fusable_modules(self) -> list[list[str]]:
        """The (conv, batch norm) pairs ``forward`` calls back to back, for ``hubkit.nn.fuse.fuse_for_inference``.

        ReLUs are not listed: a block uses its one ``relu`` module twice. Downsample branches are
        ``Sequential`` and are fused automatically.
        """
        groups = [["conv1", "bn1"]]
        for layer_name in ("layer1", "layer2", "layer3", "layer4"):
            for i, block in enumerate(getattr(self, layer_name)):
                n = 3 if isinstance(block, Bottleneck) else 2
                groups += [[f"{layer_name}.{i}.conv{j}", f"{layer_name}.{i}.bn{j}"] for j in range(1, n + 1)]
        return groups

    def _stages(self) -> list[Stage]:
        return [lambda x: self.relu(self.bn1(self.conv1(x))), lambda x: self.layer1(self.maxpool(x)), self.layer2,
                self.layer3, self.layer4]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, num_features, h, w) -> (N, num_classes)``, or the pooled ``(N, num_features)`` with ``pre_logits``."""
        x = F.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


_V1_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#resnet"
_PAPER = "https://arxiv.org/abs/1512.03385"
_RESNEXT_PAPER = "https://arxiv.org/abs/1611.05431"
_WIDE_PAPER = "https://arxiv.org/abs/1605.07146"


@register_model(
    modality="vision", task="image-classification", description="ResNet-18 image classifier",
    paper=_PAPER, default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ResNet18_Weights", "IMAGENET1K_V1", "resnet18-f37072fd.pth", acc1=69.758, acc5=89.078,
                        num_params=11689512, gflops=1.814, file_size_mb=44.661, recipe=_V1_RECIPE,
                        aliases=(old_file("resnet18-5c106cde.pth"),)),
    ),
)
def resnet18(**kwargs) -> ResNet:
    """ResNet-18: BasicBlock x [2, 2, 2, 2]; 11.7 M parameters at 1000 classes."""
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


@register_model(
    modality="vision", task="image-classification", description="ResNet-34 image classifier",
    paper=_PAPER, default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ResNet34_Weights", "IMAGENET1K_V1", "resnet34-b627a593.pth", acc1=73.314, acc5=91.42,
                        num_params=21797672, gflops=3.664, file_size_mb=83.275, recipe=_V1_RECIPE,
                        aliases=(old_file("resnet34-333f7ec4.pth"),)),
    ),
)
def resnet34(**kwargs) -> ResNet:
    """ResNet-34: BasicBlock x [3, 4, 6, 3]."""
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


@register_model(
    modality="vision", task="image-classification", description="ResNet-50 image classifier",
    paper=_PAPER, default="IMAGENET1K_V2", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ResNet50_Weights", "IMAGENET1K_V1", "resnet50-0676ba61.pth", acc1=76.13, acc5=92.862,
                        num_params=25557032, gflops=4.089, file_size_mb=97.781, recipe=_V1_RECIPE,
                        aliases=(old_file("resnet50-19c8e357.pth"),)),
        torchvision_tag("ResNet50_Weights", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", acc1=80.858, acc5=95.434,
                        num_params=25557032, gflops=4.089, file_size_mb=97.79, resize_size=232,
                        recipe="https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621"),
    ),
)
def resnet50(**kwargs) -> ResNet:
    """ResNet-50: Bottleneck x [3, 4, 6, 3]."""
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


@register_model(
    modality="vision", task="image-classification", description="ResNet-101 image classifier",
    paper=_PAPER, default="IMAGENET1K_V2", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ResNet101_Weights", "IMAGENET1K_V1", "resnet101-63fe2227.pth", acc1=77.374, acc5=93.546,
                        num_params=44549160, gflops=7.801, file_size_mb=170.511, recipe=_V1_RECIPE,
                        aliases=(old_file("resnet101-5d3b4d8f.pth"),)),
        torchvision_tag("ResNet101_Weights", "IMAGENET1K_V2", "resnet101-cd907fc2.pth", acc1=81.886, acc5=95.78,
                        num_params=44549160, gflops=7.801, file_size_mb=170.53, resize_size=232,
                        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe"),
    ),
)
def resnet101(**kwargs) -> ResNet:
    """ResNet-101: Bottleneck x [3, 4, 23, 3]."""
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


@register_model(
    modality="vision", task="image-classification", description="ResNet-152 image classifier",
    paper=_PAPER, default="IMAGENET1K_V2", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ResNet152_Weights", "IMAGENET1K_V1", "resnet152-394f9c45.pth", acc1=78.312, acc5=94.046,
                        num_params=60192808, gflops=11.514, file_size_mb=230.434, recipe=_V1_RECIPE,
                        aliases=(old_file("resnet152-b121ed2d.pth"),)),
        torchvision_tag("ResNet152_Weights", "IMAGENET1K_V2", "resnet152-f82ba261.pth", acc1=82.284, acc5=96.002,
                        num_params=60192808, gflops=11.514, file_size_mb=230.474, resize_size=232,
                        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe"),
    ),
)
def resnet152(**kwargs) -> ResNet:
    """ResNet-152: Bottleneck x [3, 8, 36, 3]."""
    return ResNet(Bottleneck, [3, 8, 36, 3], **kwargs)


@register_model(
    modality="vision", task="image-classification", description="ResNeXt-50 32x4d image classifier",
    paper=_RESNEXT_PAPER, default="IMAGENET1K_V2", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ResNeXt50_32X4D_Weights", "IMAGENET1K_V1", "resnext50_32x4d-7cdf4587.pth", acc1=77.618,
                        acc5=93.698, num_params=25028904, gflops=4.23, file_size_mb=95.789,
                        recipe="https://github.com/pytorch/vision/tree/main/references/classification#resnext"),
        torchvision_tag("ResNeXt50_32X4D_Weights", "IMAGENET1K_V2", "resnext50_32x4d-1a0047aa.pth", acc1=81.198,
                        acc5=95.34, num_params=25028904, gflops=4.23, file_size_mb=95.833, resize_size=232,
                        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe"),
    ),
)
def resnext50_32x4d(**kwargs) -> ResNet:
    """ResNeXt-50 32x4d: Bottleneck x [3, 4, 6, 3] with 32 groups of width 4."""
    return ResNet(Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4, **kwargs)


@register_model(
    modality="vision", task="image-classification", description="Wide ResNet-50-2 image classifier",
    paper=_WIDE_PAPER, default="IMAGENET1K_V2", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("Wide_ResNet50_2_Weights", "IMAGENET1K_V1", "wide_resnet50_2-95faca4d.pth", acc1=78.468,
                        acc5=94.086, num_params=68883240, gflops=11.398, file_size_mb=131.82,
                        recipe="https://github.com/pytorch/vision/pull/912#issue-445437439"),
        torchvision_tag("Wide_ResNet50_2_Weights", "IMAGENET1K_V2", "wide_resnet50_2-9ba9bcbe.pth", acc1=81.602,
                        acc5=95.758, num_params=68883240, gflops=11.398, file_size_mb=263.124, resize_size=232,
                        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres"),
    ),
)
def wide_resnet50_2(**kwargs) -> ResNet:
    """Wide ResNet-50-2: Bottleneck x [3, 4, 6, 3] with twice the bottleneck width."""
    return ResNet(Bottleneck, [3, 4, 6, 3], width_per_group=128, **kwargs)


@register_model(
    modality="vision", task="image-classification", description="ResNeXt-101 32x8d image classifier",
    paper=_RESNEXT_PAPER, default="IMAGENET1K_V2", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ResNeXt101_32X8D_Weights", "IMAGENET1K_V1", "resnext101_32x8d-8ba56ff5.pth", acc1=79.312,
                        acc5=94.526, num_params=88791336, gflops=16.414, file_size_mb=339.586,
                        recipe="https://github.com/pytorch/vision/tree/main/references/classification#resnext"),
        torchvision_tag("ResNeXt101_32X8D_Weights", "IMAGENET1K_V2", "resnext101_32x8d-110c445d.pth", acc1=82.834,
                        acc5=96.228, num_params=88791336, gflops=16.414, file_size_mb=339.673, resize_size=232,
                        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres"),
    ),
)
def resnext101_32x8d(**kwargs) -> ResNet:
    """ResNeXt-101 32x8d: Bottleneck x [3, 4, 23, 3] with 32 groups of width 8."""
    return ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=8, **kwargs)


@register_model(
    modality="vision", task="image-classification", description="ResNeXt-101 64x4d image classifier",
    paper=_RESNEXT_PAPER, default="IMAGENET1K_V1", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("ResNeXt101_64X4D_Weights", "IMAGENET1K_V1", "resnext101_64x4d-173b62eb.pth", acc1=83.246,
                        acc5=96.454, num_params=83455272, gflops=15.46, file_size_mb=319.318, resize_size=232,
                        recipe="https://github.com/pytorch/vision/pull/5935"),
    ),
)
def resnext101_64x4d(**kwargs) -> ResNet:
    """ResNeXt-101 64x4d: Bottleneck x [3, 4, 23, 3] with 64 groups of width 4."""
    return ResNet(Bottleneck, [3, 4, 23, 3], groups=64, width_per_group=4, **kwargs)


@register_model(
    modality="vision", task="image-classification", description="Wide ResNet-101-2 image classifier",
    paper=_WIDE_PAPER, default="IMAGENET1K_V2", legacy_default="IMAGENET1K_V1",
    weights=(
        torchvision_tag("Wide_ResNet101_2_Weights", "IMAGENET1K_V1", "wide_resnet101_2-32ee1156.pth", acc1=78.848,
                        acc5=94.284, num_params=126886696, gflops=22.753, file_size_mb=242.896,
                        recipe="https://github.com/pytorch/vision/pull/912#issue-445437439"),
        torchvision_tag("Wide_ResNet101_2_Weights", "IMAGENET1K_V2", "wide_resnet101_2-d733dc28.pth", acc1=82.51,
                        acc5=96.02, num_params=126886696, gflops=22.753, file_size_mb=484.747, resize_size=232,
                        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe"),
    ),
)
def wide_resnet101_2(**kwargs) -> ResNet:
    """Wide ResNet-101-2: Bottleneck x [3, 4, 23, 3] with twice the bottleneck width."""
    return ResNet(Bottleneck, [3, 4, 23, 3], width_per_group=128, **kwargs)
