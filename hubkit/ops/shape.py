"""Shape and indexing ops: reshape/view, flatten, squeeze/unsqueeze, transpose/permute, expand,
indexing (``x[...]``), gather, masked_fill, cat, stack, split/chunk, pad.
"""

from __future__ import annotations

import builtins
import math
import weakref
from collections.abc import Sequence
from typing import Any

from hubkit._backend import get_array_module, scatter_add
from hubkit.autograd import Function, is_grad_enabled
from hubkit.errors import ArgumentError, DTypeError, GradError, IndexOutOfRangeError, ShapeError
from hubkit.tensor import Tensor

# ---------------------------------------------------------------- reshape family


class Reshape(Function):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Any) -> Any:
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy: Any) -> Any:
        return gy.reshape(self.in_shape)


def _resolve_shape(op: str, in_shape: tuple[int, ...], shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    size = math.prod(in_shape)
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1:
        raise ShapeError(f"{op}: only one dimension can be -1, got shape {shape}")
    known = math.prod(s for s in shape if s != -1)
    if unknown:
        if known == 0 or size % known:
            raise ShapeError(f"{op}: shape {shape} is invalid for an input of shape {in_shape} ({size} elements)")
        shape = shape[: unknown[0]] + (size // known,) + shape[unknown[0] + 1 :]
    elif known != size:
        raise ShapeError(f"{op}: shape {shape} is invalid for an input of shape {in_shape} ({size} elements)")
    return shape


def _shape_args(shape: tuple) -> tuple:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def reshape(input: Tensor, *shape: Any) -> Tensor:  # noqa: A002
    """Same data in a new shape (one dim may be -1). A view when possible, as in numpy."""
    target = _resolve_shape("reshape", input.shape, _shape_args(shape))
    if target == input.shape:
        return input
    return Reshape(target)(input)


view = reshape


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:  # noqa: A002
    if input.ndim == 0:
        return reshape(input, 1)
    s, e = start_dim % input.ndim, end_dim % input.ndim
    if s > e:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for {input.ndim} dims")
    shape = input.shape
    return reshape(input, *shape[:s], math.prod(shape[s : e + 1]), *shape[e + 1 :])


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:  # noqa: A002
    d = dim % input.ndim
    return reshape(input, *input.shape[:d], *sizes, *input.shape[d + 1 :])


def squeeze(input: Tensor, dim: Any = None) -> Tensor:  # noqa: A002
    """Drop size-1 dims (all of them, or the given ones when they have size 1)."""
    if dim is None:
        shape = tuple(s for s in input.shape if s != 1)
    else:
        rank = max(input.ndim, 1)
        dims = set()
        for d in (dim,) if isinstance(dim, int) else dim:
            if not -rank <= d < rank:
                raise ShapeError(f"squeeze: dim {d} is out of range for a tensor with {input.ndim} dims "
                                 f"(expected one in [{-rank}, {rank - 1}])")
            dims.add(d % rank)
        shape = tuple(s for i, s in enumerate(input.shape) if not (i in dims and s == 1))
    return reshape(input, *shape)


def unsqueeze(input: Tensor, dim: int) -> Tensor:  # noqa: A002
    nd = input.ndim + 1
    if not -nd <= dim < nd:
        raise ShapeError(f"unsqueeze: dim {dim} is out of range for a result with {nd} dims")
    d = dim % nd
    return reshape(input, *input.shape[:d], 1, *input.shape[d:])


# ---------------------------------------------------------------- permutations


class Permute(Function):
    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x: Any) -> Any:
        return x.transpose(self.axes)

    def backward(self, gy: Any) -> Any:
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a] = i
        return gy.transpose(inverse)


def permute(input: Tensor, *dims: Any) -> Tensor:  # noqa: A002
    dims = _shape_args(dims)
    nd = input.ndim
    axes = tuple(d % nd for d in dims) if nd else ()
    if sorted(axes) != list(range(nd)):
        raise ShapeError(f"permute: dims {tuple(dims)} are not a permutation of the {nd} dims of {tuple(input.shape)}")
    return Permute(axes)(input)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:  # noqa: A002
    nd = input.ndim
    for d in (dim0, dim1):
        if not -max(nd, 1) <= d < max(nd, 1):
            raise ShapeError(f"transpose: dim {d} is out of range for a tensor with {nd} dims "
                             f"(expected one in [{-max(nd, 1)}, {max(nd, 1) - 1}])")
    if nd < 2:
        return input
    axes = list(range(nd))
    axes[dim0 % nd], axes[dim1 % nd] = axes[dim1 % nd], axes[dim0 % nd]
    return Permute(tuple(axes))(input)


def t(input: Tensor) -> Tensor:  # noqa: A002
    if input.ndim > 2:
        raise ShapeError(f"t: expects a tensor with at most 2 dims, got shape {tuple(input.shape)}; use transpose")
    return transpose(input, 0, 1) if input.ndim == 2 else input


class Expand(Function):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Any) -> Any:
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy: Any) -> Any:
        return gy  # autograd sums a broadcast gradient back to the input's shape


def expand(input: Tensor, *sizes: Any) -> Tensor:  # noqa: A002
    """A broadcast view with ``sizes`` (-1 keeps a dim); read-only, like PyTorch's expanded tensors."""
    sizes = _shape_args(sizes)
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ShapeError(f"expand: the number of sizes {len(sizes)} is less than the number of dims {input.ndim}")
    shape = tuple(input.shape[i - lead] if s == -1 else int(s) for i, s in enumerate(sizes))
    for i, n in enumerate(input.shape):
        if n != 1 and n != shape[i + lead]:
            raise ShapeError(f"expand: can't expand shape {tuple(input.shape)} to {shape}: dim {i} is {n}, not 1")
    return Expand(shape)(input)


def expand_as(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    return expand(input, *other.shape)


# ---------------------------------------------------------------- indexing


def _raw_index(index: Any, xp: Any) -> tuple[Any, bool]:
    """Turn Tensors and lists inside an index into arrays of the indexed tensor's array module
    (so a CPU index works on a CUDA tensor); report whether advanced (array) indexing is used.
    """
    items = index if isinstance(index, tuple) else (index,)
    out, advanced = [], False
    for item in items:
        if isinstance(item, Tensor):
            item = item.array
        if isinstance(item, list) or (hasattr(item, "ndim") and item.ndim and get_array_module(item) is not xp):
            item = xp.asarray(item)
        if hasattr(item, "dtype") and hasattr(item, "ndim"):
            advanced = True
        out.append(item)
    return (tuple(out) if isinstance(index, tuple) else out[0]), advanced


class GetItem(Function):
    def __init__(self, index: Any, advanced: bool) -> None:
        self.index, self.advanced = index, advanced

    def forward(self, x: Any) -> Any:
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if self.advanced:  # repeated indices must accumulate
            scatter_add(gx, self.index, gy)
        else:
            gx[self.index] = gy
        return gx


def getitem(input: Tensor, index: Any) -> Tensor:  # noqa: A002
    try:
        if type(index) is int and not (input.requires_grad and is_grad_enabled()):
            # the common case of a Dataset's ``tensor[i]``: nothing to record, so no graph node (5x faster)
            return Tensor._make(input.array[index])
        raw, advanced = _raw_index(index, input._xp)
        return GetItem(raw, advanced)(input)
    except IndexError as exc:
        raise IndexOutOfRangeError(
            f"index {index!r} is invalid for a tensor of shape {tuple(input.shape)}: {exc}"
        ) from None


class SetItem(Function):
    """``out = x`` with ``out[index] = value``; gradients flow to both."""

    def __init__(self, index: Any, advanced: bool) -> None:
        self.index, self.advanced = index, advanced

    def forward(self, x: Any, value: Any) -> Any:
        y = x.copy()
        y[self.index] = value
        self.value_shape = getattr(value, "shape", ())
        return y

    def backward(self, gy: Any) -> tuple[Any, Any]:
        gx = None
        if self.needs_input_grad[0]:
            gx = gy.copy()
            gx[self.index] = 0
        gv = gy[self.index] if self.needs_input_grad[1] else None
        return gx, gv


def setitem(target: Tensor, index: Any, value: Any) -> None:
    """``target[index] = value`` in place; recorded by autograd when either side needs a gradient."""
    raw, advanced = _raw_index(index, target._xp)
    tracked = is_grad_enabled() and (target.requires_grad or (isinstance(value, Tensor) and value.requires_grad))
    if not tracked:
        target.array[raw] = value.array if isinstance(value, Tensor) else value
        return
    if target.is_leaf and target.requires_grad:
        raise GradError(
            "a leaf tensor that requires grad can't be assigned to in place; "
            "assign to a clone (x = x.clone()) or do it under hubkit.no_grad()"
        )
    if not isinstance(value, Tensor):
        value = Tensor._make(target._xp.asarray(value, dtype=target.dtype))
    elif value.dtype != target.dtype:
        value = value.to(target.dtype)
    # Rebase ``target`` on a SetItem node. Ops that used the old value recorded its node when they
    # were called and keep their saved arrays (SetItem writes into a copy), so their gradients still
    # reach the old value's creator.
    out = SetItem(raw, advanced)(target, value)
    target.array, target._creator, target.requires_grad = out.array, out._creator, True
    out._creator.outputs = (weakref.ref(target),)


# ---------------------------------------------------------------- joining and splitting


class Cat(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs: Any) -> Any:
        self.sizes = [x.shape[self.axis] for x in xs]
        return get_array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy: Any) -> tuple[Any, ...]:
        bounds, start = [], 0
        for n in self.sizes:
            bounds.append((start, start + n))
            start += n
        sl = [slice(None)] * gy.ndim
        grads = []
        for (a, b), needed in zip(bounds, self.needs_input_grad):
            sl[self.axis] = slice(a, b)
            grads.append(gy[tuple(sl)] if needed else None)
        return tuple(grads)


def _same_dtype(tensors: Sequence[Tensor], op: str) -> list[Tensor]:
    from hubkit.ops.elementwise import promote_types

    tensors = list(tensors)
    if not tensors:
        raise ShapeError(f"{op}: expected a non-empty sequence of tensors")
    dt = tensors[0].dtype
    for x in tensors[1:]:
        dt = promote_types(dt, x.dtype)
    return [x if x.dtype == dt else x.to(dt) for x in tensors]


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dim; all other dims must match."""
    tensors = _same_dtype(tensors, "cat")
    tensors = [x for x in tensors if not (x.ndim == 1 and x.shape[0] == 0)] or tensors[:1]
    ref = tensors[0]
    axis = dim % ref.ndim
    for x in tensors[1:]:
        if x.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, ref.shape)) if i != axis):
            raise ShapeError(
                f"cat: tensors must match except in dim {dim}; got {tuple(ref.shape)} and {tuple(x.shape)}"
            )
    return Cat(axis)(*tensors)


concat = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new dim."""
    tensors = _same_dtype(tensors, "stack")
    for x in tensors[1:]:
        if x.shape != tensors[0].shape:
            raise ShapeError(
                f"stack: expects each tensor to be the same shape, got {tuple(tensors[0].shape)} and {tuple(x.shape)}"
            )
    return cat([unsqueeze(x, dim) for x in tensors], dim=dim % (tensors[0].ndim + 1))


def split(input: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:  # noqa: A002
    """Pieces of size ``split_size`` (the last may be smaller) or of the listed sizes, as views."""
    axis = dim % input.ndim
    n = input.shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ShapeError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, n - i) for i in range(0, n, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ShapeError(f"split: sections {sizes} sum to {sum(sizes)}, but dim {dim} has size {n}")
    out, start = [], 0
    for size in sizes:
        index = (slice(None),) * axis + (slice(start, start + size),)
        out.append(getitem(input, index))
        start += size
    return tuple(out)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:  # noqa: A002
    n = input.shape[dim % input.ndim]
    return split(input, max(1, -(-n // chunks)), dim)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:  # noqa: A002
    axis = dim % input.ndim
    return tuple(getitem(input, (slice(None),) * axis + (i,)) for i in range(input.shape[axis]))


# ---------------------------------------------------------------- gather and masked_fill


class Gather(Function):
    """``out[i][j][k] = x[i][index[i][j][k]][k]`` (for ``axis == 1``); repeated indices accumulate gradients."""

    def __init__(self, axis: int, index: Any) -> None:
        self.axis, self.index = axis, index

    def forward(self, x: Any) -> Any:
        self.shape = x.shape
        # torch lets index be smaller than x in the other dims: gather from the leading block
        block = tuple(slice(None) if d == self.axis else slice(0, n) for d, n in enumerate(self.index.shape))
        return get_array_module(x).take_along_axis(x[block], self.index, axis=self.axis)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        nd = gy.ndim
        where = [self.index if d == self.axis else xp.arange(n).reshape((1,) * d + (n,) + (1,) * (nd - d - 1))
                 for d, n in enumerate(gy.shape)]
        scatter_add(gx, tuple(where), gy)
        return gx


def _check_index_range(op: str, index: Any, size: int, what: str) -> None:
    if index.size and (int(index.min()) < 0 or int(index.max()) >= size):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise IndexOutOfRangeError(f"{op}: index {bad} is out of bounds for {what} of size {size}")


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:  # noqa: A002
    """Pick values along ``dim`` at ``index``: ``out[..., j, ...] = input[..., index[..., j, ...], ...]``.

    ``index`` (integer) has as many dims as ``input`` and is no larger in the other dims; the
    result has ``index``'s shape. ``sparse_grad`` is accepted for compatibility (gradients are dense).
    """
    idx = input._xp.asarray(index.array if isinstance(index, Tensor) else index)
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"gather: index must be an integer tensor, got {idx.dtype}")
    if idx.ndim != input.ndim and not (input.ndim <= 1 and idx.ndim <= 1):
        raise ShapeError(
            f"gather: index {tuple(idx.shape)} must have as many dims as input {tuple(input.shape)}"
        )
    if input.ndim == 0:  # a 0-d input behaves as a 1-element vector
        out = gather(reshape(input, 1), 0, Tensor._make(idx.reshape(-1)))
        return reshape(out, *idx.shape)
    (axis,) = _dims(dim, input.ndim, "gather")
    for d, (n_idx, n_in) in enumerate(zip(idx.shape, input.shape)):
        if d != axis and n_idx > n_in:
            raise ShapeError(
                f"gather: index {tuple(idx.shape)} is larger than input {tuple(input.shape)} in dim {d}, "
                f"which is not the gather dim {dim}"
            )
    _check_index_range("gather", idx, input.shape[axis], f"dim {dim}")
    return Gather(axis, idx)(input)


def _dims(dim: Any, ndim: int, op: str) -> tuple[int, ...]:
    from hubkit.ops.reduction import normalize_dims

    return normalize_dims(dim, ndim, op)


def masked_fill(input: Tensor, mask: Any, value: Any) -> Tensor:  # noqa: A002
    """``value`` where ``mask`` is True, ``input`` elsewhere; ``mask`` (bool) broadcasts with ``input``.

    ``value`` is a Python number or a 0-d tensor (gradients flow to it); it takes ``input``'s dtype.
    """
    from hubkit.ops.elementwise import Where, _broadcast_check

    xp = input._xp
    m = xp.asarray(mask.array if isinstance(mask, Tensor) else mask)
    if m.dtype != bool:
        raise DTypeError(f"masked_fill: mask must be a bool tensor, got {m.dtype}; build it with a comparison")
    _broadcast_check("masked_fill", m, input)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got shape {tuple(value.shape)}")
        fill = value if value.dtype == input.dtype else value.to(input.dtype)
    else:
        fill = xp.asarray(value).astype(input.dtype)
    return Where(m)(fill, input)


# ---------------------------------------------------------------- pad

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _border_indices(mode: str, n: int, before: int, after: int) -> tuple[list[int], list[int]]:
    """Which input positions fill the ``before`` and ``after`` pads of one axis of size ``n``."""
    if mode == "reflect":
        return list(range(before, 0, -1)), list(range(n - 2, n - 2 - after, -1))
    if mode == "replicate":
        return [0] * before, [n - 1] * after
    return list(range(n - before, n)), list(range(after))  # circular


class Pad(Function):
    """Pad (or, with negative widths in constant mode, crop) each axis by ``widths[axis] = (before, after)``."""

    def __init__(self, widths: list[tuple[int, int]], mode: str, value: Any) -> None:
        self.widths, self.mode, self.value = widths, mode, value

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self.shape = x.shape
        if self.mode == "constant":
            crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(self.widths, x.shape))
            self.crop = crop
            x = x[crop]
            out_shape = tuple(n + max(b, 0) + max(a, 0) for (b, a), n in zip(self.widths, x.shape))
            self.inner = tuple(slice(max(b, 0), max(b, 0) + n) for (b, _), n in zip(self.widths, x.shape))
            y = xp.full(out_shape, self.value, dtype=x.dtype)
            y[self.inner] = x
            return y
        for axis, (before, after) in enumerate(self.widths):
            if before or after:
                left, right = _border_indices(self.mode, x.shape[axis], before, after)
                parts = [xp.take(x, xp.asarray(left, dtype="int64"), axis=axis), x,
                         xp.take(x, xp.asarray(right, dtype="int64"), axis=axis)]
                x = xp.concatenate(parts, axis=axis)
        return x

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        if self.mode == "constant":
            g = gy[self.inner]
            if all(s == slice(0, n) for s, n in zip(self.crop, self.shape)):
                return g
            gx = xp.zeros(self.shape, dtype=gy.dtype)
            gx[self.crop] = g
            return gx
        # undo the axes in reverse order: fold each pad's gradient back onto the positions it copied
        for axis in reversed(range(len(self.widths))):
            before, after = self.widths[axis]
            if not (before or after):
                continue
            n = gy.shape[axis] - before - after
            pre = (slice(None),) * axis
            g = gy[pre + (slice(before, before + n),)].copy()
            left, right = _border_indices(self.mode, n, before, after)
            for positions, part in ((left, slice(0, before)), (right, slice(before + n, before + n + after))):
                if not positions:
                    continue
                piece = gy[pre + (part,)]
                if self.mode == "replicate":
                    g[pre + (slice(positions[0], positions[0] + 1),)] += piece.sum(axis=axis, keepdims=True)
                else:  # reflect and circular never repeat a position within one side
                    g[pre + (xp.asarray(positions, dtype="int64"),)] += piece
            gy = g
        return gy


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:  # noqa: A002
    """Pad the last ``len(pad) // 2`` dims, like ``torch.nn.functional.pad``.

    ``pad = (left, right)`` pads the last dim, ``(left, right, top, bottom)`` the last two, and so
    on. ``mode``: 'constant' (fill with ``value``, default 0; negative widths crop), 'reflect'
    (mirror without repeating the edge; widths < the dim's size), 'replicate' (repeat the edge) or
    'circular' (wrap around; widths <= the dim's size). ``(*, H, W) -> (*, H + top + bottom, W + left + right)``.
    """
    pads = [int(p) for p in pad]
    if len(pads) % 2 or len(pads) > 2 * input.ndim:
        raise ShapeError(
            f"pad: the padding {tuple(pads)} must have an even length of at most twice the input's {input.ndim} dims "
            f"(input {tuple(input.shape)})"
        )
    if mode not in _PAD_MODES:
        raise ArgumentError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    k = len(pads) // 2
    widths = [(0, 0)] * (input.ndim - k) + [(pads[2 * i], pads[2 * i + 1]) for i in reversed(range(k))]
    if mode == "constant":
        for axis, (before, after) in enumerate(widths):
            if input.shape[axis] + builtins.min(before, 0) + builtins.min(after, 0) < 0:
                raise ShapeError(f"pad: widths {(before, after)} crop more than dim {axis} of {tuple(input.shape)}")
        return Pad(widths, mode, 0 if value is None else value)(input)
    if value not in (None, 0):
        raise ArgumentError(f"pad: mode {mode!r} does not take a fill value, got value={value}")
    for axis, (before, after) in enumerate(widths):
        n = input.shape[axis]
        if builtins.min(before, after) < 0:
            raise ShapeError(f"pad: mode {mode!r} needs non-negative widths, got {(before, after)} for dim {axis}")
        limit = n - 1 if mode == "reflect" else n
        if (before or after) and builtins.max(before, after) > limit:
            raise ShapeError(
                f"pad: {mode} padding {(before, after)} of dim {axis} of {tuple(input.shape)} needs each width to be "
                f"at most {limit} (the dim's size{' - 1' if mode == 'reflect' else ''})"
            )
    return Pad(widths, mode, None)(input)
