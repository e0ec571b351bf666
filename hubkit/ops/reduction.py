"""Reductions: sum, mean, prod, var/std (and their means), logsumexp, max/min (values and indices),
amax/amin/aminmax, argmax/argmin, norms, count_nonzero, the NaN-ignoring nansum/nanmean, and the
cumulative ops cumsum, cumprod, cummax, cummin and logcumsumexp.

``dim`` may be an int, a tuple of ints or None (all dims); ``keepdim`` keeps reduced dims as size 1.
"""

from __future__ import annotations

import builtins
import math
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


# ---------------------------------------------------------------- prod


def _exclusive_cumprod(xp: Any, x: Any, axis: int, reverse: bool) -> Any:
    """Products of the elements before each one along ``axis`` (after it, with ``reverse``)."""
    if reverse:
        x = xp.flip(x, axis)
    ones = xp.ones_like(xp.take(x, xp.arange(1), axis=axis))
    out = xp.concatenate([ones, xp.cumprod(xp.take(x, xp.arange(x.shape[axis] - 1), axis=axis), axis=axis)],
                         axis=axis)
    return xp.flip(out, axis) if reverse else out


class Prod(Function):
    """Product along one axis (or of everything). The gradient of each element is the product of all the
    others, built from exclusive products on both sides so zeros in the input are handled exactly."""

    def __init__(self, axis: int | None, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: Any) -> Any:
        self.x = x
        y = x.prod(axis=self.axis, keepdims=self.keepdims)
        return get_array_module(x).asarray(y)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        x = self.x.reshape(-1) if self.axis is None else self.x
        axis = 0 if self.axis is None else self.axis
        others = _exclusive_cumprod(xp, x, axis, False) * _exclusive_cumprod(xp, x, axis, True)
        g = _expand_back(gy, self.x.shape, None if self.axis is None else (self.axis,), self.keepdims)
        return g * others.reshape(self.x.shape)


def prod(input: Tensor, dim: int | None = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A002
    """Product of all elements, or along one ``dim``. Integer and bool inputs give int64, as in PyTorch."""
    if dtype is not None:
        input = input.to(dtype)
    elif input.dtype.kind in "bui" and input.dtype != "int64":
        input = input.to("int64")
    if input.ndim == 0:
        if dim is not None:
            normalize_dims(dim, 0, "prod")
        return Prod(None, False)(input)
    axis = None if dim is None else normalize_dims(dim, input.ndim, "prod")[0]
    return Prod(axis, keepdim and dim is not None)(input)


# ---------------------------------------------------------------- amax / amin


class AMaxMin(Function):
    """Max or min over ``axes``; the gradient is split evenly among the tied extremes, as in PyTorch."""

    def __init__(self, axes: tuple[int, ...] | None, keepdims: bool, is_max: bool) -> None:
        self.axes, self.keepdims, self.is_max = axes, keepdims, is_max

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        axes = self.axes if x.ndim else None
        reduce = xp.max if self.is_max else xp.min
        y = xp.asarray(reduce(x, axis=axes, keepdims=True))
        self.x, self.y_kept = x, y
        return y if self.keepdims else y.reshape([n for i, n in enumerate(y.shape)
                                                  if axes is not None and i not in axes])

    def backward(self, gy: Any) -> Any:
        axes = self.axes if self.x.ndim else None
        mask = (self.x == self.y_kept).astype(gy.dtype)
        count = mask.sum(axis=axes, keepdims=True)
        return _expand_back(gy, self.x.shape, self.axes, self.keepdims) * mask / count


def _amax_amin(input: Tensor, dim: Any, keepdim: bool, is_max: bool) -> Tensor:
    name = "amax" if is_max else "amin"
    axes = normalize_dims(None if dim == () else dim, input.ndim, name)
    for a in axes if axes is not None else range(input.ndim):
        if input.shape[a] == 0:
            raise ShapeError(f"{name}: dim {a} of shape {tuple(input.shape)} is empty, so there is nothing to reduce")
    if input.dtype.kind not in "fc":
        xp = input._xp
        reduce = xp.max if is_max else xp.min
        return Tensor._make(xp.asarray(reduce(input.array, axis=axes if input.ndim else None, keepdims=keepdim)))
    return AMaxMin(axes, keepdim, is_max)(input)


def amax(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:  # noqa: A002
    """Maximum over ``dim`` (an int or tuple; all dims by default). Ties share the gradient."""
    return _amax_amin(input, dim, keepdim, True)


def amin(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:  # noqa: A002
    """Minimum over ``dim`` (an int or tuple; all dims by default). Ties share the gradient."""
    return _amax_amin(input, dim, keepdim, False)


MinMax = namedtuple("aminmax", ["min", "max"])


def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False) -> Any:  # noqa: A002
    """``(min, max)`` over one ``dim`` or all elements."""
    d = () if dim is None else dim
    return MinMax(amin(input, d, keepdim), amax(input, d, keepdim))


# ---------------------------------------------------------------- norms


class VectorNorm(Function):
    """``(sum |x|^p)^(1/p)`` over ``axes``, with p = inf/-inf the max/min of |x| and p = 0 the count of nonzeros.

    The gradient at a zero norm (and at zero elements for p < 1) is 0, as in PyTorch.
    """

    def __init__(self, p: float, axes: tuple[int, ...] | None, keepdims: bool) -> None:
        self.p, self.axes, self.keepdims = p, axes, keepdims

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        axes = self.axes if x.ndim else None
        a = xp.abs(x)
        p = self.p
        if p == math.inf:
            y = a.max(axis=axes, keepdims=True)
        elif p == -math.inf:
            y = a.min(axis=axes, keepdims=True)
        elif p == 0:
            y = (a != 0).sum(axis=axes, keepdims=True).astype(x.dtype)
        elif p == 1:
            y = a.sum(axis=axes, keepdims=True)
        elif p == 2:
            y = xp.sqrt((a * a).sum(axis=axes, keepdims=True))
        else:
            y = ((a**p).sum(axis=axes, keepdims=True)) ** (1 / p)
        y = xp.asarray(y).astype(x.dtype, copy=False)
        self.x, self.y_kept = x, y
        return y if self.keepdims else y.reshape([n for i, n in enumerate(y.shape)
                                                  if axes is not None and i not in axes])

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        x, y, p = self.x, self.y_kept, self.p
        axes = self.axes if x.ndim else None
        g = _expand_back(gy, x.shape, self.axes, self.keepdims)
        if p == 0:
            return xp.zeros_like(x)
        with np.errstate(all="ignore"):
            if p == 1:
                return g * xp.sign(x)
            if abs(p) == math.inf:
                mask = (xp.abs(x) == y).astype(x.dtype)
                return g * xp.sign(x) * mask / mask.sum(axis=axes, keepdims=True)
            if p == 2:
                scale = x / y
            else:
                a = xp.abs(x)
                scale = xp.sign(x) * a ** (p - 1) / y ** (p - 1)
            return g * xp.where((y == 0) | (x == 0), 0, scale)


def vector_norm(x: Tensor, ord: float = 2, dim: Any = None, keepdim: bool = False, *,  # noqa: A002
                dtype: Any = None) -> Tensor:
    """The vector ``ord``-norm over ``dim`` (all elements when None): ``(*) -> (*)`` minus the reduced dims."""
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype.kind not in "fc":
        raise TypeError(f"vector_norm: expected a floating point tensor, got {x.dtype}; convert it with .float()")
    p = float(ord)
    return VectorNorm(p, normalize_dims(dim, x.ndim, "norm"), keepdim)(x)


def norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False,  # noqa: A002
         dtype: Any = None) -> Tensor:
    """``torch.norm``: a vector p-norm (p a number, inf or -inf; 'fro' is the 2-norm over ``dim``) or, with
    ``p='nuc'``, the nuclear norm of the matrices over the two dims ``dim`` (the last two by default)."""
    if p == "nuc":
        from hubkit.ops.linalg import nuclear_norm

        return nuclear_norm(input if dtype is None else input.to(dtype), dim=dim, keepdim=keepdim)
    if p == "fro" or p is None:
        p = 2
    if isinstance(p, str):
        raise ArgumentError(f"norm: p must be a number, inf, -inf, 'fro' or 'nuc', got {p!r}")
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


def dist(input: Tensor, other: Tensor, p: float = 2) -> Tensor:  # noqa: A002
    """The p-norm of ``input - other`` (broadcast), a 0-d tensor."""
    from hubkit.ops.elementwise import sub

    return vector_norm(sub(input, other), p)


def count_nonzero(input: Tensor, dim: Any = None) -> Tensor:  # noqa: A002
    """The number of nonzero elements over ``dim`` (all when None), int64."""
    axes = normalize_dims(dim, input.ndim, "count_nonzero")
    xp = input._xp
    return Tensor._make(xp.asarray((input.array != 0).sum(axis=axes if input.ndim else None), dtype="int64"))


# ---------------------------------------------------------------- NaN-ignoring and paired reductions


def _without_nan(input: Tensor) -> Tensor:
    from hubkit.ops.elementwise import where

    return where(input._xp.isnan(input.array), 0.0, input) if input.dtype.kind == "f" else input


def nansum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A002
    """``sum`` treating NaN as zero (a NaN element gets no gradient)."""
    return sum(_without_nan(input), dim, keepdim, dtype=dtype)


def nanmean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A002
    """``mean`` over the non-NaN elements."""
    from hubkit.ops.elementwise import div

    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.kind not in "fc":
        raise TypeError(f"nanmean: expected a floating point tensor, got {input.dtype}; convert it with .float()")
    counts = Tensor._make(input._xp.asarray((~input._xp.isnan(input.array)).sum(
        axis=normalize_dims(dim, input.ndim, "nanmean") if input.ndim else None, keepdims=keepdim), dtype=input.dtype))
    return div(nansum(input, dim, keepdim), counts)


def std_mean(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,  # noqa: A002
             correction: float | None = None) -> tuple[Tensor, Tensor]:
    """``(std, mean)`` over ``dim`` in one call; same arguments as ``std``."""
    m_dim = None if isinstance(dim, bool) else dim
    return std(input, dim, unbiased, keepdim, correction=correction), mean(_float_input(input, "std_mean"),
                                                                           m_dim, keepdim)


def var_mean(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,  # noqa: A002
             correction: float | None = None) -> tuple[Tensor, Tensor]:
    """``(var, mean)`` over ``dim`` in one call; same arguments as ``var``."""
    m_dim = None if isinstance(dim, bool) else dim
    return var(input, dim, unbiased, keepdim, correction=correction), mean(_float_input(input, "var_mean"),
                                                                           m_dim, keepdim)


# ---------------------------------------------------------------- cumulative ops


def running(op: Any, x: Any, axis: int) -> Any:
    """The running ``op`` (an associative ufunc: maximum, minimum, logaddexp) of ``x`` along ``axis``.

    numpy's ``op.accumulate`` on the CPU; cupy's ``ufunc.accumulate`` supports only ``add``, so on CUDA a
    log-step scan (log2(n) elementwise launches) gives the same result.
    """
    if get_array_module(x) is np:
        return op.accumulate(x, axis=axis)
    return log_step_scan(op, x, axis)


def log_step_scan(op: Any, x: Any, axis: int) -> Any:
    """Hillis-Steele inclusive scan: after the step with shift s every entry combines the 2s entries up to it."""
    xp = get_array_module(x)
    y = xp.moveaxis(x, axis, -1).copy()
    shift = 1
    while shift < y.shape[-1]:
        combined = op(y[..., shift:], y[..., :-shift])
        y[..., shift:] = combined
        shift *= 2
    return xp.moveaxis(y, -1, axis)


def _scan_axis(input: Tensor, dim: int, op: str) -> tuple[Tensor, int]:
    """The tensor to scan (a 0-d input as one element) and its axis."""
    if input.ndim == 0:
        normalize_dims(dim, 0, op)
        return input.reshape(1), 0
    return input, normalize_dims(dim, input.ndim, op)[0]


class CumProd(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        y = get_array_module(x).cumprod(x, axis=self.axis)
        self.x, self.y = x, y
        return y

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        x, axis = self.x, self.axis
        if not (x == 0).any():  # d/dx_i sum_j gy_j y_j = (sum_{j >= i} gy_j y_j) / x_i
            return xp.flip(xp.cumsum(xp.flip(gy * self.y, axis), axis=axis), axis) / x
        # with zeros: grad_i = (prod_{k<i} x_k) * S_i, S_i = gy_i + x_{i+1} S_{i+1}, summed from the end
        xs, gs = xp.moveaxis(x, axis, -1), xp.moveaxis(gy, axis, -1)
        s = xp.empty_like(gs)
        s[..., -1] = gs[..., -1]
        for i in reversed(range(xs.shape[-1] - 1)):
            s[..., i] = gs[..., i] + xs[..., i + 1] * s[..., i + 1]
        return _exclusive_cumprod(xp, x, axis, False) * xp.moveaxis(s, -1, axis)


def cumprod(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:  # noqa: A002
    """Running product along ``dim``; integer and bool inputs give int64, as in PyTorch."""
    if dtype is not None:
        input = input.to(dtype)
    elif input.dtype.kind in "bui" and input.dtype != "int64":
        input = input.to("int64")
    x, axis = _scan_axis(input, dim, "cumprod")
    out = CumProd(axis)(x)
    return out.reshape(()) if input.ndim == 0 else out


class CumExtreme(Function):
    """Running max or min along ``axis`` with the index where it was reached (the latest of equal values,
    and a NaN once seen, as in PyTorch); the gradient goes to that index."""

    def __init__(self, axis: int, is_max: bool) -> None:
        self.axis, self.is_max = axis, is_max

    def forward(self, x: Any) -> tuple[Any, Any]:
        xp = get_array_module(x)
        values = running(xp.maximum if self.is_max else xp.minimum, x, self.axis)
        hit = x == values
        if x.dtype.kind == "f":
            hit = hit | xp.isnan(x)
        positions = xp.arange(x.shape[self.axis]).reshape([-1 if i == self.axis else 1 for i in range(x.ndim)])
        indices = running(xp.maximum, xp.where(hit, positions, 0), self.axis).astype("int64")
        self.indices, self.shape = indices, x.shape
        return values, indices

    def backward(self, gy: Any, _gi: Any) -> Any:
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        where = [self.indices if d == self.axis else xp.arange(n).reshape([-1 if i == d else 1
                                                                          for i in range(gy.ndim)])
                 for d, n in enumerate(gy.shape)]
        from hubkit._backend import scatter_add

        scatter_add(gx, tuple(where), gy)
        return gx


def _cum_extreme(input: Tensor, dim: int, is_max: bool) -> Any:
    x, axis = _scan_axis(input, dim, "cummax" if is_max else "cummin")
    values, indices = CumExtreme(axis, is_max)(x)
    if input.ndim == 0:
        values, indices = values.reshape(()), indices.reshape(())
    return ValuesIndices(values, indices)


def cummax(input: Tensor, dim: int) -> Any:  # noqa: A002
    """``(values, indices)`` of the running maximum along ``dim``."""
    return _cum_extreme(input, dim, True)


def cummin(input: Tensor, dim: int) -> Any:  # noqa: A002
    """``(values, indices)`` of the running minimum along ``dim``."""
    return _cum_extreme(input, dim, False)


class LogCumSumExp(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        y = running(get_array_module(x).logaddexp, x, self.axis)
        self.x, self.y = x, y
        return y

    def backward(self, gy: Any) -> Any:
        # dy_j/dx_i = exp(x_i - y_j) for j >= i, so gx_i = exp(x_i) * sum_{j>=i} gy_j exp(-y_j). The sum is
        # taken in log space, positive and negative gy apart, by a reversed logcumsumexp, so that
        # exp(x_i + log-sum) neither overflows nor turns 0 * inf into NaN.
        xp = get_array_module(gy)
        axis = self.axis

        def reversed_logcumsumexp(v: Any) -> Any:
            return xp.flip(running(xp.logaddexp, xp.flip(v, axis), axis), axis)

        with np.errstate(all="ignore"):
            pos = xp.where(gy > 0, xp.log(xp.where(gy > 0, gy, 1)) - self.y, -xp.inf)
            neg = xp.where(gy < 0, xp.log(xp.where(gy < 0, -gy, 1)) - self.y, -xp.inf)
            return xp.exp(self.x + reversed_logcumsumexp(pos)) - xp.exp(self.x + reversed_logcumsumexp(neg))


def logcumsumexp(input: Tensor, dim: int) -> Tensor:  # noqa: A002
    """``log(cumsum(exp(input), dim))`` computed stably."""
    x, axis = _scan_axis(_float_input(input, "logcumsumexp"), dim, "logcumsumexp")
    out = LogCumSumExp(axis)(x)
    return out.reshape(()) if input.ndim == 0 else out

# ---------------------------------------------------------------- covariance and renorm


def cov(input: Tensor, *, correction: int = 1, fweights: Tensor | None = None,  # noqa: A002
        aweights: Tensor | None = None) -> Tensor:
    """The covariance matrix of the variables in the rows of ``input`` ``(V, N)`` (N observations each)
    -> ``(V, V)``; a 1-d input is one variable (a 0-d result). Optional integer frequency weights and
    float observation weights, as in numpy.cov."""
    from hubkit.ops.elementwise import div, mul, sub
    from hubkit.ops.linalg import matmul

    if input.ndim > 2:
        raise ShapeError(f"cov: expects a 1-d or 2-d tensor, got shape {tuple(input.shape)}")
    x = _float_input(input, "cov")
    x2 = x.reshape(1, -1) if x.ndim < 2 else x
    n = x2.shape[1]
    xp = x._xp
    w = None
    for name, weights in (("fweights", fweights), ("aweights", aweights)):
        if weights is not None:
            if weights.ndim != 1 or weights.shape[0] != n:
                raise ShapeError(f"cov: {name} must be 1-d with {n} entries, got shape {tuple(weights.shape)}")
            if bool((weights.array < 0).any()):
                raise ArgumentError(f"cov: {name} must be non-negative")
            arr = weights.array.astype(x.dtype)
            w = arr if w is None else w * arr
    w = xp.ones(n, dtype=x.dtype) if w is None else w
    w_sum = w.sum()
    avg = div(sum(mul(x2, Tensor._make(w)), 1, keepdim=True), Tensor._make(xp.asarray(w_sum)))
    if aweights is None:
        norm = w_sum - correction
    else:
        norm = w_sum - correction * (w * aweights.array.astype(x.dtype)).sum() / w_sum
    centred = sub(x2, avg)
    c = div(matmul(mul(centred, Tensor._make(w)), centred.mT), Tensor._make(xp.asarray(builtins.max(norm, 0), x.dtype)))
    return c.reshape(()) if x.ndim < 2 else c


def corrcoef(input: Tensor) -> Tensor:  # noqa: A002
    """Pearson correlation coefficients of the rows of ``input`` ``(V, N)`` -> ``(V, V)``, clipped to [-1, 1]."""
    from hubkit.ops.elementwise import clamp, div, sqrt
    from hubkit.ops.matrix import diagonal

    c = cov(input)
    if c.ndim == 0:
        return div(c, c)
    d = sqrt(diagonal(c))
    return clamp(div(div(c, d.reshape(-1, 1)), d.reshape(1, -1)), -1, 1)


def renorm(input: Tensor, p: float, dim: int, maxnorm: float) -> Tensor:  # noqa: A002
    """Each slice along ``dim`` rescaled so its p-norm is at most ``maxnorm`` (slices within it are kept)."""
    from hubkit.ops.elementwise import add, div, mul, where

    axis = normalize_dims(dim, input.ndim, "renorm")[0]
    others = tuple(i for i in range(input.ndim) if i != axis)
    norms = vector_norm(input, p, others, keepdim=True)
    # PyTorch's factor, differentiated through the norm: maxnorm / (norm + 1e-7) where the norm exceeds maxnorm
    factor = where(norms.array > maxnorm, div(maxnorm, add(norms, 1e-7)), 1.0)
    return mul(input, factor)
