"""Dropout: zero elements at random while training and scale the rest by ``1 / (1 - p)``."""

from __future__ import annotations

from typing import Any

from hubkit.autograd import Function
from hubkit.errors import ArgumentError
from hubkit.random import uniform_array
from hubkit.tensor import Tensor


class Dropout(Function):
    """``y = x * scale`` with ``scale`` 0 (dropped) or ``1 / (1 - p)`` (kept), drawn once in forward."""

    def __init__(self, scale: Any) -> None:
        self.scale = scale

    def forward(self, x: Any) -> Any:
        return x * self.scale

    def backward(self, gy: Any) -> Any:
        return gy * self.scale


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Zero each element with probability ``p`` (drawn from hubkit's global generator, so
    ``hubkit.manual_seed`` makes it reproducible) and scale the survivors by ``1 / (1 - p)``.

    In eval mode (``training=False``) or with ``p=0`` the input is returned unchanged.
    ``inplace`` is accepted for compatibility; the result is always a new tensor. ``(*) -> (*)``.
    """
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"dropout: probability p must be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return input
    if input.dtype.kind not in "fc":
        raise ArgumentError(f"dropout: expected a floating point tensor, got {input.dtype}")
    dtype = input.dtype
    if p == 1.0:
        scale = input._xp.zeros(input.shape, dtype=dtype)
    else:
        keep = uniform_array(input.shape, dtype, input.device) >= dtype.type(p)
        scale = keep * dtype.type(1.0 / (1.0 - p))
    return Dropout(scale)(input)
