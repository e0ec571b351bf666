"""Padding layers: Zero/Constant/Reflection/Replication/CircularPad 1d, 2d and 3d, over ``F.pad``.

``padding`` is an int (the same on every side) or a tuple ``(left, right[, top, bottom[, front, back]])``
for the last 1, 2 or 3 dims, kept as a tuple like torch's (its repr shows it).
"""

from __future__ import annotations

from typing import Any

from hubkit.errors import ArgumentError, ShapeError
from hubkit.nn import functional as F
from hubkit.nn.module import Module
from hubkit.tensor import Tensor


def _padding_tuple(name: str, padding: Any, dims: int) -> tuple[int, ...]:
    if isinstance(padding, int):
        return (padding,) * (2 * dims)
    padding = tuple(padding)
    if len(padding) != 2 * dims or not all(isinstance(p, int) for p in padding):
        raise ArgumentError(f"{name}: padding must be an int or a tuple of {2 * dims} ints, got {padding!r}")
    return padding


class _PadNd(Module):
    mode = "constant"
    _dims = 1

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _padding_tuple(type(self).__name__, padding, self._dims)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        if input.ndim not in (self._dims + 1, self._dims + 2):
            raise ShapeError(f"{type(self).__name__}: expected {self._dims + 1}D or {self._dims + 2}D input (got "
                             f"{input.ndim}D input of shape {tuple(input.shape)})")
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding: Any, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with ``value``: ``(*, W) -> (*, W + left + right)``; negative widths crop."""


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dims with ``value``: ``(*, H, W) -> (*, H + top + bottom, W + left + right)``."""

    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three dims with ``value``: ``(*, D, H, W)`` grows by ``front + back``, ``top + bottom``,
    ``left + right``."""

    _dims = 3


class ZeroPad1d(ConstantPad1d):
    """Pad the last dim with zeros: ``(*, W) -> (*, W + left + right)``."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two dims with zeros: ``(*, H, W) -> (*, H + top + bottom, W + left + right)``."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """Pad the last three dims with zeros."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Mirror the last dim at its edges (the edge itself not repeated): ``(C, W)`` or ``(N, C, W)``;
    each width must be smaller than W."""

    mode = "reflect"


class ReflectionPad2d(_PadNd):
    """Mirror the last two dims: ``(C, H, W)`` or ``(N, C, H, W)``."""

    mode = "reflect"
    _dims = 2


class ReflectionPad3d(_PadNd):
    """Mirror the last three dims: ``(C, D, H, W)`` or ``(N, C, D, H, W)``."""

    mode = "reflect"
    _dims = 3


class ReplicationPad1d(_PadNd):
    """Repeat the edge values of the last dim: ``(C, W)`` or ``(N, C, W)``."""

    mode = "replicate"


class ReplicationPad2d(_PadNd):
    """Repeat the edge values of the last two dims: ``(C, H, W)`` or ``(N, C, H, W)``."""

    mode = "replicate"
    _dims = 2


class ReplicationPad3d(_PadNd):
    """Repeat the edge values of the last three dims: ``(C, D, H, W)`` or ``(N, C, D, H, W)``."""

    mode = "replicate"
    _dims = 3


class CircularPad1d(_PadNd):
    """Wrap the last dim around (the pad on the left comes from the right end): ``(C, W)`` or ``(N, C, W)``."""

    mode = "circular"


class CircularPad2d(_PadNd):
    """Wrap the last two dims around: ``(C, H, W)`` or ``(N, C, H, W)``."""

    mode = "circular"
    _dims = 2


class CircularPad3d(_PadNd):
    """Wrap the last three dims around: ``(C, D, H, W)`` or ``(N, C, D, H, W)``."""

    mode = "circular"
    _dims = 3
