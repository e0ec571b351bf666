"""Rearranging ops: movedim, flip/fliplr/flipud, roll, rot90, repeat, tile, repeat_interleave, the
stacking and splitting variants (hstack, vstack, dstack, column_stack, tensor_split, hsplit, ...),
atleast_1d/2d/3d, broadcasting helpers, ravel, Tensor.unfold, meshgrid, cartesian_prod,
combinations and unravel_index.

Most are compositions of the differentiable primitives in ``shape.py`` (permute, reshape, expand,
indexing, cat); flip and roll are their own Functions because their backward is the same move in
reverse, cheaper than an index gather.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, ShapeError
from hubkit.ops import shape as sh
from hubkit.ops.reduction import normalize_dims
from hubkit.tensor import Tensor


def _dims_tuple(dims: Any) -> tuple[int, ...]:
    return (dims,) if isinstance(dims, int) else tuple(dims)


def _tensors(tensors: tuple) -> list[Tensor]:
    """``f(a, b)`` and ``f([a, b])`` both mean the tensors a and b."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return list(tensors[0])
    return list(tensors)


# ---------------------------------------------------------------- moving dims


def movedim(input: Tensor, source: Any, destination: Any) -> Tensor:  # noqa: A002
    """Move the dims ``source`` to positions ``destination`` (ints or equal-length sequences)."""
    src, dst = _dims_tuple(source), _dims_tuple(destination)
    if len(src) != len(dst):
        raise ShapeError(f"movedim: source {src} and destination {dst} must have the same number of dims")
    nd = input.ndim
    src_n = [normalize_dims(d, nd, "movedim")[0] for d in src]
    dst_n = [normalize_dims(d, nd, "movedim")[0] for d in dst]
    if len(set(src_n)) != len(src_n) or len(set(dst_n)) != len(dst_n):
        raise ShapeError(f"movedim: repeated dim in source {src} or destination {dst}")
    order = [d for d in range(nd) if d not in src_n]
    perm = [0] * nd
    for s, d in sorted(zip(src_n, dst_n), key=lambda p: p[1]):
        perm[d] = s
    rest = iter(order)
    for i in range(nd):
        if i not in dst_n:
            perm[i] = next(rest)
    return sh.permute(input, *perm) if nd else input


moveaxis = movedim


def adjoint(input: Tensor) -> Tensor:  # noqa: A002
    """The conjugate transpose of the last two dims (a transpose for real tensors)."""
    if input.ndim < 2:
        raise ShapeError(f"adjoint: expects a tensor with at least 2 dims, got shape {tuple(input.shape)}")
    return sh.transpose(input, -2, -1)


# ---------------------------------------------------------------- flip, roll, rot90


class Flip(Function):
    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x: Any) -> Any:
        return get_array_module(x).flip(x, self.axes).copy()

    def backward(self, gy: Any) -> Any:
        return get_array_module(gy).flip(gy, self.axes)


def flip(input: Tensor, dims: Any) -> Tensor:  # noqa: A002
    """Reverse the order of elements along ``dims``."""
    axes = normalize_dims(_dims_tuple(dims), input.ndim, "flip")
    if input.ndim == 0 or not axes:
        return input.clone()
    return Flip(axes)(input)


def fliplr(input: Tensor) -> Tensor:  # noqa: A002
    """Flip dim 1 (left/right); needs at least 2 dims."""
    if input.ndim < 2:
        raise ShapeError(f"fliplr: input must have at least 2 dims, got shape {tuple(input.shape)}")
    return flip(input, 1)


def flipud(input: Tensor) -> Tensor:  # noqa: A002
    """Flip dim 0 (up/down); needs at least 1 dim."""
    if input.ndim < 1:
        raise ShapeError("flipud: input must have at least 1 dim, got a 0-d tensor")
    return flip(input, 0)


class Roll(Function):
    def __init__(self, shifts: tuple[int, ...], axes: tuple[int, ...]) -> None:
        self.shifts, self.axes = shifts, axes

    def forward(self, x: Any) -> Any:
        return get_array_module(x).roll(x, self.shifts, self.axes)

    def backward(self, gy: Any) -> Any:
        return get_array_module(gy).roll(gy, tuple(-s for s in self.shifts), self.axes)


def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:  # noqa: A002
    """Shift elements along ``dims`` by ``shifts`` with wrap-around (of the flattened tensor when dims is None)."""
    shifts_t = _dims_tuple(shifts)
    if dims is None:
        if len(shifts_t) != 1:
            raise ShapeError(f"roll: without dims, shifts must be one int, got {shifts_t}")
        return Roll(shifts_t, (0,))(input.reshape(-1)).reshape(*input.shape)
    dims_t = _dims_tuple(dims)
    if len(shifts_t) != len(dims_t):
        raise ShapeError(f"roll: shifts {shifts_t} and dims {dims_t} must have the same length")
    axes = tuple(normalize_dims(d, input.ndim, "roll")[0] for d in dims_t)
    return Roll(tuple(int(s) for s in shifts_t), axes)(input)


def rot90(input: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:  # noqa: A002
    """Rotate by 90 degrees ``k`` times in the plane of ``dims``, from the first dim toward the second."""
    dims = tuple(dims)
    if len(dims) != 2:
        raise ShapeError(f"rot90: dims must hold two dims, got {dims}")
    d0, d1 = (normalize_dims(d, input.ndim, "rot90")[0] for d in dims)
    if d0 == d1:
        raise ShapeError(f"rot90: the two dims must differ, got {dims}")
    k %= 4
    if k == 1:
        return sh.transpose(flip(input, d1), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return sh.transpose(flip(input, d0), d0, d1)
    return input.clone()


# ---------------------------------------------------------------- repeating


def repeat(input: Tensor, *sizes: Any) -> Tensor:  # noqa: A002
    """``Tensor.repeat``: tile ``input`` ``sizes[i]`` times along each dim (sizes may add leading dims)."""
    reps = tuple(int(s) for s in sh._shape_args(sizes))
    if len(reps) < input.ndim:
        raise ShapeError(f"repeat: the number of repeat dims ({len(reps)}) can not be smaller than the number of "
                         f"dims of the tensor ({input.ndim})")
    shape = (1,) * (len(reps) - input.ndim) + tuple(input.shape)
    # (s0, s1) -> (1, s0, 1, s1) -> (r0, s0, r1, s1) -> (r0*s0, r1*s1): one broadcast view, one copy
    x = input.reshape(*itertools.chain.from_iterable((1, s) for s in shape))
    x = sh.expand(x, *itertools.chain.from_iterable(zip(reps, shape)))
    return x.reshape(*(r * s for r, s in zip(reps, shape)))


def tile(input: Tensor, dims: Sequence[int]) -> Tensor:  # noqa: A002
    """Like ``repeat``, but fewer ``dims`` than the tensor has are padded with leading 1s."""
    dims = tuple(dims)
    return repeat(input, *((1,) * (input.ndim - len(dims)) + dims))


def repeat_interleave(input: Tensor, repeats: Any = None, dim: int | None = None, *,  # noqa: A002
                      output_size: int | None = None) -> Tensor:
    """Repeat each element (or each slice along ``dim``) ``repeats`` times (an int or one count per element).

    ``repeat_interleave(counts)`` alone gives ``[0]*counts[0] + [1]*counts[1] + ...``.
    """
    xp = input._xp
    if repeats is None:  # the one-argument form
        counts = input.array
        return Tensor._make(xp.repeat(xp.arange(counts.shape[0]), counts).astype("int64"))
    x = input.reshape(-1) if dim is None else input
    axis = 0 if dim is None else normalize_dims(dim, x.ndim, "repeat_interleave")[0]
    n = x.shape[axis] if x.ndim else 1
    counts = repeats.array if isinstance(repeats, Tensor) else repeats
    counts = xp.asarray(counts).reshape(-1) if not isinstance(counts, int) else counts
    if not isinstance(counts, int):
        if counts.size == 1:
            counts = int(counts[0])
        elif counts.size != n:
            raise ShapeError(f"repeat_interleave: repeats has {counts.size} entries for a dim of size {n}")
    if (counts < 0) if isinstance(counts, int) else bool((counts < 0).any()):
        raise ArgumentError("repeat_interleave: repeats must be non-negative")
    index = xp.repeat(xp.arange(n), counts)
    if x.ndim == 0:
        x = x.reshape(1)
    return sh.getitem(x, (slice(None),) * axis + (index,))


# ---------------------------------------------------------------- stacking and splitting


def atleast_1d(*tensors: Any) -> Any:
    """Each tensor with at least 1 dim (a 0-d one becomes shape (1,)); one tensor in, one out."""
    return _atleast(tensors, 1)


def atleast_2d(*tensors: Any) -> Any:
    """Each tensor with at least 2 dims: () -> (1, 1), (n,) -> (1, n)."""
    return _atleast(tensors, 2)


def atleast_3d(*tensors: Any) -> Any:
    """Each tensor with at least 3 dims: () -> (1, 1, 1), (n,) -> (1, n, 1), (m, n) -> (m, n, 1)."""
    return _atleast(tensors, 3)


def _atleast(tensors: tuple, n: int) -> Any:
    single = len(tensors) == 1 and isinstance(tensors[0], Tensor)
    out = tuple(_lift(t, n) for t in _tensors(tensors))
    return out[0] if single else out


def _lift(t: Tensor, n: int) -> Tensor:
    s = tuple(t.shape)
    if len(s) >= n:
        return t
    if n == 1:
        return t.reshape(1)
    if n == 2:
        return t.reshape(1, *(s or (1,)))
    if len(s) == 0:
        return t.reshape(1, 1, 1)
    return t.reshape(1, s[0], 1) if len(s) == 1 else t.reshape(s[0], s[1], 1)


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate column-wise: along dim 0 for 1-d tensors, dim 1 otherwise."""
    ts = [_lift(t, 1) for t in tensors]
    return sh.cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate row-wise (dim 0) after making every tensor at least 2-d."""
    return sh.cat([_lift(t, 2) for t in tensors], 0)


row_stack = vstack


def dstack(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate depth-wise (dim 2) after making every tensor at least 3-d."""
    return sh.cat([_lift(t, 3) for t in tensors], 2)


def column_stack(tensors: Sequence[Tensor]) -> Tensor:
    """Stack 0-d/1-d tensors as columns (and 2-d tensors as they are) along dim 1."""
    return sh.cat([t.reshape(-1, 1) if t.ndim <= 1 else t for t in tensors], 1)


def broadcast_shapes(*shapes: Any) -> tuple[int, ...]:
    """The shape all ``shapes`` broadcast to."""
    try:
        return tuple(np.broadcast_shapes(*(tuple(s) if not isinstance(s, int) else (s,) for s in shapes)))
    except ValueError:
        raise ShapeError(f"broadcast_shapes: shapes {shapes} cannot be broadcast together") from None


def broadcast_to(input: Tensor, size: Sequence[int]) -> Tensor:  # noqa: A002
    """``input`` broadcast to ``size`` (a read-only view, like ``expand``)."""
    return sh.expand(input, *size)


def broadcast_tensors(*tensors: Any) -> tuple[Tensor, ...]:
    """All tensors broadcast to their common shape."""
    ts = _tensors(tensors)
    shape = broadcast_shapes(*(t.shape for t in ts))
    return tuple(t if t.shape == shape else sh.expand(t, *shape) for t in ts)


def tensor_split(input: Tensor, indices_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:  # noqa: A002
    """Split into ``n`` nearly equal parts (the first ``size % n`` one larger), or at the given indices."""
    axis = normalize_dims(dim, input.ndim, "tensor_split")[0]
    size = input.shape[axis]
    spec = indices_or_sections
    if isinstance(spec, Tensor):
        spec = spec.item() if spec.ndim == 0 else spec.tolist()
    if isinstance(spec, int):
        if spec <= 0:
            raise ArgumentError(f"tensor_split: the number of sections must be positive, got {spec}")
        base, extra = divmod(size, spec)
        bounds = list(itertools.accumulate([base + 1] * extra + [base] * (spec - extra), initial=0))
    else:
        bounds = [0, *(int(i) for i in spec), size]
    pieces = []
    for start, stop in itertools.pairwise(bounds):
        start = min(max(start + size if start < 0 else start, 0), size)
        stop = min(max(stop + size if stop < 0 else stop, start), size)
        pieces.append(sh.getitem(input, (slice(None),) * axis + (slice(start, stop),)))
    return tuple(pieces)


def _split_even(op: str, input: Tensor, spec: Any, dim: int) -> tuple[Tensor, ...]:
    if isinstance(spec, int) and input.shape[dim] % spec:
        raise ShapeError(f"{op}: dim {dim} of size {input.shape[dim]} is not divisible by {spec} sections")
    return tensor_split(input, spec, dim)


def hsplit(input: Tensor, sections: Any) -> tuple[Tensor, ...]:  # noqa: A002
    """Split along dim 1 (dim 0 for 1-d tensors) into equal sections or at indices."""
    if input.ndim < 1:
        raise ShapeError("hsplit: needs a tensor with at least 1 dim")
    return _split_even("hsplit", input, sections, 0 if input.ndim == 1 else 1)


def vsplit(input: Tensor, sections: Any) -> tuple[Tensor, ...]:  # noqa: A002
    """Split along dim 0 into equal sections or at indices; needs at least 2 dims."""
    if input.ndim < 2:
        raise ShapeError(f"vsplit: needs a tensor with at least 2 dims, got shape {tuple(input.shape)}")
    return _split_even("vsplit", input, sections, 0)


def dsplit(input: Tensor, sections: Any) -> tuple[Tensor, ...]:  # noqa: A002
    """Split along dim 2 into equal sections or at indices; needs at least 3 dims."""
    if input.ndim < 3:
        raise ShapeError(f"dsplit: needs a tensor with at least 3 dims, got shape {tuple(input.shape)}")
    return _split_even("dsplit", input, sections, 2)


def split_with_sizes(input: Tensor, split_sizes: Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:  # noqa: A002
    return sh.split(input, list(split_sizes), dim)


def ravel(input: Tensor) -> Tensor:  # noqa: A002
    """The elements as a 1-d tensor."""
    return input.reshape(-1)


def unfold(input: Tensor, dimension: int, size: int, step: int) -> Tensor:  # noqa: A002
    """``Tensor.unfold``: every window of ``size`` elements along ``dimension``, ``step`` apart.

    ``dimension`` is replaced by the number of windows and a new last dim of length ``size`` is added.
    """
    x = input.reshape(1) if input.ndim == 0 else input
    axis = normalize_dims(dimension, x.ndim, "unfold")[0]
    n = x.shape[axis]
    if size > n or size < 0 or step <= 0:
        raise ShapeError(f"unfold: size {size} (at most {n}) and step {step} (positive) do not fit dim {dimension}")
    xp = x._xp
    count = (n - size) // step + 1
    index = xp.arange(count)[:, None] * step + xp.arange(size)[None, :]
    windows = sh.getitem(x, (slice(None),) * axis + (index,))  # (..., count, size, ...)
    return movedim(windows, axis + 1, -1)


# ---------------------------------------------------------------- grids and combinations


def meshgrid(*tensors: Any, indexing: str = "ij") -> tuple[Tensor, ...]:
    """Coordinate grids from 1-d tensors: ``indexing='ij'`` gives shape (len(t0), len(t1), ...), 'xy' swaps
    the first two."""
    if indexing not in ("ij", "xy"):
        raise ArgumentError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    ts = [t.reshape(-1) if t.ndim == 0 else t for t in _tensors(tensors)]
    for t in ts:
        if t.ndim != 1:
            raise ShapeError(f"meshgrid: expects 0-d or 1-d tensors, got shape {tuple(t.shape)}")
    shape = tuple(t.shape[0] for t in ts)
    grids = [sh.expand(t.reshape(*(-1 if i == j else 1 for j in range(len(ts)))), *shape) for i, t in enumerate(ts)]
    if indexing == "xy" and len(ts) >= 2:  # cartesian indexing: the first two dims swap places
        grids = [sh.transpose(g, 0, 1) for g in grids]
    return tuple(grids)


def cartesian_prod(*tensors: Any) -> Tensor:
    """All tuples of one element from each 1-d tensor, as rows of an ``(N, len(tensors))`` tensor."""
    ts = _tensors(tensors)
    if len(ts) == 1:
        return ts[0]
    return sh.stack([g.reshape(-1) for g in meshgrid(*ts, indexing="ij")], 1)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:  # noqa: A002
    """All length-``r`` combinations of the elements of a 1-d tensor, as rows (``itertools.combinations``)."""
    if input.ndim != 1:
        raise ShapeError(f"combinations: expects a 1-d tensor, got shape {tuple(input.shape)}")
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    rows = list(pick(range(input.shape[0]), r))
    if not rows:
        return Tensor._make(input._xp.zeros((0,) if r == 0 else (0, r), dtype=input.dtype))
    index = input._xp.asarray(rows, dtype="int64")
    return sh.getitem(input, index)


def unravel_index(indices: Any, shape: Sequence[int]) -> tuple[Tensor, ...]:
    """The coordinates in ``shape`` of flat ``indices``, one int64 tensor per dim."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    xp = indices._xp if isinstance(indices, Tensor) else np
    flat = xp.asarray(indices.array if isinstance(indices, Tensor) else indices)
    total = math.prod(shape)
    if flat.size and (int(flat.min()) < -total or int(flat.max()) >= total):
        raise ShapeError(f"unravel_index: an index is out of bounds for shape {shape}")
    return tuple(Tensor._make(xp.asarray(c).astype("int64")) for c in xp.unravel_index(flat % total, shape))
