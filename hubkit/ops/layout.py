"""Tensor methods about memory layout and type: contiguous, is_contiguous, stride, storage_offset,
data_ptr, nbytes, itemsize, ndimension, reshape_as, sum_to_size, is_same_size, is_signed, is_nonzero,
get_device, type, the byte/char/short casts, and the in-place fill_diagonal_, apply_, map_, resize_ and
resize_as_.

hubkit tensors own numpy/cupy arrays, so strides and pointers are the array's (in elements, as in
PyTorch); views made by transposes and slices are non-contiguous exactly as they are in numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, DTypeError, GradError, ShapeError
from hubkit.tensor import Tensor

# PyTorch's legacy type names, as Tensor.type() spells them
_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor", "int64": "LongTensor",
               "int32": "IntTensor", "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor",
               "bool": "BoolTensor"}
_NAME_TYPES = {v: k for k, v in _TYPE_NAMES.items()}


def contiguous(input: Tensor, memory_format: Any = None) -> Tensor:  # noqa: A002
    """``input`` itself when its array is C-contiguous, else a contiguous copy (differentiable)."""
    if input.array.flags.c_contiguous:
        return input
    return input.clone()


def is_contiguous(input: Tensor, memory_format: Any = None) -> bool:  # noqa: A002
    return bool(input.array.flags.c_contiguous)


def stride(input: Tensor, dim: int | None = None) -> Any:  # noqa: A002
    """The step in elements between neighbours along each dim (or along ``dim``)."""
    steps = tuple(s // input.array.itemsize for s in input.array.strides)
    return steps if dim is None else steps[dim]


def storage_offset(input: Tensor) -> int:  # noqa: A002
    """Elements from the start of the underlying buffer to this tensor's first element."""
    base = input.array
    while getattr(base, "base", None) is not None:
        base = base.base
    return (data_ptr(input) - _pointer(base)) // input.array.itemsize if hasattr(base, "strides") else 0


def _pointer(a: Any) -> int:
    return int(a.data.ptr) if hasattr(a.data, "ptr") else int(a.__array_interface__["data"][0])


def data_ptr(input: Tensor) -> int:  # noqa: A002
    """The address of the first element."""
    return _pointer(input.array)


def _nbytes(self: Tensor) -> int:
    return int(self.array.nbytes)


def _itemsize(self: Tensor) -> int:
    return int(self.array.itemsize)


nbytes = property(_nbytes, doc="The size of the tensor's data in bytes.")
itemsize = property(_itemsize, doc="The size of one element in bytes.")


def ndimension(input: Tensor) -> int:  # noqa: A002
    return input.ndim


def is_same_size(input: Tensor, other: Tensor) -> bool:  # noqa: A002
    return tuple(input.shape) == tuple(other.shape)


def is_signed(input: Tensor) -> bool:  # noqa: A002
    return input.dtype.kind in "fic"


def is_nonzero(input: Tensor) -> bool:  # noqa: A002
    """The truth of a one-element tensor; an error for any other size."""
    if input.array.size != 1:
        raise ShapeError(f"is_nonzero: a Tensor with {input.array.size} elements has no single truth value")
    return bool(input.item())


def get_device(input: Tensor) -> int:  # noqa: A002
    """The CUDA device index, or -1 on the CPU."""
    return -1 if input.device.type == "cpu" else int(input.device.index)


def reshape_as(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    return input.reshape(*other.shape)


def sum_to_size(input: Tensor, *size: Any) -> Tensor:  # noqa: A002
    """Sum ``input`` down to ``size``, a shape it was broadcast from."""
    from hubkit.ops.reduction import sum

    target = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    try:
        np.broadcast_shapes(target, tuple(input.shape))
    except ValueError:
        raise ShapeError(f"sum_to_size: size {target} is not expandable to {tuple(input.shape)}") from None
    lead = input.ndim - len(target)
    if lead < 0:
        raise ShapeError(f"sum_to_size: size {target} has more dims than the tensor {tuple(input.shape)}")
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(target) if n == 1 and input.shape[i + lead] != 1)
    out = sum(input, axes, keepdim=True) if axes else input
    return out.reshape(*target)


def type(input: Tensor, dtype: Any = None, non_blocking: bool = False) -> Any:  # noqa: A001,A002
    """Without ``dtype``: the legacy type name (``'hubkit.FloatTensor'``); with one (a dtype or such a name):
    ``input`` cast to it."""
    if dtype is None:
        dev = "cuda." if input.device.type == "cuda" else ""
        name = _TYPE_NAMES.get("bool" if input.dtype == np.bool_ else str(input.dtype), str(input.dtype))
        return f"hubkit.{dev}{name}"
    if isinstance(dtype, str) and "Tensor" in dtype:
        key = dtype.rsplit(".", 1)[-1]
        if key not in _NAME_TYPES:
            raise DTypeError(f"type: unknown tensor type {dtype!r}; use e.g. 'torch.FloatTensor' or a dtype")
        out = input.to(_NAME_TYPES[key])
        return out.to("cuda") if ".cuda." in dtype else out
    return input.to(dtype)


def byte(input: Tensor) -> Tensor:  # noqa: A002
    return input.to("uint8")


def char(input: Tensor) -> Tensor:  # noqa: A002
    return input.to("int8")


def short(input: Tensor) -> Tensor:  # noqa: A002
    return input.to("int16")


def fill_diagonal(input: Tensor, fill_value: Any, wrap: bool = False) -> Tensor:  # noqa: A002
    """``t.fill_diagonal_(v)``: ``t`` (2-d, or n-d with all dims equal) with its main diagonal set to ``v``;
    with ``wrap`` a tall matrix restarts the diagonal every ``cols + 1`` rows."""
    from hubkit.ops.elementwise import where

    x = input.array
    if x.ndim < 2 or (x.ndim > 2 and len(set(x.shape)) != 1):
        raise ShapeError(f"fill_diagonal_: expects a 2-d tensor or one with all dims equal, got {tuple(x.shape)}")
    xp = input._xp
    mask = xp.zeros(x.shape, dtype=bool)
    if x.ndim == 2:
        rows, cols = x.shape
        r = xp.arange(rows)
        keep = r % (cols + 1) < cols if wrap else r < cols
        r = r[keep]
        mask[r, (r % (cols + 1)) if wrap else r] = True
    else:
        idx = xp.arange(x.shape[0])
        mask[(idx,) * x.ndim] = True
    return where(mask, fill_value, input)


def resize(input: Tensor, *sizes: Any, memory_format: Any = None) -> Tensor:  # noqa: A002
    """``t.resize_(*sizes)``: ``t`` reshaped to ``sizes`` over its memory, whatever the element count.

    Like torch: the same shape changes nothing; otherwise the result is the first ``prod(sizes)``
    elements in memory order (a view sharing memory), and when it needs more elements than there are,
    new memory holding the old elements first (the rest zeros; torch leaves them uninitialized).
    Refused for a tensor that requires grad, as in torch.
    """
    if input.requires_grad:
        raise GradError("cannot resize variables that require grad")
    shape = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ArgumentError(f"resize_: sizes must be non-negative ints, got {tuple(shape)}")
    shape = tuple(int(n) for n in shape)
    x = input.array
    if shape == x.shape:
        return input
    xp = input._xp
    flat = x.reshape(-1) if x.flags.c_contiguous else xp.ravel(x, order="K")  # memory order, as torch's storage
    count = math.prod(shape)
    if count <= flat.size:
        return Tensor._make(flat[:count].reshape(shape))
    grown = xp.zeros(count, dtype=x.dtype)
    grown[: flat.size] = flat
    return Tensor._make(grown.reshape(shape))


def resize_as(input: Tensor, the_template: Tensor, *, memory_format: Any = None) -> Tensor:  # noqa: A002
    """``t.resize_as_(other)``: ``t.resize_(other.size())``."""
    return resize(input, the_template.shape)


def apply(input: Tensor, callable: Callable[[Any], Any]) -> Tensor:  # noqa: A002
    """``t.apply_(fn)``: ``fn`` applied to every element (CPU only, slow: a Python call per element)."""
    if input.device.type != "cpu":
        raise DTypeError("apply_ is only implemented on CPU tensors")
    out = np.vectorize(callable, otypes=[input.dtype])(input.array) if input.array.size else input.array.copy()
    return Tensor._make(np.asarray(out, dtype=input.dtype))


def map(input: Tensor, other: Tensor, callable: Callable[[Any, Any], Any]) -> Tensor:  # noqa: A001,A002
    """``t.map_(other, fn)``: ``fn(a, b)`` for every pair of elements (``other`` broadcast; CPU only)."""
    if input.device.type != "cpu":
        raise DTypeError("map_ is only implemented on CPU tensors")
    b = np.broadcast_to(other.array, input.shape)
    out = np.vectorize(callable, otypes=[input.dtype])(input.array, b) if input.array.size else input.array.copy()
    return Tensor._make(np.asarray(out, dtype=input.dtype))


def clone(input: Tensor, *, memory_format: Any = None) -> Tensor:  # noqa: A002
    """A copy of ``input`` that stays in the graph."""
    return input.clone()


def numel(input: Tensor) -> int:  # noqa: A002
    return input.numel()


def is_floating_point(input: Tensor) -> bool:  # noqa: A002
    return input.is_floating_point()


def promote_types(type1: Any, type2: Any) -> np.dtype:
    """The dtype two tensors of these dtypes combine to (a float beats an integer, as in PyTorch)."""
    from hubkit.ops.elementwise import promote_types as promote
    from hubkit.tensor import _as_dtype

    return promote(_as_dtype(type1), _as_dtype(type2))


def result_type(tensor: Any, other: Any) -> np.dtype:
    """The dtype of an arithmetic op on ``tensor`` and ``other`` (tensors or Python numbers)."""
    from hubkit.ops.elementwise import as_operands

    if not isinstance(tensor, Tensor) and not isinstance(other, Tensor):
        from hubkit.tensor import tensor as make

        tensor = make(tensor)
    a, b = as_operands(tensor, other, "result_type")
    return a.dtype


def can_cast(from_: Any, to: Any) -> bool:
    """Whether PyTorch's casting rules allow ``from_`` to become ``to`` in an in-place op (no lower category)."""
    from hubkit.tensor import _as_dtype, _can_cast

    return _can_cast(_as_dtype(from_), _as_dtype(to))


# attributes whose answer is fixed by what hubkit tensors are: dense, real, materialized, unquantized
is_sparse = property(lambda self: False, doc="False: hubkit tensors are dense.")
is_quantized = property(lambda self: False, doc="False: hubkit has no quantized tensors.")
is_meta = property(lambda self: False, doc="False: every hubkit tensor holds data.")
H = property(lambda self: self.T if self.ndim <= 2 else _not_matrix("H", self), doc="The conjugate transpose of a "
             "matrix (a transpose: hubkit tensors are real).")
mH = property(lambda self: self.mT, doc="The conjugate transpose of the last two dims (real tensors: ``.mT``).")  # noqa: N816
retains_grad = property(lambda self: bool(self._retain_grad), doc="True after ``retain_grad()`` on a non-leaf.")


def _not_matrix(name: str, t: Tensor) -> Any:
    raise ShapeError(f"Tensor.{name} is only supported on matrices or vectors, got shape {tuple(t.shape)}; "
                     "use .mH for batches")


def pin_memory(input: Tensor, device: Any = None) -> Tensor:  # noqa: A002
    """``input`` itself: hubkit copies host arrays to the GPU directly, so there is no page-locked copy."""
    return input


def is_pinned(input: Tensor, device: Any = None) -> bool:  # noqa: A002
    return False
