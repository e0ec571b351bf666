"""Ordering ops: sort, argsort, msort, topk, kthvalue, median, nanmedian, mode, quantile, nanquantile,
and the counting/searching ops unique, unique_consecutive, searchsorted, bucketize, histc, histogram,
bincount.

Sorting is stable, so ties keep their input order (descending sorts too) and NaN sorts as the largest
value, as in PyTorch. The selecting ops are differentiable: the gradient of each chosen value goes
back to the position it was taken from. Counting and searching ops return integer tensors.
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any

import numpy as np

from hubkit import _config
from hubkit._backend import get_array_module, scatter_add
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.ops.reduction import ValuesIndices, normalize_dims, running
from hubkit.tensor import Tensor

# ---------------------------------------------------------------- sort


def _stable_argsort(xp: Any, x: Any, axis: int, descending: bool) -> Any:
    if not descending:
        return xp.argsort(x, axis=axis, kind="stable")
    # ascending on the reversed array, reversed back: descending, and equal values keep their order
    n = x.shape[axis]
    order = xp.argsort(xp.flip(x, axis), axis=axis, kind="stable")
    return xp.flip(n - 1 - order, axis)


class TakeAlong(Function):
    """``x`` picked at ``indices`` along ``axis`` (take_along_axis); the gradient is scattered back."""

    def __init__(self, indices: Any, axis: int) -> None:
        self.indices, self.axis = indices, axis

    def forward(self, x: Any) -> Any:
        self.shape = x.shape
        return get_array_module(x).take_along_axis(x, self.indices, axis=self.axis)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        where = [self.indices if d == self.axis else
                 xp.arange(n).reshape([-1 if i == d else 1 for i in range(gy.ndim)])
                 for d, n in enumerate(self.indices.shape)]
        scatter_add(gx, tuple(where), gy)
        return gx


def take_along(input: Tensor, indices: Any, axis: int) -> Tensor:  # noqa: A002
    """Differentiable ``take_along_axis`` on raw indices (shared by the selecting ops)."""
    return TakeAlong(indices, axis)(input)


def _axis(input: Tensor, dim: int, op: str) -> int:
    return normalize_dims(dim, input.ndim, op)[0] if input.ndim else 0


def _as_1d(input: Tensor) -> Tensor:
    return input.reshape(1) if input.ndim == 0 else input


SortResult = namedtuple("sort", ["values", "indices"])


def sort(input: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Any:  # noqa: A002
    """``(values, indices)`` sorted along ``dim``; stable (``stable`` is accepted: hubkit always is)."""
    axis = _axis(input, dim, "sort")
    x = _as_1d(input)
    idx = _stable_argsort(x._xp, x.array, axis, descending)
    values = take_along(x, idx, axis)
    indices = Tensor._make(idx.astype("int64", copy=False))
    if input.ndim == 0:
        values, indices = values.reshape(()), indices.reshape(())
    return SortResult(values, indices)


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:  # noqa: A002
    """The indices that sort ``input`` along ``dim`` (stable)."""
    return sort(input, dim, descending).indices


def msort(input: Tensor) -> Tensor:  # noqa: A002
    """``input`` sorted along dim 0."""
    return sort(input, 0).values


TopK = namedtuple("topk", ["values", "indices"])


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002
    """The ``k`` largest (or smallest) entries along ``dim`` and their indices, largest first."""
    axis = _axis(input, dim, "topk")
    x = _as_1d(input)
    n = x.shape[axis]
    if not 0 <= k <= n:
        raise ShapeError(f"topk: k ({k}) is out of range for dim {dim} of size {n}")
    idx = _stable_argsort(x._xp, x.array, axis, descending=largest)
    idx = x._xp.take(idx, x._xp.arange(k), axis=axis)
    values = take_along(x, idx, axis)
    indices = Tensor._make(idx.astype("int64", copy=False))
    if input.ndim == 0:
        values, indices = values.reshape(()), indices.reshape(())
    return TopK(values, indices)


def _pick(input: Tensor, position: Any, axis: int, keepdim: bool, order: Any) -> tuple[Tensor, Tensor]:
    """The entries at ``position`` (an int or an array broadcast along ``axis``) of the sorted order."""
    xp = input._xp
    x = _as_1d(input)
    pos = xp.asarray(position).reshape([1] * x.ndim) if np.ndim(position) == 0 else xp.expand_dims(position, axis)
    pos = xp.broadcast_to(pos, x.shape[:axis] + (1,) + x.shape[axis + 1:])
    idx = xp.take_along_axis(order, pos, axis=axis)
    values = take_along(x, idx, axis)
    indices = Tensor._make(idx.astype("int64", copy=False))
    if not keepdim or input.ndim == 0:
        shape = tuple(n for i, n in enumerate(x.shape) if i != axis) if input.ndim else ()
        values, indices = values.reshape(shape), indices.reshape(shape)
    return values, indices


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> Any:  # noqa: A002
    """``(values, indices)`` of the k-th smallest entry (1-based) along ``dim``."""
    axis = _axis(input, dim, "kthvalue")
    x = _as_1d(input)
    n = x.shape[axis]
    if not 1 <= k <= n:
        raise ShapeError(f"kthvalue: k ({k}) is out of range for dim {dim} of size {n}")
    order = _stable_argsort(x._xp, x.array, axis, False)
    return ValuesIndices(*_pick(input, k - 1, axis, keepdim, order))


def _median(input: Tensor, dim: Any, keepdim: bool, ignore_nan: bool) -> Any:
    name = "nanmedian" if ignore_nan else "median"
    if dim is None:
        flat = input.reshape(-1)
        if flat.shape[0] == 0:
            raise ShapeError(f"{name}: the tensor is empty")
        return _median(flat, 0, False, ignore_nan).values
    axis = _axis(input, dim, name)
    x = _as_1d(input)
    xp = x._xp
    n = x.shape[axis]
    if n == 0:
        raise ShapeError(f"{name}: dim {dim} of shape {tuple(input.shape)} is empty")
    order = _stable_argsort(xp, x.array, axis, False)  # NaNs sort last
    nan = xp.isnan(x.array) if x.dtype.kind == "f" else xp.zeros(x.shape, dtype=bool)
    if ignore_nan:
        count = n - nan.sum(axis=axis)
        position = xp.maximum((count - 1) // 2, 0)
    else:  # any NaN makes the median NaN: pick the first NaN
        position = xp.where(nan.any(axis=axis), n - nan.sum(axis=axis), (n - 1) // 2)
    return ValuesIndices(*_pick(input, position, axis, keepdim, order))


def median(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:  # noqa: A002
    """The lower median: of all elements (a 0-d tensor), or ``(values, indices)`` along ``dim``. NaN propagates."""
    return _median(input, dim, keepdim, ignore_nan=False)


def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:  # noqa: A002
    """``median`` ignoring NaN (NaN only where a whole slice is NaN)."""
    return _median(input, dim, keepdim, ignore_nan=True)


def mode(input: Tensor, dim: int = -1, keepdim: bool = False) -> Any:  # noqa: A002
    """``(values, indices)``: the most frequent value along ``dim`` (the smallest of equally frequent ones)
    and the index of its last occurrence."""
    axis = _axis(input, dim, "mode")
    x = _as_1d(input)
    xp = x._xp
    n = x.shape[axis]
    if n == 0:
        raise ShapeError(f"mode: dim {dim} of shape {tuple(input.shape)} is empty")
    order = xp.argsort(x.array, axis=axis, kind="stable")
    s = xp.moveaxis(xp.take_along_axis(x.array, order, axis=axis), axis, -1)
    positions = xp.arange(n)
    new_run = xp.concatenate([xp.ones(s.shape[:-1] + (1,), dtype=bool), s[..., 1:] != s[..., :-1]], axis=-1)
    run_start = running(xp.maximum, xp.where(new_run, positions, 0), -1)
    run_end_flag = xp.concatenate([new_run[..., 1:], xp.ones(s.shape[:-1] + (1,), dtype=bool)], axis=-1)
    run_end = xp.flip(running(xp.minimum, xp.flip(xp.where(run_end_flag, positions, n), -1), -1), -1)
    length = xp.where(run_end_flag, run_end - run_start + 1, 0)
    best_end = xp.argmax(length, axis=-1)  # the first longest run: the smallest value among the most frequent
    return ValuesIndices(*_pick(input, best_end, axis, keepdim, order))


# ---------------------------------------------------------------- quantile

_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(input: Tensor, q: Any, dim: int | None, keepdim: bool, interpolation: str, ignore_nan: bool) -> Tensor:
    from hubkit.ops.elementwise import add, mul, where

    name = "nanquantile" if ignore_nan else "quantile"
    if interpolation not in _INTERPOLATIONS:
        raise ArgumentError(f"{name}: interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    if input.dtype.kind != "f":
        raise DTypeError(f"{name}: expected a floating-point input, got {input.dtype}")
    xp = input._xp
    scalar_q = not isinstance(q, Tensor)
    qs = xp.asarray([q] if scalar_q else q.array, dtype=input.dtype).reshape(-1)
    if not scalar_q and q.ndim > 1:
        raise ShapeError(f"{name}: q must be a number or a 0-d/1-d tensor, got shape {tuple(q.shape)}")
    if bool(((qs < 0) | (qs > 1)).any()):
        raise ArgumentError(f"{name}: q values must be in [0, 1], got {qs.tolist()}")
    x = input.reshape(-1) if dim is None else _as_1d(input)
    axis = 0 if dim is None else _axis(input, dim, name)
    values = sort(x, axis).values
    nan = xp.isnan(x.array)
    count = xp.expand_dims(x.shape[axis] - nan.sum(axis=axis) if ignore_nan else
                           xp.full(nan.sum(axis=axis).shape, x.shape[axis]), axis)
    out_list = []
    for qv in qs.tolist():
        rank = qv * (xp.maximum(count, 1) - 1)
        lo = xp.floor(rank).astype("int64")
        hi = xp.ceil(rank).astype("int64")
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = xp.round(rank).astype("int64")
        weight = (rank - lo) if interpolation == "linear" else xp.full(rank.shape, 0.5 if interpolation == "midpoint"
                                                                       else 0.0)
        a = take_along(values, xp.broadcast_to(lo, rank.shape), axis)
        b = take_along(values, xp.broadcast_to(hi, rank.shape), axis)
        w = Tensor._make(weight.astype(input.dtype))
        result = add(mul(a, 1 - w), mul(b, w))
        # quantile: any NaN in a slice makes it NaN; nanquantile: only an all-NaN slice
        bad = (count == 0) if ignore_nan else nan.any(axis=axis, keepdims=True)
        result = where(bad, float("nan"), result)
        if not keepdim:
            result = result.reshape(tuple(n for i, n in enumerate(result.shape) if i != axis))
        elif dim is None:
            result = result.reshape((1,) * input.ndim)
        out_list.append(result)
    if scalar_q:
        return out_list[0]
    from hubkit.ops.shape import stack

    return stack(out_list, 0)


def quantile(input: Tensor, q: Any, dim: int | None = None, keepdim: bool = False, *,  # noqa: A002
             interpolation: str = "linear") -> Tensor:
    """The ``q``-quantiles (a number or a 1-d tensor in [0, 1]) along ``dim`` (all elements when None).

    A 1-d ``q`` adds a leading dim of its length. ``interpolation``: linear, lower, higher, midpoint, nearest.
    """
    return _quantile(input, q, dim, keepdim, interpolation, ignore_nan=False)


def nanquantile(input: Tensor, q: Any, dim: int | None = None, keepdim: bool = False, *,  # noqa: A002
                interpolation: str = "linear") -> Tensor:
    """``quantile`` ignoring NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, ignore_nan=True)


# ---------------------------------------------------------------- unique


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim: int | None = None) -> Any:
    """The distinct values (sorted), or distinct slices along ``dim``; optionally with the inverse indices
    (``input`` rebuilt as ``values[inverse]``) and the counts. Not differentiable."""
    xp = input._xp
    axis = None if dim is None else _axis(input, dim, "unique")
    values, inverse, counts = xp.unique(input.array, return_inverse=True, return_counts=True, axis=axis)
    out = [Tensor._make(values)]
    if return_inverse:
        inv = inverse.reshape(input.shape) if axis is None else inverse.reshape(-1)
        out.append(Tensor._make(inv.astype("int64", copy=False)))
    if return_counts:
        out.append(Tensor._make(counts.astype("int64", copy=False)))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(input: Tensor, return_inverse: bool = False, return_counts: bool = False,  # noqa: A002
                       dim: int | None = None) -> Any:
    """Collapse runs of equal consecutive values (or slices along ``dim``) to one. Not differentiable."""
    xp = input._xp
    if dim is None:
        flat = input.array.reshape(-1)
        axis = 0
    else:
        axis = _axis(input, dim, "unique_consecutive")
        flat = input.array
    n = flat.shape[axis]
    moved = xp.moveaxis(flat, axis, 0).reshape(n, -1)
    change = xp.ones(n, dtype=bool)
    if n > 1:
        change[1:] = (moved[1:] != moved[:-1]).any(axis=1)
    starts = xp.nonzero(change)[0]
    out = [Tensor._make(xp.take(flat, starts, axis=axis))]
    if return_inverse:
        inv = xp.cumsum(change) - 1
        out.append(Tensor._make((inv.reshape(input.shape) if dim is None else inv).astype("int64")))
    if return_counts:
        out.append(Tensor._make(xp.diff(xp.concatenate([starts, xp.asarray([n])])).astype("int64")))
    return out[0] if len(out) == 1 else tuple(out)


# ---------------------------------------------------------------- searching and counting


def searchsorted(sorted_sequence: Tensor, input: Any, *, out_int32: bool = False, right: bool = False,  # noqa: A002
                 side: str | None = None, sorter: Tensor | None = None) -> Tensor:
    """Insertion indices of ``input`` into the last dim of ``sorted_sequence`` (1-d, or N-d with matching
    leading dims). ``right`` (or ``side='right'``) puts equal values after the existing ones."""
    if side is not None:
        if side not in ("left", "right"):
            raise ArgumentError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise ArgumentError("searchsorted: side='left' contradicts right=True")
        right = side == "right"
    xp = sorted_sequence._xp
    seq = sorted_sequence.array
    if sorter is not None:
        seq = xp.take_along_axis(seq, sorter.array, axis=-1)
    values = input.array if isinstance(input, Tensor) else xp.asarray(input)
    how = "right" if right else "left"
    if seq.ndim <= 1:
        result = xp.searchsorted(seq, values, side=how)
    else:
        if values.shape[:-1] != seq.shape[:-1]:
            raise ShapeError(f"searchsorted: the leading dims of sorted_sequence {tuple(seq.shape)} and input "
                             f"{tuple(values.shape)} must match")
        rows_s = seq.reshape(-1, seq.shape[-1])
        rows_v = values.reshape(-1, values.shape[-1])
        result = xp.stack([xp.searchsorted(s, v, side=how) for s, v in zip(rows_s, rows_v)]).reshape(values.shape)
    return Tensor._make(xp.asarray(result).astype("int32" if out_int32 else "int64"))


def bucketize(input: Any, boundaries: Tensor, *, out_int32: bool = False, right: bool = False) -> Tensor:  # noqa: A002
    """The bucket of each element given 1-d increasing ``boundaries``: i with ``b[i-1] < x <= b[i]``
    (``b[i-1] <= x < b[i]`` with ``right``)."""
    if boundaries.ndim != 1:
        raise ShapeError(f"bucketize: boundaries must be 1-d, got shape {tuple(boundaries.shape)}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:  # noqa: A002
    """Counts of each value in a 1-d non-negative integer tensor (sums of ``weights`` when given)."""
    if input.ndim != 1 or input.dtype.kind not in "iub":
        raise ShapeError(f"bincount: expected a 1-d integer tensor, got shape {tuple(input.shape)} {input.dtype}")
    xp = input._xp
    if input.array.size and int(input.array.min()) < 0:
        raise ArgumentError("bincount: input must contain only non-negative integers")
    if weights is None:
        return Tensor._make(xp.bincount(input.array, minlength=minlength).astype("int64"))
    out_dtype = weights.dtype if weights.dtype.kind == "f" else np.dtype("float64")
    if xp is not np and _config.are_deterministic_algorithms_enabled():  # cupy's weighted bincount adds atomically
        size = builtins.max(minlength, int(input.array.max()) + 1 if input.array.size else 0)
        out = xp.zeros(size, dtype=out_dtype)
        scatter_add(out, input.array, weights.array.astype(out_dtype, copy=False))
        return Tensor._make(out)
    return Tensor._make(xp.bincount(input.array, weights=weights.array, minlength=minlength).astype(out_dtype))


def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:  # noqa: A001,A002
    """A histogram of ``bins`` equal bins over [min, max] (the data's range when both are 0); values
    outside are ignored. Same floating dtype as ``input``."""
    if input.dtype.kind != "f":
        raise DTypeError(f"histc: expected a floating-point tensor, got {input.dtype}")
    xp = input._xp
    lo, hi = builtins.float(min), builtins.float(max)
    if lo == hi == 0 and input.array.size:
        lo, hi = builtins.float(input.array.min()), builtins.float(input.array.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise ArgumentError(f"histc: max ({max}) must be larger than min ({min})")
    counts, _ = xp.histogram(input.array, bins=bins, range=(lo, hi))
    return Tensor._make(counts.astype(input.dtype))


HistogramResult = namedtuple("histogram", ["hist", "bin_edges"])


def histogram(input: Tensor, bins: Any = 100, *, range: tuple[float, float] | None = None,  # noqa: A001,A002
              weight: Tensor | None = None, density: bool = False) -> Any:
    """``(hist, bin_edges)``: ``bins`` equal bins over ``range`` (default: the data's range), or the given
    1-d tensor of edges. Not differentiable."""
    xp = input._xp
    edges = bins.array if isinstance(bins, Tensor) else bins
    if xp is not np and weight is not None and _config.are_deterministic_algorithms_enabled():
        # cupy sums the weights with atomics; numpy's sequential sum is deterministic
        host = histogram(input.cpu(), bins.cpu() if isinstance(bins, Tensor) else bins, range=range,
                         weight=weight.cpu(), density=density)
        return HistogramResult(host.hist.to(input.device), host.bin_edges.to(input.device))
    hist, edge_out = xp.histogram(input.array, bins=edges, range=range,
                                  weights=None if weight is None else weight.array, density=density)
    return HistogramResult(Tensor._make(hist.astype(input.dtype)), Tensor._make(edge_out.astype(input.dtype)))

