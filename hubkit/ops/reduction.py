"""Reductions: sum, mean, var/std, logsumexp, max/min (values and indices), argmax/argmin, and cumsum.

``dim`` may be an int, a tuple of ints or None (all dims); ``keepdim`` keeps reduced dims as size 1.
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, ShapeError
from hubkit.tensor import Tensor, float32

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
        from hubkit.ops.elementwise import maximum, minimum

        return (maximum if is_max else minimum)(input, dim)
    (axis,) = normalize_dims(dim, input.ndim, name)
    if input.ndim and input.shape[axis] == 0:
        raise ShapeError(f"{name}: dim {dim} of shape {tuple(input.shape)} is empty, so there is nothing to reduce")
    if input.ndim == 0:  # a 0-d tensor is its own max along dim 0 or -1, at index 0
        from hubkit.ops.shape import reshape

        values, indices = MaxMin(0, False, is_max)(reshape(input, 1))
        return ValuesIndices(values, indices)
    values, indices = MaxMin(axis, keepdim, is_max)(input)
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
        out = fn(input.array)
        if keepdim:
            out = out.reshape((1,) * input.ndim)
    else:
        (axis,) = normalize_dims(dim, input.ndim, "argmax" if is_max else "argmin")
        out = fn(input.array, axis=axis, keepdims=keepdim)
    return Tensor._make(xp.asarray(out, dtype="int64"))


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:  # noqa: A002
    return _arg(input, dim, keepdim, True)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:  # noqa: A002
    return _arg(input, dim, keepdim, False)


# ---------------------------------------------------------------- var / std


def _reduced_count(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> int:
    n = 1
    for i, size in enumerate(shape):
        if axes is None or i in axes:
            n *= size
    return n


class Var(Function):
    """``sum((x - mean)^2) / (N - correction)`` over ``axes``; the divisor is clamped at 0 (giving inf/nan)."""

    def __init__(self, axes: tuple[int, ...] | None, keepdims: bool, correction: float) -> None:
        self.axes, self.keepdims, self.correction = axes, keepdims, correction

    def forward(self, x: Any) -> Any:
        axes = self.axes if x.ndim else None
        self.shape = x.shape
        self.denom = builtins.max(_reduced_count(x.shape, axes) - self.correction, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = x - x.mean(axis=axes, keepdims=True).astype(x.dtype, copy=False)
            y = (diff * diff).sum(axis=axes, keepdims=self.keepdims) / x.dtype.type(self.denom)
        self.diff = diff
        return y

    def backward(self, gy: Any) -> Any:
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = gy * gy.dtype.type(2) / gy.dtype.type(self.denom)
        return _expand_back(scale, self.shape, self.axes, self.keepdims) * self.diff


def _correction(dim: Any, unbiased: Any, correction: Any, op: str) -> tuple[Any, float]:
    if isinstance(dim, bool):  # var(x, False): the ``unbiased`` overload
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise ArgumentError(f"{op}: pass either unbiased= or correction=, not both")
    if correction is None:
        correction = 0 if unbiased is False else 1
    return dim, correction


def var(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,  # noqa: A002
        correction: float | None = None) -> Tensor:
    """Variance over ``dim`` (all dims when None) with divisor ``N - correction``.

    ``correction=1`` (the default, Bessel's correction) equals ``unbiased=True``; ``unbiased=False``
    is ``correction=0``. ``(*) -> (*)`` with the reduced dims removed (kept as 1 with ``keepdim``).
    """
    dim, correction = _correction(dim, unbiased, correction, "var")
    input = _float_input(input, "var")
    return Var(normalize_dims(dim, input.ndim, "var"), keepdim, correction)(input)


def std(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,  # noqa: A002
        correction: float | None = None) -> Tensor:
    """Standard deviation, ``sqrt(var(...))``; same arguments as ``var``."""
    from hubkit.ops.elementwise import sqrt

    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def _float_input(x: Tensor, op: str) -> Tensor:
    if x.dtype.kind in "fc":
        return x
    if x.dtype.kind in "biu":
        return x.to(float32)
    raise TypeError(f"{op}: expected a numeric tensor, got {x.dtype}")


# ---------------------------------------------------------------- logsumexp


class LogSumExp(Function):
    """``log(sum(exp(x)))`` over ``axes``, computed as ``m + log(sum(exp(x - m)))`` with ``m`` the max."""

    def __init__(self, axes: tuple[int, ...] | None, keepdims: bool) -> None:
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        axes = self.axes if x.ndim else None
        if x.size:
            m = x.max(axis=axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, x.dtype.type(0))  # all -inf (or an inf) must not give inf - inf
        else:
            m = xp.zeros([1 if axes is None or i in axes else n for i, n in enumerate(x.shape)], dtype=x.dtype)
        with np.errstate(divide="ignore"):
            y = xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True)) + m
        self.x, self.y = x, y
        if self.keepdims:
            return y
        return y.reshape([n for i, n in enumerate(y.shape) if axes is not None and i not in axes])

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        return _expand_back(gy, self.x.shape, self.axes, self.keepdims) * xp.exp(self.x - self.y)


def logsumexp(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A002
    """Numerically stable ``log(sum(exp(input), dim))``; ``dim`` an int, a tuple, or None for all dims."""
    input = _float_input(input, "logsumexp")
    return LogSumExp(normalize_dims(dim, input.ndim, "logsumexp"), keepdim)(input)


# ---------------------------------------------------------------- cumsum


class CumSum(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        return get_array_module(x).cumsum(x, axis=self.axis)

    def backward(self, gy: Any) -> Any:
        # each input feeds every later output: the gradient is a reversed cumulative sum
        xp = get_array_module(gy)
        return xp.flip(xp.cumsum(xp.flip(gy, self.axis), axis=self.axis), self.axis)


def cumsum(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:  # noqa: A002
    """Running sum along ``dim``; same shape as ``input``. Integer and bool inputs give int64, as in PyTorch."""
    if dtype is not None:
        input = input.to(dtype)
    elif input.dtype.kind in "bui" and input.dtype != "int64":
        input = input.to("int64")
    if input.ndim == 0:
        normalize_dims(dim, 0, "cumsum")
        return CumSum(0)(input.reshape(1)).reshape(())
    (axis,) = normalize_dims(dim, input.ndim, "cumsum")
    return CumSum(axis)(input)
