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
from hubkit.hub.registry import ModelEntry, register
from hubkit.nn import functional as F
from hubkit.tensor import Tensor

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


class CifarResNet(nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)`` logits; built for 32x32 CIFAR images (any H, W >= 1 runs)."""

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

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = out.mean(dim=(2, 3))  # global average pooling: (N, 64)
        return self.linear(out)


def _builder(n: int, doc: str) -> Any:
    def build(**kwargs: Any) -> CifarResNet:
        return CifarResNet([n, n, n], **kwargs)

    build.__name__ = f"resnet{6 * n + 2}"
    build.__doc__ = doc
    return build


resnet20 = _builder(3, "ResNet-20 for CIFAR-10: 3 blocks per stage, 269,722 parameters at 10 classes.")
resnet32 = _builder(5, "ResNet-32 for CIFAR-10: 5 blocks per stage, 464,154 parameters at 10 classes.")
resnet44 = _builder(7, "ResNet-44 for CIFAR-10: 7 blocks per stage, 658,586 parameters at 10 classes.")
resnet56 = _builder(9, "ResNet-56 for CIFAR-10: 9 blocks per stage, 853,018 parameters at 10 classes.")
resnet110 = _builder(18, "ResNet-110 for CIFAR-10: 18 blocks per stage, 1,727,962 parameters at 10 classes.")

for _fn, _error in ((resnet20, 8.75), (resnet32, 7.51), (resnet44, 7.17), (resnet56, 6.97), (resnet110, 6.43)):
    register(ModelEntry(
        name=_fn.__name__, builder=_fn, modality="vision", task="image-classification",
        description=f"{_fn.__name__} for 32x32 CIFAR-10, option-A shortcuts (architecture only, no upstream "
                    f"weights; paper test error {_error} %)",
        paper="https://arxiv.org/abs/1512.03385",
    ))  # fmt: skip
