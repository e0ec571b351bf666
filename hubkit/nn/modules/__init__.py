"""The layers of ``hubkit.nn``, one file per family (PyTorch's names, arguments, defaults and reprs)."""

from hubkit.nn.modules.activation import (
    ELU,
    GELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from hubkit.nn.modules.attention import MultiheadAttention, NonDynamicallyQuantizableLinear
from hubkit.nn.modules.container import ModuleDict, ModuleList, Sequential
from hubkit.nn.modules.conv import Conv1d, Conv2d, ConvTranspose2d
from hubkit.nn.modules.dropout import Dropout
from hubkit.nn.modules.flatten import Flatten, Unflatten
from hubkit.nn.modules.linear import Identity, Linear
from hubkit.nn.modules.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from hubkit.nn.modules.pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool1d, MaxPool2d
from hubkit.nn.modules.sparse import Embedding

__all__ = [
    "ELU", "GELU", "Hardsigmoid", "Hardswish", "Hardtanh", "LeakyReLU", "LogSoftmax", "ReLU", "ReLU6", "Sigmoid",
    "SiLU", "Softmax", "Softplus", "Tanh", "MultiheadAttention", "NonDynamicallyQuantizableLinear", "ModuleDict",
    "ModuleList", "Sequential", "Conv1d", "Conv2d", "ConvTranspose2d", "Dropout", "Flatten", "Unflatten", "Identity",
    "Linear", "BatchNorm1d", "BatchNorm2d", "GroupNorm", "LayerNorm", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
    "AvgPool2d", "MaxPool1d", "MaxPool2d", "Embedding",
]
