"""ResNet-20/32/44/56/110 for CIFAR-10 (He et al. 2016, "Deep Residual Learning", section 4.2).

The paper's CIFAR network: a 3x3 conv to 16 channels, then three stages of ``n`` basic blocks (two 3x3 convs
each) on 32x32, 16x16 and 8x8 maps with 16, 32 and 64 channels (``6n + 2`` weighted layers), global average
pooling and a 10-way linear layer. Shortcuts are option A, parameter-free: identity, and where a stage halves
the map and doubles the channels, the input subsampled with stride 2 and zero-padded on the channel axis.

Module names, the zero padding split evenly on both sides of the channel axis (``planes // 4`` each side), and
the initialisation follow akamaster/pytorch_resnet_cifar10 (``resnet.py``), the usual PyTorch reproduction, so
its checkpoints load by key once their DataParallel ``module.`` prefix is dropped: ``conv1``, ``bn1``,
``layer{1,2,3}.{i}.conv1/bn1/conv2/bn2``, ``linear``. Initialisation: every Conv2d and Linear weight
Kaiming-normal (fan_in, gain sqrt(2)); Linear bias and BatchNorm keep PyTorch's defaults. Published test errors
(paper Table 6): ResNet-20 8.75 %, -32 7.51 %, -44 7.17 %, -56 6.97 %, -110 6.43 %.
"""

from __future__ import annotations

from typing import Any

from hubkit import nn
from hubkit.errors import ArgumentError
from hubkit.hub.registry import register_model
from hubkit.nn import functional as F
from hubkit.tensor import Tensor

from .backbone import Backbone, FeatureInfo, Stage

__all__ = ["CifarResNet", "ShortcutA", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]


class ShortcutA(nn.Module):
    """The option-A shortcut: ``(N, C, H, W) -> (N, C + 2 * pad, ceil(H / 2), ceil(W / 2))``.

    Keeps every second row and column (stride-2 subsampling) and adds ``pad`` zero channels on each side.
    """

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0.0)

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a residual: ``(N, in_planes, H, W) -> (N, planes, H / stride, W / stride)``."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            if stride != 2 or planes != 2 * in_planes:
                raise ArgumentError(f"option-A shortcuts halve the map and double the channels; got stride {stride}, "
                                    f"{in_planes} -> {planes} channels")
            self.shortcut: nn.Module = ShortcutA(planes // 4)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(Backbone, nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)`` logits; built for 32x32 CIFAR images (any H, W >= 1 runs).

    Stages: the stem conv's ReLU and ``layer1`` (16 channels at full size), ``layer2`` (32, 1/2), ``layer3``
    (64, 1/4).
    """

    first_conv = "conv1"
    classifier_name = "linear"
    head_modules = ("linear",)
    default_input_size = (3, 32, 32)

    def __init__(self, num_blocks: tuple[int, int, int] | list[int], num_classes: int = 10) -> None:
        super().__init__()
        if len(num_blocks) != 3 or any(not isinstance(n, int) or n < 1 for n in num_blocks):
            raise ArgumentError(f"num_blocks must be three positive ints (blocks per stage), got {num_blocks!r}")
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(32, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(64, num_blocks[2], stride=2)
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = 64
        self.feature_info = FeatureInfo([{"num_chs": c, "reduction": r, "module": m} for c, r, m in (
            (16, 1, "bn1"), (16, 1, "layer1"), (32, 2, "layer2"), (64, 4, "layer3"))])

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def _stages(self) -> list[Stage]:
        return [lambda x: F.relu(self.bn1(self.conv1(x))), self.layer1, self.layer2, self.layer3]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, 64, h, w) -> (N, num_classes)``, or the globally averaged ``(N, 64)`` with ``pre_logits``."""
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.linear(x)


_PAPER = "https://arxiv.org/abs/1512.03385"


@register_model(
    modality="vision", task="image-classification", paper=_PAPER,
    description="resnet20 for 32x32 CIFAR-10, option-A shortcuts (architecture only, no upstream weights; paper test "
                "error 8.75 %)",
)
def resnet20(**kwargs: Any) -> CifarResNet:
    """ResNet-20 for CIFAR-10: 3 blocks per stage, 269,722 parameters at 10 classes."""
    return CifarResNet([3, 3, 3], **kwargs)


@register_model(
    modality="vision", task="image-classification", paper=_PAPER,
    description="resnet32 for 32x32 CIFAR-10, option-A shortcuts (architecture only, no upstream weights; paper test "
                "error 7.51 %)",
)
def resnet32(**kwargs: Any) -> CifarResNet:
    """ResNet-32 for CIFAR-10: 5 blocks per stage, 464,154 parameters at 10 classes."""
    return CifarResNet([5, 5, 5], **kwargs)


@register_model(
    modality="vision", task="image-classification", paper=_PAPER,
    description="resnet44 for 32x32 CIFAR-10, option-A shortcuts (architecture only, no upstream weights; paper test "
                "error 7.17 %)",
)
def resnet44(**kwargs: Any) -> CifarResNet:
    """ResNet-44 for CIFAR-10: 7 blocks per stage, 658,586 parameters at 10 classes."""
    return CifarResNet([7, 7, 7], **kwargs)


@register_model(
    modality="vision", task="image-classification", paper=_PAPER,
    description="resnet56 for 32x32 CIFAR-10, option-A shortcuts (architecture only, no upstream weights; paper test "
                "error 6.97 %)",
)
def resnet56(**kwargs: Any) -> CifarResNet:
    """ResNet-56 for CIFAR-10: 9 blocks per stage, 853,018 parameters at 10 classes."""
    return CifarResNet([9, 9, 9], **kwargs)


@register_model(
    modality="vision", task="image-classification", paper=_PAPER,
    description="resnet110 for 32x32 CIFAR-10, option-A shortcuts (architecture only, no upstream weights; paper "
                "test error 6.43 %)",
)
def resnet110(**kwargs: Any) -> CifarResNet:
    """ResNet-110 for CIFAR-10: 18 blocks per stage, 1,727,962 parameters at 10 classes."""
    return CifarResNet([18, 18, 18], **kwargs)
