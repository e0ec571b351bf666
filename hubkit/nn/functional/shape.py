"""Shape and indexing ops: reshape/view, flatten, squeeze/unsqueeze, transpose/permute, expand,
indexing (``x[...]``), cat, stack, split/chunk.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from typing import Any

from hubkit._backend import get_array_module
from hubkit.autograd import Function, is_grad_enabled
from hubkit.errors import GradError, ShapeError
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
        dims = {d % max(input.ndim, 1) for d in ((dim,) if isinstance(dim, int) else dim)}
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
    if nd < 2 and dim0 in (0, -1) and dim1 in (0, -1):
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


def _raw_index(index: Any) -> tuple[Any, bool]:
    """Turn Tensors inside an index into arrays; report whether advanced (array) indexing is used."""
    items = index if isinstance(index, tuple) else (index,)
    out, advanced = [], False
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        if isinstance(item, list):
            item = get_array_module(item).asarray(item)
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
            if xp.__name__ == "numpy":
                xp.add.at(gx, self.index, gy)
            else:
                import cupyx

                cupyx.scatter_add(gx, self.index, gy)
        else:
            gx[self.index] = gy
        return gx


def getitem(input: Tensor, index: Any) -> Tensor:  # noqa: A002
    raw, advanced = _raw_index(index)
    try:
        return GetItem(raw, advanced)(input)
    except IndexError as exc:
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {tuple(input.shape)}: {exc}") from None


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
    raw, advanced = _raw_index(index)
    tracked = is_grad_enabled() and (target.requires_grad or (isinstance(value, Tensor) and value.requires_grad))
    if not tracked:
        target.data[raw] = value.data if isinstance(value, Tensor) else value
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
    # Rebase ``target`` on a SetItem node: earlier uses of its old value keep their saved arrays.
    old = Tensor._make(target.data)
    old.requires_grad, old._creator = target.requires_grad, target._creator
    out = SetItem(raw, advanced)(old, value)
    target.data, target._creator, target.requires_grad = out.data, out._creator, True
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
    from hubkit.nn.functional.elementwise import promote_types

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
