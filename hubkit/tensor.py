"""``Tensor`` — one ndarray (numpy or cupy) plus what autograd needs — and the creation functions.

The differentiable ops live in ``hubkit.ops``; Tensor's operators and methods are thin calls
into them, listed in one table (``hubkit.ops.table``) and bound at the end of this module.
"""

from __future__ import annotations

import builtins
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hubkit._backend import CPU, FOREIGN_DEVICES, Device, device_of, get_array_module, to_device, xp_for_device
from hubkit._tensor_str import format_array, join_suffixes
from hubkit.errors import DeviceError, DTypeError, GradError, ShapeError
from hubkit.random import Generator, get_rng

# dtypes, under PyTorch's names
float16 = half = np.dtype("float16")
float32 = float = np.dtype("float32")  # noqa: A001
float64 = double = np.dtype("float64")
int8 = np.dtype("int8")
int16 = short = np.dtype("int16")
int32 = int = np.dtype("int32")  # noqa: A001
int64 = long = np.dtype("int64")
uint8 = np.dtype("uint8")
bool_ = np.dtype("bool")
complex64 = np.dtype("complex64")

_DEFAULT_FLOAT = float32
_default_device: Device | None = None  # set_default_device; None means the CPU


def set_default_dtype(dtype: Any) -> None:
    """The dtype of new floating-point tensors made from Python floats or by factories (float32 by default)."""
    global _DEFAULT_FLOAT
    d = _as_dtype(dtype)
    if d is None or d.kind != "f":
        raise DTypeError(f"set_default_dtype expects a floating-point dtype (hubkit.float32, hubkit.float64, "
                         f"hubkit.float16), got {dtype!r}")
    _DEFAULT_FLOAT = d


def get_default_dtype() -> np.dtype:
    return _DEFAULT_FLOAT


def set_default_device(device: Any) -> None:
    """The device factories (``zeros``, ``randn``, ``tensor``, ...) create tensors on when given none."""
    global _default_device
    _default_device = None if device is None else Device(device)


def get_default_device() -> Device:
    return _default_device or CPU


def _on(device: Any) -> Any:
    return device if device is not None else _default_device


def _as_dtype(dtype: Any) -> np.dtype | None:
    if dtype is None:
        return None
    if dtype is builtins.bool:
        return bool_
    if dtype is builtins.float:
        return _DEFAULT_FLOAT
    if dtype is builtins.int:
        return int64
    try:
        return np.dtype(dtype)
    except TypeError as exc:
        raise DTypeError(f"not a dtype: {dtype!r}; use e.g. hubkit.float32 or 'float32'") from exc


def _dtype_name(dtype: np.dtype) -> str:
    return "bool" if dtype == bool_ else str(dtype)


class Tensor:
    """An n-dimensional array with autograd.

    ``array`` is the underlying numpy (CPU) or cupy (CUDA) array. ``data`` is PyTorch's: a
    Tensor sharing this one's memory, cut from the graph (writes through it are not tracked).
    ``grad`` is a Tensor after ``backward()`` for leaves with ``requires_grad=True``.

    ``_version`` counts in-place writes to ``array`` made through the Tensor API, so backward can
    refuse a gradient computed from a value that was overwritten after the op saved it.
    """

    __slots__ = ("array", "_grad", "requires_grad", "_creator", "_retain_grad", "_version", "_hooks",
                 "_post_accumulate_hooks", "__weakref__")
    __array_ufunc__ = None  # make numpy defer to Tensor's reflected operators

    def __init__(self, data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> None:
        array = data.array if isinstance(data, Tensor) else data
        array = _to_array(array, _as_dtype(dtype), device)
        self.array = array
        self._grad: Tensor | None = None
        self._creator = None
        self._retain_grad = False
        self._version = 0
        self._hooks = None
        self._post_accumulate_hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, array: Any) -> Tensor:
        """Wrap an array without any checks or copies (the fast path used by ops)."""
        t = object.__new__(cls)
        t.array = array
        t._grad = None
        t.requires_grad = False
        t._creator = None
        t._retain_grad = False
        t._version = 0
        t._hooks = None
        t._post_accumulate_hooks = None
        return t

    @property
    def data(self) -> Tensor:
        """A Tensor sharing this one's memory, detached from the graph (PyTorch's ``.data``)."""
        return Tensor._make(self.array)

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data must be assigned a Tensor, got {type(value).__name__}")
        self.array = value.array

    @property
    def grad(self) -> Tensor | None:
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}"
                )
            if value.shape != self.shape:
                raise GradError(f"assigned grad has data of a different size: {tuple(value.shape)} for a tensor "
                                f"of shape {tuple(self.shape)}")
            if value.dtype != self.dtype:
                raise GradError(f"assigned grad has data of a different type: {_dtype_name(value.dtype)} for a "
                                f"{_dtype_name(self.dtype)} tensor")
            if value.device != self.device:
                raise GradError(f"assigned grad has data located on a different device: {value.device} for a "
                                f"tensor on {self.device}")
        self._grad = value

    # ------------------------------------------------------------ properties
    @property
    def _xp(self) -> Any:
        return get_array_module(self.array)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def device(self) -> Device:
        return device_of(self.array)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def dim(self) -> int:
        return self.array.ndim

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.array.shape if dim is None else self.array.shape[dim]

    def numel(self) -> int:
        return self.array.size

    def nelement(self) -> int:
        return self.array.size

    def element_size(self) -> int:
        return self.array.itemsize

    @property
    def is_leaf(self) -> bool:
        return self._creator is None

    @property
    def grad_fn(self) -> Any:
        return self._creator

    def is_floating_point(self) -> bool:
        return self.array.dtype.kind == "f"

    def __len__(self) -> int:
        if self.array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    # ------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """The data as a numpy array: the same memory on the CPU (writes show through)."""
        if self.device.type != "cpu":
            raise DTypeError(
                f"can't convert a {self.device} tensor to numpy: call .cpu() first to copy it to host memory"
            )
        return self.array

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def item(self) -> builtins.float | builtins.int | builtins.bool:
        if self.array.size != 1:
            raise ValueError(f"a Tensor with {self.array.size} elements cannot be converted to a Python scalar")
        return self.array.reshape(()).item()

    def tolist(self) -> Any:
        return to_device(self.array, CPU).tolist()

    def __float__(self) -> builtins.float:
        return builtins.float(self.item())

    def __int__(self) -> builtins.int:
        return builtins.int(self.item())

    def __bool__(self) -> builtins.bool:
        if self.array.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.array.size} elements is ambiguous; use .any() or .all()"
            )
        return builtins.bool(self.item())

    def __index__(self) -> builtins.int:
        if self.array.dtype.kind not in "iub" or self.array.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return builtins.int(self.item())

    def to(self, *args: Any, dtype: Any = None, device: Any = None, copy: builtins.bool = False) -> Tensor:
        """``t.to("cuda")``, ``t.to(hubkit.float64)``, ``t.to(other_tensor)``, or both keywords."""
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, (str, Device)) and _looks_like_device(a):
                device = a
            elif isinstance(a, str) and not _is_dtype_name(a):
                raise DeviceError(
                    f"to({a!r}): not a device ('cpu', 'cuda', 'cuda:N') nor a dtype (e.g. 'float32', hubkit.int64)"
                )
            else:
                dtype = a
        out = self
        if device is not None and Device(device) != self.device:
            out = _ToDevice(Device(device))(out)
        if dtype is not None and _as_dtype(dtype) != out.dtype:
            out = _Cast(_as_dtype(dtype))(out)
        if copy and out is self:
            out = self.clone()
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device: builtins.int | str | None = None) -> Tensor:
        if device is None:
            return self.to("cuda")
        return self.to(device if isinstance(device, str) else f"cuda:{device}")

    def float(self) -> Tensor:
        return self.to(float32)

    def double(self) -> Tensor:
        return self.to(float64)

    def half(self) -> Tensor:
        return self.to(float16)

    def long(self) -> Tensor:
        return self.to(int64)

    def int(self) -> Tensor:
        return self.to(int32)

    def bool(self) -> Tensor:
        return self.to(bool_)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    # ------------------------------------------------------------ new tensors like this one
    def new_tensor(self, data: Any, dtype: Any = None, device: Any = None,
                   requires_grad: builtins.bool = False) -> Tensor:
        """A copy of ``data`` with this tensor's dtype and device unless given."""
        return tensor(data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_zeros(self, *size: Any, dtype: Any = None, device: Any = None,
                  requires_grad: builtins.bool = False) -> Tensor:
        return _filled(0, size, dtype or self.dtype, device or self.device, requires_grad)

    def new_ones(self, *size: Any, dtype: Any = None, device: Any = None,
                 requires_grad: builtins.bool = False) -> Tensor:
        return _filled(1, size, dtype or self.dtype, device or self.device, requires_grad)

    def new_empty(self, *size: Any, dtype: Any = None, device: Any = None,
                  requires_grad: builtins.bool = False) -> Tensor:
        return _filled(0, size, dtype or self.dtype, device or self.device, requires_grad)

    def new_full(self, size: Sequence[builtins.int], fill_value: Any, dtype: Any = None, device: Any = None,
                 requires_grad: builtins.bool = False) -> Tensor:
        return _filled(fill_value, (tuple(size),), dtype or self.dtype, device or self.device, requires_grad)

    # ------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        if requires_grad and self.array.dtype.kind not in "fc":
            raise DTypeError(
                f"only floating point tensors can require gradients, this one is {_dtype_name(self.dtype)}; "
                "convert it with .float() first"
            )
        if not requires_grad and self._creator is not None:
            raise GradError("you can only change requires_grad flags of leaf tensors; use .detach() instead")
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient: Any = None, retain_graph: builtins.bool | None = None,
                 create_graph: builtins.bool = False, inputs: Any = None) -> None:
        """Accumulate gradients of this tensor into ``.grad`` of the leaves it was computed from."""
        _backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

    def retain_grad(self) -> None:
        self._retain_grad = True

    def detach(self) -> Tensor:
        """A tensor sharing this one's memory, cut from the graph."""
        return Tensor._make(self.array)

    def detach_(self) -> Tensor:
        self._creator = None
        self.requires_grad = False
        return self

    def clone(self) -> Tensor:
        return _Clone()(self)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Any:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor replaces it.

        On a leaf the hook sees the gradient summed over all uses, before it is accumulated into ``.grad``.
        """
        if not self.requires_grad:
            raise GradError("cannot register a hook on a tensor that doesn't require gradient")
        if self._hooks is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> Any:
        """Call ``hook(tensor)`` on a leaf once backward has accumulated its final gradient into ``.grad``.

        The hook runs as soon as that gradient is complete, while backward goes on with the rest of the
        graph (DistributedDataParallel starts averaging a bucket of gradients there). Its return value is ignored.
        """
        if not self.requires_grad:
            raise GradError("cannot register a hook on a tensor that doesn't require gradient")
        if self._creator is not None:
            raise GradError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = {}
        handle = RemovableHandle(self._post_accumulate_hooks)
        self._post_accumulate_hooks[handle.id] = hook
        _note_post_accumulate_hook()
        return handle

    # ------------------------------------------------------------ in place
    def _inplace(self, op: Callable[..., Tensor], *args: Any, _reshaping: builtins.bool = False,
                 **kwargs: Any) -> Tensor:
        """Run ``op(self, *args)`` and make ``self`` hold the result (PyTorch's ``x.op_()``).

        Outside autograd the result is written into ``array`` (so views and ``.data`` aliases see it)
        and the version counter moves on. When the graph is being recorded, ``self`` is rebased on the
        op's node instead and its old array is left intact for the ops that saved it.

        ``_reshaping`` ops (``squeeze_``, ``t_``, ``resize_``, ...) change the tensor's shape rather than
        its values: the result (a view of the same memory, except where ``resize_`` grows) becomes
        ``array``, as torch changes a tensor's sizes and strides in place over the same storage.
        """
        recording = is_grad_enabled() and (
            self.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args)
        )
        if recording:
            if self._creator is None and self.requires_grad:
                raise GradError(
                    "a leaf Variable that requires grad is being used in an in-place operation; "
                    "do the update under `with hubkit.no_grad():`, or on a clone (x = x.clone())"
                )
            out = op(self, *args, **kwargs)
            self._check_inplace_result(out, _reshaping)
            if out.dtype != self.dtype:
                out = out.to(self.dtype)
            _rebase(self, out)
            return self
        with no_grad():
            out = op(self, *args, **kwargs)
        self._check_inplace_result(out, _reshaping)
        if _reshaping:
            self.array = out.array
        elif out.array is not self.array:
            self.array[...] = out.array
        self._version += 1
        return self

    def _check_inplace_result(self, out: Tensor, reshaping: builtins.bool = False) -> None:
        if out.shape != self.shape and not reshaping:
            raise ShapeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                             f"{list(out.shape)} of an in-place operation")
        if out.dtype != self.dtype and not _can_cast(out.dtype, self.dtype):
            raise DTypeError(f"result type {_dtype_name(out.dtype)} can't be cast to the desired output type "
                             f"{_dtype_name(self.dtype)} of an in-place operation")

    def _write(self, value: Any) -> Tensor:
        """Fill ``array`` with ``value`` (broadcast) outside autograd: zero_, fill_, copy_, init."""
        self._check_leaf_write()
        self.array[...] = value
        self._version += 1
        return self

    def _check_leaf_write(self) -> None:
        if self.requires_grad and self._creator is None and is_grad_enabled():
            raise GradError(
                "a leaf Variable that requires grad is being used in an in-place operation; "
                "wrap the update in `with hubkit.no_grad():`"
            )

    def _value(self, other: Any) -> Any:
        return other.array if isinstance(other, Tensor) else other

    def zero_(self) -> Tensor:
        return self._write(0)

    def fill_(self, value: Any) -> Tensor:
        return self._write(self._value(value))

    def copy_(self, src: Any, non_blocking: builtins.bool = False) -> Tensor:
        if isinstance(src, Tensor) and is_grad_enabled() and (src.requires_grad or self.requires_grad):
            return self._inplace(_copy_from, src)
        src = self._value(src)
        return self._write(to_device(src, self.device) if hasattr(src, "shape") else src)

    def uniform_(self, a: builtins.float = 0.0, b: builtins.float = 1.0, generator: Generator | None = None) -> Tensor:
        sample = get_rng(generator).uniform(a, b, size=self.array.shape)
        return self._write(to_device(sample.astype(self.dtype, copy=False), self.device))

    def normal_(self, mean: builtins.float = 0.0, std: builtins.float = 1.0,
                generator: Generator | None = None) -> Tensor:
        sample = get_rng(generator).normal(mean, std, size=self.array.shape)
        return self._write(to_device(sample.astype(self.dtype, copy=False), self.device))

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a one-element tensor's value, as for a Python number."""
        if spec and self.array.size == 1:
            return format(self.item(), spec)
        return format(str(self), spec)

    # ------------------------------------------------------------ repr
    def __repr__(self) -> str:
        """PyTorch's format: ``tensor([1.5000, 2.0000], dtype=hubkit.float64, requires_grad=True)``."""
        data = to_device(self.array, CPU)
        suffixes = []
        if self.device.type != "cpu":
            suffixes.append(f"device='{self.device}'")
        if data.size == 0:
            if data.ndim != 1:
                suffixes.append(f"size={tuple(data.shape)}")
            if data.dtype != _DEFAULT_FLOAT:
                suffixes.append(f"dtype=hubkit.{_dtype_name(data.dtype)}")
        elif data.dtype not in (_DEFAULT_FLOAT, complex64, int64, bool_):
            suffixes.append(f"dtype=hubkit.{_dtype_name(data.dtype)}")
        if self._creator is not None:
            suffixes.append(f"grad_fn=<{type(self._creator).__name__}Backward>")
        elif self.requires_grad:
            suffixes.append("requires_grad=True")
        prefix = "tensor("
        return join_suffixes(prefix + format_array(data, len(prefix)), suffixes, len(prefix))

    def __hash__(self) -> builtins.int:
        return id(self)

    @property
    def T(self) -> Tensor:  # noqa: N802
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:  # noqa: N802
        return self.transpose(-2, -1)


def _can_cast(src: np.dtype, dst: np.dtype) -> builtins.bool:
    """PyTorch's in-place rule: a result may not move to a lower category (float into int, int into bool)."""
    order = "biufc"
    return order.index(src.kind if src.kind in order else "f") <= order.index(dst.kind if dst.kind in order else "f")


def _rebase(target: Tensor, out: Tensor) -> None:
    """Make ``target`` the graph node ``out`` is (after a recorded in-place op on ``target``).

    Ops that used ``target``'s old value recorded its node when they ran and keep the arrays they
    saved, so their gradients still reach the old value's creator.
    """
    creator = out._creator
    target.array, target._creator, target.requires_grad = out.array, creator, out.requires_grad
    if creator is not None:
        creator.outputs = tuple(weakref.ref(target) if ref() is out else ref for ref in creator.outputs)


def _is_dtype_name(name: str) -> builtins.bool:
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True


def _looks_like_device(spec: Any) -> builtins.bool:
    if isinstance(spec, Device):
        return True
    return isinstance(spec, str) and spec.split(":")[0].strip().lower() in ("cpu", "cuda", *FOREIGN_DEVICES)


def _infer_dtype(obj: Any) -> np.dtype | None:
    """PyTorch's rules for Python data: floats -> float32, ints -> int64, bools -> bool."""
    if isinstance(obj, builtins.bool):
        return bool_
    if isinstance(obj, builtins.int):
        return int64
    if isinstance(obj, builtins.float):
        return _DEFAULT_FLOAT
    if isinstance(obj, complex):
        return complex64
    return None


def _to_array(obj: Any, dtype: np.dtype | None, device: Any) -> Any:
    target = Device(device) if device is not None else None
    if hasattr(obj, "__cuda_array_interface__") or isinstance(obj, np.ndarray):
        array = obj
    elif isinstance(obj, np.generic):
        array = np.asarray(obj)
    else:
        array = np.asarray(obj)
        if dtype is None and array.dtype.kind in "fiub" and not isinstance(obj, np.ndarray):
            if array.dtype.kind == "f":
                array = array.astype(_DEFAULT_FLOAT)
            elif array.dtype.kind in "iu":
                array = array.astype(int64)
        if array.dtype == object:
            raise DTypeError(f"can't build a tensor from {type(obj).__name__} data of mixed or ragged shape")
    if dtype is not None and array.dtype != dtype:
        array = array.astype(dtype)
    if target is not None:
        array = to_device(array, target)
    return array


# ---------------------------------------------------------------- creation


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, scalars, ndarrays or a Tensor)."""
    src = data.array if isinstance(data, Tensor) else data
    if device is None and not isinstance(data, Tensor) and not hasattr(src, "__cuda_array_interface__"):
        device = _default_device
    array = _to_array(src, _as_dtype(dtype), device)
    if array is src:
        array = array.copy()
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like ``tensor`` but shares memory with ``data`` when dtype and device already match."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    src = data.array if isinstance(data, Tensor) else data
    return Tensor._make(_to_array(src, _as_dtype(dtype), device))


def from_numpy(array: np.ndarray) -> Tensor:
    """Wrap a numpy array without copying; writes through either are seen by both."""
    if not isinstance(array, np.ndarray):
        raise DTypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._make(array)


def _shape_of(size: tuple) -> tuple[builtins.int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(builtins.int(s) for s in size)


def _filled(fill: Any, size: tuple, dtype: Any, device: Any, requires_grad: builtins.bool) -> Tensor:
    device = _on(device)
    xp = xp_for_device(device)
    dtype = _as_dtype(dtype) or _DEFAULT_FLOAT
    shape = _shape_of(size)
    if device is not None and Device(device).type == "cuda":
        with xp.cuda.Device(Device(device).index):
            array = xp.full(shape, fill, dtype=dtype)
    else:
        array = xp.full(shape, fill, dtype=dtype)
    return Tensor(array, requires_grad=requires_grad)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _filled(0, size, dtype, device, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _filled(1, size, dtype, device, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _filled(0, size, dtype, device, requires_grad)


def full(size: Sequence[builtins.int], fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: builtins.bool = False) -> Tensor:
    if dtype is None:
        dtype = _infer_dtype(fill_value) or _DEFAULT_FLOAT
    return _filled(fill_value, (tuple(size),), dtype, device, requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _filled(0, t.shape, dtype or t.dtype, device or t.device, requires_grad)


def ones_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _filled(1, t.shape, dtype or t.dtype, device or t.device, requires_grad)


def empty_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _filled(0, t.shape, dtype or t.dtype, device or t.device, requires_grad)


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, device: Any = None,
              requires_grad: builtins.bool = False) -> Tensor:
    return _filled(fill_value, t.shape, dtype or t.dtype, device or t.device, requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: builtins.bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, builtins.int) for v in (start, end, step))
        dtype = int64 if is_int else _DEFAULT_FLOAT
    array = np.arange(start, end, step).astype(_as_dtype(dtype))
    return Tensor(array, device=_on(device), requires_grad=requires_grad)


def linspace(start: builtins.float, end: builtins.float, steps: builtins.int, dtype: Any = None, device: Any = None,
             requires_grad: builtins.bool = False) -> Tensor:
    array = np.linspace(start, end, steps).astype(_as_dtype(dtype) or _DEFAULT_FLOAT)
    return Tensor(array, device=_on(device), requires_grad=requires_grad)


def eye(n: builtins.int, m: builtins.int | None = None, dtype: Any = None, device: Any = None,
        requires_grad: builtins.bool = False) -> Tensor:
    array = np.eye(n, m, dtype=_as_dtype(dtype) or _DEFAULT_FLOAT)
    return Tensor(array, device=_on(device), requires_grad=requires_grad)


def _random(draw: Any, size: tuple, dtype: Any, device: Any, requires_grad: builtins.bool) -> Tensor:
    dtype = _as_dtype(dtype) or _DEFAULT_FLOAT
    array = draw(_shape_of(size)).astype(dtype, copy=False)
    return Tensor(array, device=_on(device), requires_grad=requires_grad)


def rand(*size: Any, generator: Generator | None = None, dtype: Any = None, device: Any = None,
         requires_grad: builtins.bool = False) -> Tensor:
    """Uniform samples in [0, 1) from ``generator`` (default: the global one seeded by manual_seed)."""
    return _random(lambda s: get_rng(generator).random(s), size, dtype, device, requires_grad)


def randn(*size: Any, generator: Generator | None = None, dtype: Any = None, device: Any = None,
          requires_grad: builtins.bool = False) -> Tensor:
    """Standard normal samples from ``generator`` (default: the global one)."""
    return _random(lambda s: get_rng(generator).standard_normal(s), size, dtype, device, requires_grad)


def randint(low: builtins.int, high: builtins.int | None = None, size: Sequence[builtins.int] = (), *,
            generator: Generator | None = None, dtype: Any = None, device: Any = None) -> Tensor:
    """Integers in [low, high) (or [0, low) when high is omitted), int64 by default."""
    if high is None:
        low, high = 0, low
    array = get_rng(generator).integers(low, high, size=tuple(size)).astype(_as_dtype(dtype) or int64)
    return Tensor(array, device=_on(device))


def randperm(n: builtins.int, *, generator: Generator | None = None, dtype: Any = None,
             device: Any = None) -> Tensor:
    array = get_rng(generator).permutation(n).astype(_as_dtype(dtype) or int64)
    return Tensor(array, device=_on(device))


def rand_like(t: Tensor, generator: Generator | None = None) -> Tensor:
    return rand(*t.shape, generator=generator, dtype=t.dtype, device=t.device)


def randn_like(t: Tensor, generator: Generator | None = None) -> Tensor:
    return randn(*t.shape, generator=generator, dtype=t.dtype, device=t.device)


def is_tensor(obj: Any) -> builtins.bool:
    return isinstance(obj, Tensor)


# ---------------------------------------------------------------- ops that belong to the Tensor itself
from hubkit.autograd import Function, RemovableHandle, _note_post_accumulate_hook, is_grad_enabled, no_grad  # noqa: E402
from hubkit.autograd import backward as _backward  # noqa: E402


class _ToDevice(Function):
    def __init__(self, device: Device) -> None:
        self.device = device

    def forward(self, x: Any) -> Any:
        self.source = device_of(x)
        return to_device(x, self.device)

    def backward(self, gy: Any) -> Any:
        return to_device(gy, self.source)


class _Cast(Function):
    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype

    def forward(self, x: Any) -> Any:
        self.source = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy: Any) -> Any:
        return gy.astype(self.source) if self.source.kind in "fc" else None


class _Clone(Function):
    def forward(self, x: Any) -> Any:
        return x.copy()

    def backward(self, gy: Any) -> Any:
        return gy


class _CopyFrom(Function):
    """``dst.copy_(src)`` under autograd: the result is ``src`` broadcast and cast to ``dst``."""

    def forward(self, dst: Any, src: Any) -> Any:
        self.src_meta = (src.dtype, device_of(src))
        src = to_device(src, device_of(dst))
        return get_array_module(dst).broadcast_to(src, dst.shape).astype(dst.dtype)

    def backward(self, gy: Any) -> tuple[None, Any]:
        dtype, device = self.src_meta
        return None, to_device(gy.astype(dtype, copy=False), device)


def _copy_from(dst: Tensor, src: Tensor) -> Tensor:
    return _CopyFrom()(dst, src)


def _inplace_method(op: Callable[..., Tensor], reshaping: builtins.bool = False) -> Callable[..., Tensor]:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return self._inplace(op, *args, _reshaping=reshaping, **kwargs)

    return method


# ---------------------------------------------------------------- Tensor's operators and methods
# Every op bound onto Tensor (operators, methods, in-place variants) is listed in one table,
# hubkit/ops/table.py; the lines below are the only place that binds them.
from hubkit.ops.table import AUGMENTED, INPLACE, INPLACE_RESHAPING, METHODS, OPERATORS  # noqa: E402

for _name, _op in {**OPERATORS, **METHODS}.items():
    setattr(Tensor, _name, _op)
for _name, _op in {**INPLACE, **AUGMENTED}.items():
    setattr(Tensor, _name, _inplace_method(_op))
for _name, _op in INPLACE_RESHAPING.items():
    setattr(Tensor, _name, _inplace_method(_op, reshaping=True))
del _name, _op
