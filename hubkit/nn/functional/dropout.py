"""Dropout: zero elements (or whole channels) at random while training and scale the rest by ``1 / (1 - p)``;
alpha dropout, which keeps a SELU network's mean and variance."""

from __future__ import annotations

import warnings
from typing import Any

from hubkit.autograd import Function
from hubkit.errors import ArgumentError, ShapeError
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


def _check(op: str, input: Tensor, p: float) -> None:  # noqa: A002
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"{op}: probability p must be between 0 and 1, got {p}")
    if input.dtype.kind not in "fc":
        raise ArgumentError(f"{op}: expected a floating point tensor, got {input.dtype}")


def _feature_dropout(op: str, input: Tensor, p: float, training: bool, batched: bool = True) -> Tensor:  # noqa: A002
    """Zero whole channels: one draw per (N, C) entry (per C for an unbatched input), PyTorch's feature dropout."""
    _check(op, input, p)
    if not training or p == 0.0:
        return input
    dtype = input.dtype
    lead = 2 if batched else 1
    mask_shape = input.shape[:lead] + (1,) * (input.ndim - lead)
    if p == 1.0:
        scale = input._xp.zeros(mask_shape, dtype=dtype)
    else:
        scale = (uniform_array(mask_shape, dtype, input.device) >= dtype.type(p)) * dtype.type(1.0 / (1.0 - p))
    return Dropout(scale)(input)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Zero whole channels of ``(N, C, L)`` or ``(C, L)`` with probability ``p``."""
    if input.ndim not in (2, 3):
        raise ShapeError(f"dropout1d: expected a 2-d (C, L) or 3-d (N, C, L) input, got shape {tuple(input.shape)}")
    return _feature_dropout("dropout1d", input, p, training, batched=input.ndim == 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Zero whole channels of ``(N, C, H, W)`` with probability ``p``.

    As in PyTorch, any input is read as ``(N, C, *)``: a 3-d input is treated as ``(N, C, L)`` and a 2-d
    one as ``(N, C)`` (each element its own channel); PyTorch warns about both, and so does hubkit.
    """
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: received a {input.ndim}-D input, which PyTorch deprecates; it is read as "
                      "(N, C, *). Use dropout (element-wise) instead", stacklevel=2)
    return _feature_dropout("dropout2d", input, p, training)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Zero whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` with probability ``p``."""
    if input.ndim not in (4, 5):
        warnings.warn(f"dropout3d: received a {input.ndim}-D input, which PyTorch deprecates; it is read as "
                      "(N, C, *). Use dropout (element-wise) instead", stacklevel=2)
    return _feature_dropout("dropout3d", input, p, training, batched=input.ndim != 4)


# SELU's fixed point: alpha' = -scale * alpha (the value a dropped unit takes), and the affine map
# a * x + b that restores zero mean and unit variance after dropping with probability p
_SELU_ALPHA_PRIME = -1.0507009873554804934193349852946 * 1.6732632423543772848170429916717


def _alpha_dropout(op: str, input: Tensor, p: float, training: bool, mask_shape: tuple) -> Tensor:  # noqa: A002
    _check(op, input, p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    dtype = input.dtype
    keep = uniform_array(mask_shape, dtype, input.device) >= dtype.type(p)
    a = (1 - p) * (1 + p * _SELU_ALPHA_PRIME**2)
    a = a**-0.5
    b = -a * _SELU_ALPHA_PRIME * p
    xp = input._xp
    scale = keep.astype(dtype) * dtype.type(a)
    shift = xp.where(keep, dtype.type(b), dtype.type(a * _SELU_ALPHA_PRIME + b)).astype(dtype)
    return Dropout(scale)(input) + Tensor._make(shift)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:  # noqa: A002
    """Dropout for SELU networks: dropped units take SELU's negative saturation value, then an affine
    correction keeps the mean and variance. ``(*) -> (*)``."""
    return _alpha_dropout("alpha_dropout", input, p, training, input.shape)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,  # noqa: A002
                          inplace: bool = False) -> Tensor:
    """Alpha dropout of whole channels (one draw per (N, C))."""
    mask_shape = input.shape[:2] + (1,) * (input.ndim - 2)
    return _alpha_dropout("feature_alpha_dropout", input, p, training, mask_shape)
