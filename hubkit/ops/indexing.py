"""Indexing ops (torch's "Indexing, Slicing, Joining, Mutating Ops" beyond ``x[...]`` and gather):
index_select, masked_select, take, take_along_dim, narrow, select, nonzero/argwhere, the scatter
family (scatter, scatter_add, scatter_reduce, index_add, index_copy, index_fill, index_reduce,
index_put, put, masked_scatter) and the ``*_scatter`` embeddings (select/slice/diagonal_scatter).

Every op returns a new tensor (the Tensor methods ``scatter_``, ``index_add_``, ... are the in-place
variants bound by the op table). Gradients flow to the input and to the source values; positions that
are overwritten pass no gradient to the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hubkit._backend import CPU, device_of, get_array_module, to_device
from hubkit._backend import scatter_add as add_at
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, IndexOutOfRangeError, ShapeError
from hubkit.ops import shape as sh
from hubkit.ops.reduction import normalize_dims
from hubkit.tensor import Tensor


def _axis(input: Tensor, dim: int, op: str) -> int:
    return normalize_dims(dim, input.ndim, op)[0] if input.ndim else 0


def _index_array(index: Any, xp: Any, op: str) -> Any:
    idx = xp.asarray(index.array if isinstance(index, Tensor) else index)
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{op}: index must be an integer tensor, got {idx.dtype}")
    return idx


def _check_range(op: str, idx: Any, size: int, allow_negative: bool = False) -> Any:
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        low_ok = lo >= (-size if allow_negative else 0)
        if not low_ok or hi >= size:
            bad = lo if not low_ok else hi
            raise IndexOutOfRangeError(f"{op}: index {bad} is out of bounds for a dim of size {size}")
    return idx % size if allow_negative and idx.size else idx


# ---------------------------------------------------------------- selecting


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:  # noqa: A002
    """The entries at the 1-d ``index`` along ``dim``: ``(*, n, *) -> (*, len(index), *)``."""
    xp = input._xp
    idx = _index_array(index, xp, "index_select")
    if idx.ndim > 1:
        raise ShapeError(f"index_select: index must be 0-d or 1-d, got shape {tuple(idx.shape)}")
    x = input.reshape(1) if input.ndim == 0 else input
    axis = _axis(input, dim, "index_select")
    idx = _check_range("index_select", idx.reshape(-1), x.shape[axis])
    out = sh.getitem(x, (slice(None),) * axis + (idx,))
    return out.reshape(()) if input.ndim == 0 else out


def masked_select(input: Tensor, mask: Tensor) -> Tensor:  # noqa: A002
    """The entries where the bool ``mask`` (broadcast with ``input``) is True, as a 1-d tensor."""
    xp = input._xp
    m = xp.asarray(mask.array if isinstance(mask, Tensor) else mask)
    if m.dtype != bool:
        raise DTypeError(f"masked_select: mask must be a bool tensor, got {m.dtype}")
    shape = np.broadcast_shapes(input.shape, m.shape)
    x = input if input.shape == shape else sh.expand(input, *shape)
    return sh.getitem(x, xp.broadcast_to(m, shape))


def take(input: Tensor, index: Tensor) -> Tensor:  # noqa: A002
    """``input`` read as 1-d at ``index`` (any shape; negative indices count from the end)."""
    idx = _index_array(index, input._xp, "take")
    flat = input.reshape(-1)
    idx = _check_range("take", idx, flat.shape[0], allow_negative=True)
    return sh.getitem(flat, idx)


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:  # noqa: A002
    """``input`` picked at ``indices`` along ``dim`` (both flattened when None); other dims broadcast."""
    from hubkit.ops.order import take_along

    xp = input._xp
    idx = _index_array(indices, xp, "take_along_dim")
    if dim is None:
        flat = input.reshape(-1)
        return take_along(flat, _check_range("take_along_dim", idx.reshape(-1), flat.shape[0], True), 0)
    if idx.ndim != input.ndim:
        raise ShapeError(f"take_along_dim: input {tuple(input.shape)} and indices {tuple(idx.shape)} must have "
                         "the same number of dims")
    axis = _axis(input, dim, "take_along_dim")
    other = np.broadcast_shapes(tuple(1 if i == axis else n for i, n in enumerate(input.shape)),
                                tuple(1 if i == axis else n for i, n in enumerate(idx.shape)))
    x_shape = tuple(input.shape[axis] if i == axis else n for i, n in enumerate(other))
    i_shape = tuple(idx.shape[axis] if i == axis else n for i, n in enumerate(other))
    x = input if input.shape == x_shape else sh.expand(input, *x_shape)
    idx = _check_range("take_along_dim", xp.broadcast_to(idx, i_shape), input.shape[axis], True)
    return take_along(x, idx, axis)


def narrow(input: Tensor, dim: int, start: Any, length: int) -> Tensor:  # noqa: A002
    """``length`` entries of ``dim`` from ``start`` (which may be negative or a 0-d tensor)."""
    axis = _axis(input, dim, "narrow")
    n = input.shape[axis]
    start = int(start)
    if start < 0:
        start += n
    if not (0 <= start <= n and length >= 0 and start + length <= n):
        raise IndexOutOfRangeError(f"narrow: start {start} + length {length} exceeds dim {dim} of size {n}")
    return sh.getitem(input, (slice(None),) * axis + (slice(start, start + length),))


def narrow_copy(input: Tensor, dim: int, start: Any, length: int) -> Tensor:  # noqa: A002
    return narrow(input, dim, start, length).clone()


def select(input: Tensor, dim: int, index: int) -> Tensor:  # noqa: A002
    """The slice at ``index`` of ``dim``, without that dim."""
    axis = _axis(input, dim, "select")
    n = input.shape[axis]
    if not -n <= int(index) < n:
        raise IndexOutOfRangeError(f"select: index {int(index)} is out of range for dim {dim} of size {n}")
    return sh.getitem(input, (slice(None),) * axis + (int(index),))


def nonzero(input: Tensor, *, as_tuple: bool = False) -> Any:  # noqa: A002
    """Indices of the nonzero entries: an ``(n, ndim)`` int64 tensor, or one 1-d tensor per dim."""
    xp = input._xp
    parts = xp.nonzero(input.array.reshape(1) if input.ndim == 0 else input.array)
    parts = [p.astype("int64", copy=False) for p in parts]
    if as_tuple:
        return tuple(Tensor._make(p) for p in parts)
    if input.ndim == 0:
        return Tensor._make(xp.zeros((len(parts[0]), 0), dtype="int64"))
    return Tensor._make(xp.stack(parts, axis=1) if parts else xp.zeros((0, 0), dtype="int64"))


def argwhere(input: Tensor) -> Tensor:  # noqa: A002
    """``nonzero(input)``: an ``(n, ndim)`` int64 tensor of the positions of nonzero entries."""
    return nonzero(input)


# ---------------------------------------------------------------- the scatter family


def reduce_at(ufunc: str, target: Any, index: tuple, values: Any) -> None:
    """``target[index] = ufunc(target[index], values)`` in place with repeated positions combining in, for
    ``ufunc`` 'multiply', 'maximum' or 'minimum' (numpy's ``ufunc.at``).

    cupy's ``ufunc.at`` has no ``multiply``, and its ``maximum``/``minimum`` round float64 through float32,
    so a CUDA array makes one round trip through the host (these ops are rare; ``add`` has its own seam).
    """
    if get_array_module(target) is np:
        getattr(np, ufunc).at(target, index, values)
        return
    host = to_device(target, CPU)
    getattr(np, ufunc).at(host, tuple(to_device(i, CPU) for i in index), to_device(values, CPU))
    target[...] = to_device(host, device_of(target))


def multiply_at(target: Any, index: tuple, values: Any) -> None:
    """``target[index] *= values`` in place, repeated positions multiplying in."""
    reduce_at("multiply", target, index, values)


def _scatter_where(xp: Any, idx: Any, axis: int) -> tuple[Any, ...]:
    """The positions ``index`` addresses: ``idx`` along ``axis``, its own coordinates elsewhere."""
    return tuple(idx if d == axis else
                 xp.broadcast_to(xp.arange(n).reshape([-1 if i == d else 1 for i in range(idx.ndim)]), idx.shape)
                 for d, n in enumerate(idx.shape))


def _block(a: Any, shape: tuple[int, ...]) -> Any:
    """The leading block of ``a`` with ``shape`` (PyTorch uses only that part of ``src``)."""
    return a[tuple(slice(0, n) for n in shape)]


class Scatter(Function):
    """``out = x`` with ``out[where] = src[block]`` (``reduce`` 'add' or 'multiply' combines instead)."""

    def __init__(self, where: tuple, reduce: str | None) -> None:
        self.where, self.reduce = where, reduce

    def forward(self, x: Any, src: Any) -> Any:
        xp = get_array_module(x)
        shape = self.where[0].shape
        block = xp.broadcast_to(src, shape) if src.ndim == 0 else _block(src, shape)
        self.src_shape = src.shape
        out = x.copy()
        if self.reduce is None:
            out[self.where] = block
        elif self.reduce == "add":
            add_at(out, self.where, block)
        else:
            multiply_at(out, self.where, block)
        return out

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        gx = gsrc = None
        if self.needs_input_grad[0]:
            gx = gy.copy()
            if self.reduce is None:
                gx[self.where] = 0
        if self.needs_input_grad[1]:
            picked = gy[self.where]
            if len(self.src_shape) == 0:
                gsrc = picked.sum()
            else:
                gsrc = xp.zeros(self.src_shape, dtype=gy.dtype)
                gsrc[tuple(slice(0, n) for n in picked.shape)] = picked
        return gx, gsrc


def _scatter_setup(op: str, input: Tensor, dim: int, index: Tensor, src: Any) -> tuple[tuple, Any]:
    xp = input._xp
    idx = _index_array(index, xp, op)
    axis = _axis(input, dim, op)
    if idx.ndim != input.ndim:
        raise ShapeError(f"{op}: index {tuple(idx.shape)} must have as many dims as input {tuple(input.shape)}")
    for d, n in enumerate(idx.shape):
        if d != axis and n > input.shape[d]:
            raise ShapeError(f"{op}: index {tuple(idx.shape)} is larger than input {tuple(input.shape)} in dim {d}")
        if isinstance(src, Tensor) and src.ndim and n > src.shape[d]:
            raise ShapeError(f"{op}: index {tuple(idx.shape)} is larger than src {tuple(src.shape)} in dim {d}")
    _check_range(op, idx, input.shape[axis])
    return _scatter_where(xp, idx, axis), xp


def _as_source(value: Any, like: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        return value if value.dtype == like.dtype else value.to(like.dtype)
    return Tensor._make(like._xp.asarray(value, dtype=like.dtype))


def scatter(input: Tensor, dim: int, index: Tensor, src: Any = None, *, value: Any = None,  # noqa: A002
            reduce: str | None = None) -> Tensor:
    """``out[..., index[i, j, k], ...] = src[i, j, k]`` along ``dim``; ``src`` a tensor or a number (``value``).

    ``reduce`` 'add' or 'multiply' combines with the existing entries instead of overwriting them.
    """
    if src is None:
        src = value
    if src is None:
        raise ArgumentError("scatter: pass src (a tensor or a number) or value=")
    if reduce not in (None, "add", "multiply"):
        raise ArgumentError(f"scatter: reduce must be None, 'add' or 'multiply', got {reduce!r}")
    where, _ = _scatter_setup("scatter", input, dim, index, src)
    return Scatter(where, reduce)(input, _as_source(src, input))


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:  # noqa: A002
    """``out = input`` with ``src[i, j, k]`` added at ``index[i, j, k]`` along ``dim`` (repeats accumulate)."""
    where, _ = _scatter_setup("scatter_add", input, dim, index, src)
    return Scatter(where, "add")(input, _as_source(src, input))


_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


class ScatterReduce(Function):
    """``out[p] = reduce(input[p] (when include_self), src values sent to p)`` for every addressed p."""

    def __init__(self, where: tuple, reduce: str, include_self: bool) -> None:
        self.where, self.reduce, self.include_self = where, reduce, include_self

    def forward(self, x: Any, src: Any) -> Any:
        xp = get_array_module(x)
        block = _block(src, self.where[0].shape)
        self.src_shape = src.shape
        touched = xp.zeros(x.shape, dtype=bool)
        touched[self.where] = True
        out = x.copy()
        if not self.include_self:  # start every addressed position from the reduction's identity
            identity = {"sum": 0, "mean": 0, "prod": 1, "amax": -np.inf, "amin": np.inf}[self.reduce]
            if x.dtype.kind != "f" and self.reduce in ("amax", "amin"):
                info = np.iinfo(x.dtype)
                identity = info.min if self.reduce == "amax" else info.max
            out[touched] = identity
        if self.reduce in ("sum", "mean"):  # the scatter-add seam: deterministic on CUDA when that is asked for
            add_at(out, self.where, block)
        else:
            reduce_at({"prod": "multiply", "amax": "maximum", "amin": "minimum"}[self.reduce], out, self.where, block)
        count = None
        if self.reduce == "mean":
            count = xp.zeros(x.shape, dtype=x.dtype)
            add_at(count, self.where, xp.ones(block.shape, dtype=x.dtype))
            if self.include_self:
                count = count + touched
            count = xp.where(touched, count, 1)
            out = out / count if x.dtype.kind == "f" else out // count
        self.x, self.block, self.out, self.touched, self.count = x, block, out, touched, count
        return out

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        x, block, out, where = self.x, self.block, self.out, self.where
        keep_self = ~self.touched if not self.include_self else xp.ones(x.shape, dtype=bool)
        if self.reduce == "sum":
            gx_w, gs_w = keep_self.astype(gy.dtype), xp.ones(block.shape, dtype=gy.dtype)
        elif self.reduce == "mean":
            gx_w = xp.where(self.touched, keep_self / self.count, 1).astype(gy.dtype)
            gs_w = (1 / self.count)[where]
        elif self.reduce in ("amax", "amin"):
            # ties between the result, the input and the sources share the gradient evenly
            hit_x = (x == out) & keep_self
            hit_s = block == out[where]
            ties = hit_x.astype(gy.dtype)
            add_at(ties, where, hit_s.astype(gy.dtype))
            gx_w = xp.where(self.touched, hit_x / xp.maximum(ties, 1), 1).astype(gy.dtype)
            gs_w = hit_s / xp.maximum(ties, 1)[where]
        else:  # prod: the product of all other contributors, computed so that zeros are exact
            xs = xp.where(keep_self, x, 1)
            nonzero_prod = xp.where(xs == 0, 1, xs)
            zeros = (xs == 0).astype("int64")
            multiply_at(nonzero_prod, where, xp.where(block == 0, 1, block))
            add_at(zeros, where, (block == 0).astype("int64"))
            with np.errstate(all="ignore"):
                gx_w = xp.where(zeros == 0, nonzero_prod / xs, xp.where((zeros == 1) & (xs == 0), nonzero_prod, 0))
                gx_w = xp.where(keep_self, gx_w, 0)
                nz, zc = nonzero_prod[where], zeros[where]
                gs_w = xp.where(zc == 0, nz / block, xp.where((zc == 1) & (block == 0), nz, 0))
        gx = gy * gx_w if self.needs_input_grad[0] else None
        gsrc = None
        if self.needs_input_grad[1]:
            gsrc = xp.zeros(self.src_shape, dtype=gy.dtype)
            gsrc[tuple(slice(0, n) for n in block.shape)] = gy[where] * gs_w
        return gx, gsrc


def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,  # noqa: A002
                   include_self: bool = True) -> Tensor:
    """Combine ``src`` into ``input`` at ``index`` along ``dim`` with ``reduce`` ('sum', 'prod', 'mean',
    'amax', 'amin'); ``include_self=False`` leaves the addressed entries of ``input`` out."""
    if reduce not in _REDUCTIONS:
        raise ArgumentError(f"scatter_reduce: reduce must be one of {_REDUCTIONS}, got {reduce!r}")
    where, _ = _scatter_setup("scatter_reduce", input, dim, index, src)
    return ScatterReduce(where, reduce, include_self)(input, _as_source(src, input))


def _index_along(op: str, input: Tensor, dim: int, index: Tensor, source: Tensor | None) -> tuple[int, Any]:
    """Checks shared by the index_* ops: a 1-d index into ``dim``, and ``source`` shaped to match."""
    xp = input._xp
    idx = _index_array(index, xp, op).reshape(-1)
    axis = _axis(input, dim, op)
    n = input.shape[axis] if input.ndim else 1
    idx = _check_range(op, idx, n, allow_negative=True)
    if source is not None:
        expected = tuple(len(idx) if i == axis else s for i, s in enumerate(input.shape))
        if input.ndim and tuple(source.shape) != expected:
            raise ShapeError(f"{op}: source must have shape {expected} (input's with dim {dim} of size len(index)), "
                             f"got {tuple(source.shape)}")
    return axis, idx


def _spread(xp: Any, idx: Any, axis: int, shape: tuple[int, ...]) -> Any:
    """A 1-d index along ``axis`` broadcast to ``shape`` (the source's), for the scatter kernels."""
    return xp.broadcast_to(idx.reshape([-1 if i == axis else 1 for i in range(len(shape))]), shape)


def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha: Any = 1) -> Tensor:  # noqa: A002
    """``out = input`` with ``alpha * source`` slices added at ``index`` along ``dim`` (repeats accumulate)."""
    from hubkit.ops.elementwise import mul

    axis, idx = _index_along("index_add", input, dim, index, source)
    src = source if alpha == 1 else mul(source, alpha)
    if input.ndim == 0:
        return scatter_add(input.reshape(1), 0, Tensor._make(idx), src.reshape(-1)).reshape(())
    return Scatter(_scatter_where(input._xp, _spread(input._xp, idx, axis, source.shape), axis), "add")(
        input, _as_source(src, input))


def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:  # noqa: A002
    """``out = input`` with the slices at ``index`` along ``dim`` replaced by ``source``'s."""
    axis, idx = _index_along("index_copy", input, dim, index, source)
    if input.ndim == 0:
        return scatter(input.reshape(1), 0, Tensor._make(idx), source.reshape(-1)).reshape(())
    return Scatter(_scatter_where(input._xp, _spread(input._xp, idx, axis, source.shape), axis), None)(
        input, _as_source(source, input))


def index_fill(input: Tensor, dim: int, index: Tensor, value: Any) -> Tensor:  # noqa: A002
    """``out = input`` with the slices at ``index`` along ``dim`` set to ``value`` (a number or 0-d tensor)."""
    axis, idx = _index_along("index_fill", input, dim, index, None)
    if isinstance(value, Tensor) and value.ndim:
        raise ShapeError(f"index_fill: value must be a number or a 0-d tensor, got shape {tuple(value.shape)}")
    x = input.reshape(1) if input.ndim == 0 else input
    full = tuple(len(idx) if i == axis else s for i, s in enumerate(x.shape))
    out = Scatter(_scatter_where(x._xp, _spread(x._xp, idx, axis, full), axis), None)(x, _as_source(value, x))
    return out.reshape(()) if input.ndim == 0 else out


def index_reduce(input: Tensor, dim: int, index: Tensor, source: Tensor, reduce: str, *,  # noqa: A002
                 include_self: bool = True) -> Tensor:
    """``scatter_reduce`` of whole slices: ``source`` slice i is combined into slice ``index[i]`` along ``dim``
    with ``reduce`` ('prod', 'mean', 'amax', 'amin')."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise ArgumentError(f"index_reduce: reduce must be 'prod', 'mean', 'amax' or 'amin', got {reduce!r}")
    axis, idx = _index_along("index_reduce", input, dim, index, source)
    spread = _spread(input._xp, idx, axis, source.shape)
    return ScatterReduce(_scatter_where(input._xp, spread, axis), reduce, include_self)(
        input, _as_source(source, input))


class IndexPutAccumulate(Function):
    """``out = x`` with ``values`` added at an advanced index (repeated positions accumulate)."""

    def __init__(self, index: tuple) -> None:
        self.index = index

    def forward(self, x: Any, values: Any) -> Any:
        out = x.copy()
        xp = get_array_module(x)
        target_shape = out[self.index].shape
        add_at(out, self.index, xp.broadcast_to(values, target_shape))
        return out

    def backward(self, gy: Any) -> tuple[Any, Any]:
        return gy, (gy[self.index] if self.needs_input_grad[1] else None)


def index_put(input: Tensor, indices: tuple, values: Any, accumulate: bool = False) -> Tensor:  # noqa: A002
    """``out = input`` with ``out[indices] = values`` (``+=`` with ``accumulate``); ``indices`` a tuple of
    index tensors, as in ``x[i, j]``."""
    if not isinstance(indices, (tuple, list)):
        raise ArgumentError("index_put: indices must be a tuple of tensors")
    xp = input._xp
    raw = tuple(xp.asarray(i.array if isinstance(i, Tensor) else i) for i in indices)
    values = _as_source(values, input)
    if accumulate:
        return IndexPutAccumulate(raw)(input, values)
    return sh.SetItem(raw, True)(input, values)


def put(input: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:  # noqa: A002
    """``input`` read as 1-d, with ``source`` written (or added) at ``index``."""
    idx = _index_array(index, input._xp, "put").reshape(-1)
    flat = input.reshape(-1)
    idx = _check_range("put", idx, flat.shape[0], allow_negative=True)
    return index_put(flat, (idx,), source.reshape(-1), accumulate).reshape(*input.shape)


class MaskedScatter(Function):
    """``out = x`` with the True positions of ``mask`` filled, in order, from the first elements of ``src``."""

    def __init__(self, mask: Any) -> None:
        self.mask = mask

    def forward(self, x: Any, src: Any) -> Any:
        out = x.copy()
        k = int(self.mask.sum())
        self.src_shape = src.shape
        out[self.mask] = src.reshape(-1)[:k]
        return out

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        gx = xp.where(self.mask, 0, gy) if self.needs_input_grad[0] else None
        gsrc = None
        if self.needs_input_grad[1]:
            picked = gy[self.mask]
            flat = xp.zeros(int(np.prod(self.src_shape)), dtype=gy.dtype)
            flat[: picked.size] = picked
            gsrc = flat.reshape(self.src_shape)
        return gx, gsrc


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:  # noqa: A002
    """Copy ``source``'s elements, in order, into the positions where the bool ``mask`` is True."""
    xp = input._xp
    m = xp.asarray(mask.array if isinstance(mask, Tensor) else mask)
    if m.dtype != bool:
        raise DTypeError(f"masked_scatter: mask must be a bool tensor, got {m.dtype}")
    shape = np.broadcast_shapes(input.shape, m.shape)
    x = input if input.shape == shape else sh.expand(input, *shape).clone()
    m = xp.broadcast_to(m, shape)
    if int(m.sum()) > source.numel():
        raise ShapeError(f"masked_scatter: mask selects {int(m.sum())} positions but source has only "
                         f"{source.numel()} elements")
    return MaskedScatter(m)(x, _as_source(source, input))


# ---------------------------------------------------------------- embedding a slice: *_scatter


def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:  # noqa: A002
    """``out = input`` with ``out.select(dim, index) = src``."""
    axis = _axis(input, dim, "select_scatter")
    pos = (slice(None),) * axis + (int(index),)
    expected = select(input, dim, index).shape
    if tuple(src.shape) != tuple(expected):
        raise ShapeError(f"select_scatter: src must have shape {tuple(expected)}, got {tuple(src.shape)}")
    return sh.SetItem(pos, False)(input, _as_source(src, input))


def slice_scatter(input: Tensor, src: Tensor, dim: int = 0, start: int | None = None,  # noqa: A002
                  end: int | None = None, step: int = 1) -> Tensor:
    """``out = input`` with ``out[..., start:end:step, ...] = src`` along ``dim``."""
    axis = _axis(input, dim, "slice_scatter")
    pos = (slice(None),) * axis + (slice(start, end, step),)
    expected = input.array[pos].shape
    if tuple(src.shape) != tuple(expected):
        raise ShapeError(f"slice_scatter: src must have shape {tuple(expected)}, got {tuple(src.shape)}")
    return sh.SetItem(pos, False)(input, _as_source(src, input))


def diagonal_scatter(input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:  # noqa: A002
    """``out = input`` with ``out.diagonal(offset, dim1, dim2) = src`` (the diagonal as the last dim of src)."""
    from hubkit.ops.matrix import _diagonal_index
    from hubkit.ops.rearrange import movedim

    a1, a2 = normalize_dims(dim1, input.ndim, "diagonal_scatter")[0], normalize_dims(dim2, input.ndim,
                                                                                       "diagonal_scatter")[0]
    if a1 == a2:
        raise ArgumentError(f"diagonal_scatter: dim1 and dim2 must differ, got {dim1} and {dim2}")
    moved = movedim(input, (a1, a2), (-2, -1))
    rows, cols = _diagonal_index(moved.shape[-2], moved.shape[-1], offset, moved._xp)
    expected = moved.shape[:-2] + (len(rows),)
    if tuple(src.shape) != expected:
        raise ShapeError(f"diagonal_scatter: src must have shape {expected}, got {tuple(src.shape)}")
    out = sh.SetItem((Ellipsis, rows, cols), True)(moved, _as_source(src, input))
    return movedim(out, (-2, -1), (a1, a2))


def where(condition: Any, input: Any = None, other: Any = None) -> Any:  # noqa: A002
    """``where(cond, x, y)``: ``x`` where ``cond`` else ``y`` (broadcast);
    ``where(cond)``: ``nonzero(cond, as_tuple=True)``."""
    from hubkit.ops.elementwise import where as select_where

    if input is None and other is None:
        cond = condition if isinstance(condition, Tensor) else Tensor._make(np.asarray(condition))
        return nonzero(cond, as_tuple=True)
    if input is None or other is None:
        raise ArgumentError("where: pass both input and other, or neither (where(condition) gives the indices)")
    return select_where(condition, input, other)


def where_method(self: Tensor, condition: Any, other: Any) -> Tensor:
    """``Tensor.where(condition, other)``: ``self`` where ``condition`` else ``other``."""
    return where(condition, self, other)
