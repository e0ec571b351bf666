"""Reductions: sum, mean, max/min (values and indices), argmax/argmin.

``dim`` may be an int, a tuple of ints or None (all dims); ``keepdim`` keeps reduced dims as size 1.
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ShapeError
from hubkit.tensor import Tensor

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def normalize_dims(dim: Any, ndim: int, op: str) -> tuple[int, ...] | None:
    """``dim`` as a sorted tuple of non-negative axes (None means all), with a clear error when out of range."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    rank = builtins.max(ndim, 1)
    out = []
    for d in dims:
        if not -rank <= d < rank:
            raise ShapeError(f"{op}: dim {d} is out of range for a tensor with {ndim} dims")
        out.append(d % rank if ndim else 0)
    return tuple(sorted(set(out)))


def _expand_back(gy: Any, shape: tuple[int, ...], axes: tuple[int, ...] | None, keepdims: bool) -> Any:
    """Give a reduced gradient its reduced axes back so it broadcasts over the input's shape."""
    if not keepdims and shape:
        full = range(len(shape)) if axes is None else axes
        gy = gy.reshape([1 if i in full else n for i, n in enumerate(shape)])
    return get_array_module(gy).broadcast_to(gy, shape)


class Sum(Function):
    def __init__(self, axes: tuple[int, ...] | None, keepdims: bool) -> None:
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x: Any) -> Any:
        self.shape = x.shape
        return x.sum(axis=self.axes if x.ndim else None, keepdims=self.keepdims)

    def backward(self, gy: Any) -> Any:
        return _expand_back(gy, self.shape, self.axes, self.keepdims)


class Mean(Function):
    def __init__(self, axes: tuple[int, ...] | None, keepdims: bool) -> None:
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x: Any) -> Any:
        self.shape = x.shape
        y = x.mean(axis=self.axes if x.ndim else None, keepdims=self.keepdims)
        self.count = x.size // builtins.max(y.size, 1) if x.size else 0
        return y.astype(x.dtype, copy=False)

    def backward(self, gy: Any) -> Any:
        return _expand_back(gy / builtins.max(self.count, 1), self.shape, self.axes, self.keepdims)


def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A001,A002
    """Sum over ``dim`` (all dims when None). Integer and bool inputs sum to int64, as in PyTorch."""
    if dtype is not None:
        input = input.to(dtype)
    elif input.dtype.kind in "bui" and input.dtype != "int64":
        input = input.to("int64")
    return Sum(normalize_dims(dim, input.ndim, "sum"), keepdim)(input)


def mean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A002
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.kind not in "fc":
        raise TypeError(
            f"mean: expected a floating point tensor, got {input.dtype}; convert it with .float() first"
        )
    return Mean(normalize_dims(dim, input.ndim, "mean"), keepdim)(input)


class MaxMin(Function):
    """Values (and indices) of the max or min along one dim; the gradient goes to the chosen element."""

    def __init__(self, axis: int, keepdims: bool, is_max: bool) -> None:
        self.axis, self.keepdims, self.is_max = axis, keepdims, is_max

    def forward(self, x: Any) -> tuple[Any, Any]:
        xp = get_array_module(x)
        idx = (xp.argmax if self.is_max else xp.argmin)(x, axis=self.axis, keepdims=True)
        values = xp.take_along_axis(x, idx, axis=self.axis)
        self.shape, self.idx = x.shape, idx
        if not self.keepdims:
            values, idx = values.squeeze(self.axis), idx.squeeze(self.axis)
        return values, idx.astype("int64", copy=False)

    def backward(self, gy: Any, _gidx: Any) -> Any:
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if not self.keepdims:
            gy = xp.expand_dims(gy, self.axis)
        xp.put_along_axis(gx, self.idx, gy, axis=self.axis)
        return gx


class MaxMinAll(Function):
    """Max or min over all elements; the gradient is split evenly among ties, as in PyTorch."""

    def __init__(self, is_max: bool) -> None:
        self.is_max = is_max

    def forward(self, x: Any) -> Any:
        if x.size == 0:
            raise ShapeError(f"{'max' if self.is_max else 'min'}: the tensor is empty, so there is nothing to reduce")
        y = x.max() if self.is_max else x.min()
        self.x, self.y = x, y
        return get_array_module(x).asarray(y)

    def backward(self, gy: Any) -> Any:
        mask = self.x == self.y
        return mask * (gy / mask.sum()).astype(gy.dtype)


def _max_min(input: Tensor, dim: Any, keepdim: bool, is_max: bool) -> Any:
    name = "max" if is_max else "min"
    if dim is None:
        return MaxMinAll(is_max)(input)
    if isinstance(dim, Tensor):  # max(a, b): elementwise
        from hubkit.nn.functional.elementwise import maximum, minimum

        return (maximum if is_max else minimum)(input, dim)
    (axis,) = normalize_dims(dim, input.ndim, name)
    if input.ndim and input.shape[axis] == 0:
        raise ShapeError(f"{name}: dim {dim} of shape {tuple(input.shape)} is empty, so there is nothing to reduce")
    values, indices = MaxMin(axis if input.ndim else None, keepdim, is_max)(input)
    return ValuesIndices(values, indices)


def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001,A002
    """``max(x)`` -> a 0-d tensor; ``max(x, dim)`` -> (values, indices); ``max(x, other)`` -> elementwise."""
    return _max_min(input, dim, keepdim, True)


def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001,A002
    return _max_min(input, dim, keepdim, False)


def _arg(input: Tensor, dim: Any, keepdim: bool, is_max: bool) -> Tensor:
    xp = input._xp
    fn = xp.argmax if is_max else xp.argmin
    if dim is None:
        out = fn(input.data)
        if keepdim:
            out = out.reshape((1,) * input.ndim)
    else:
        (axis,) = normalize_dims(dim, input.ndim, "argmax" if is_max else "argmin")
        out = fn(input.data, axis=axis, keepdims=keepdim)
    return Tensor._make(xp.asarray(out, dtype="int64"))


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:  # noqa: A002
    return _arg(input, dim, keepdim, True)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:  # noqa: A002
    return _arg(input, dim, keepdim, False)

