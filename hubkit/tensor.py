"""``Tensor`` — one ndarray (numpy or cupy) plus what autograd needs — and the creation functions.

The differentiable ops live in ``hubkit.nn.functional``; Tensor's operators and methods
are thin calls into them, bound at the end of this module.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from hubkit._backend import CPU, Device, device_of, get_array_module, to_device, xp_for_device
from hubkit._tensor_str import format_array, join_suffixes
from hubkit.errors import DeviceError, DTypeError, GradError
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

    ``data`` is the underlying numpy (CPU) or cupy (CUDA) array; ``grad`` is a Tensor after
    ``backward()`` for leaves with ``requires_grad=True``.
    """

    __slots__ = ("data", "grad", "requires_grad", "_creator", "_retain_grad", "__weakref__")
    __array_ufunc__ = None  # make numpy defer to Tensor's reflected operators

    def __init__(self, data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> None:
        array = data.data if isinstance(data, Tensor) else data
        array = _to_array(array, _as_dtype(dtype), device)
        self.data = array
        self.grad: Tensor | None = None
        self._creator = None
        self._retain_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, array: Any) -> Tensor:
        """Wrap an array without any checks or copies (the fast path used by ops)."""
        t = object.__new__(cls)
        t.data = array
        t.grad = None
        t.requires_grad = False
        t._creator = None
        t._retain_grad = False
        return t

    # ------------------------------------------------------------ properties
    @property
    def _xp(self) -> Any:
        return get_array_module(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> Device:
        return device_of(self.data)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return self.data.size

    def nelement(self) -> int:
        return self.data.size

    def element_size(self) -> int:
        return self.data.itemsize

    @property
    def is_leaf(self) -> bool:
        return self._creator is None

    @property
    def grad_fn(self) -> Any:
        return self._creator

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    # ------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """The data as a numpy array: the same memory on the CPU (writes show through)."""
        if self.device.type != "cpu":
            raise DTypeError(
                f"can't convert a {self.device} tensor to numpy: call .cpu() first to copy it to host memory"
            )
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def item(self) -> builtins.float | builtins.int | builtins.bool:
        if self.data.size != 1:
            raise ValueError(f"a Tensor with {self.data.size} elements cannot be converted to a Python scalar")
        return self.data.reshape(()).item()

    def tolist(self) -> Any:
        return to_device(self.data, CPU).tolist()

    def __float__(self) -> builtins.float:
        return builtins.float(self.item())

    def __int__(self) -> builtins.int:
        return builtins.int(self.item())

    def __bool__(self) -> builtins.bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; use .any() or .all()"
            )
        return builtins.bool(self.item())

    def __index__(self) -> builtins.int:
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
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

    # ------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind not in "fc":
            raise DTypeError(
                f"only floating point tensors can require gradients, this one is {_dtype_name(self.dtype)}; "
                "convert it with .float() first"
            )
        if not requires_grad and self._creator is not None:
            raise GradError("you can only change requires_grad flags of leaf tensors; use .detach() instead")
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient: Any = None, retain_graph: builtins.bool = False) -> None:
        """Accumulate gradients of this tensor into ``.grad`` of the leaves it was computed from."""
        _backward(self, gradient, retain_graph=retain_graph)

    def retain_grad(self) -> None:
        self._retain_grad = True

    def detach(self) -> Tensor:
        """A tensor sharing this one's memory, cut from the graph."""
        return Tensor._make(self.data)

    def detach_(self) -> Tensor:
        self._creator = None
        self.requires_grad = False
        return self

    def clone(self) -> Tensor:
        return _Clone()(self)

    # ------------------------------------------------------------ in-place helpers (used by optimizers and init)
    def _check_inplace(self) -> None:
        if self.requires_grad and self._creator is None and is_grad_enabled():
            raise GradError(
                "a leaf tensor that requires grad is being used in an in-place operation; "
                "wrap it in `with hubkit.no_grad():`"
            )

    def _value(self, other: Any) -> Any:
        return other.data if isinstance(other, Tensor) else other

    def zero_(self) -> Tensor:
        self._check_inplace()
        self.data[...] = 0
        return self

    def fill_(self, value: Any) -> Tensor:
        self._check_inplace()
        self.data[...] = self._value(value)
        return self

    def copy_(self, src: Any) -> Tensor:
        self._check_inplace()
        src = self._value(src)
        self.data[...] = to_device(src, self.device) if hasattr(src, "shape") else src
        return self

    def add_(self, other: Any, alpha: Any = 1) -> Tensor:
        self._check_inplace()
        other = self._value(other)
        if alpha != 1:
            other = other * alpha
        self.data += other
        return self

    def sub_(self, other: Any, alpha: Any = 1) -> Tensor:
        return self.add_(self._value(other), alpha=-alpha)

    def mul_(self, other: Any) -> Tensor:
        self._check_inplace()
        self.data *= self._value(other)
        return self

    def div_(self, other: Any) -> Tensor:
        self._check_inplace()
        self.data /= self._value(other)
        return self

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
        self._check_inplace()
        self._xp.clip(self.data, min, max, out=self.data)
        return self

    def uniform_(self, a: builtins.float = 0.0, b: builtins.float = 1.0, generator: Generator | None = None) -> Tensor:
        self._check_inplace()
        sample = get_rng(generator).uniform(a, b, size=self.data.shape)
        self.data[...] = to_device(sample.astype(self.dtype, copy=False), self.device)
        return self

    def normal_(self, mean: builtins.float = 0.0, std: builtins.float = 1.0,
                generator: Generator | None = None) -> Tensor:
        self._check_inplace()
        sample = get_rng(generator).normal(mean, std, size=self.data.shape)
        self.data[...] = to_device(sample.astype(self.dtype, copy=False), self.device)
        return self

    # ------------------------------------------------------------ repr
    def __repr__(self) -> str:
        """PyTorch's format: ``tensor([1.5000, 2.0000], dtype=hubkit.float64, requires_grad=True)``."""
        data = to_device(self.data, CPU)
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


def _is_dtype_name(name: str) -> builtins.bool:
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True


def _looks_like_device(spec: Any) -> builtins.bool:
    if isinstance(spec, Device):
        return True
    return isinstance(spec, str) and spec.split(":")[0] in ("cpu", "cuda")


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
    src = data.data if isinstance(data, Tensor) else data
    array = _to_array(src, _as_dtype(dtype), device)
    if array is src:
        array = array.copy()
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like ``tensor`` but shares memory with ``data`` when dtype and device already match."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    src = data.data if isinstance(data, Tensor) else data
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
    return Tensor(array, device=device, requires_grad=requires_grad)


def linspace(start: builtins.float, end: builtins.float, steps: builtins.int, dtype: Any = None, device: Any = None,
             requires_grad: builtins.bool = False) -> Tensor:
    array = np.linspace(start, end, steps).astype(_as_dtype(dtype) or _DEFAULT_FLOAT)
    return Tensor(array, device=device, requires_grad=requires_grad)


def eye(n: builtins.int, m: builtins.int | None = None, dtype: Any = None, device: Any = None,
        requires_grad: builtins.bool = False) -> Tensor:
    array = np.eye(n, m, dtype=_as_dtype(dtype) or _DEFAULT_FLOAT)
    return Tensor(array, device=device, requires_grad=requires_grad)


def _random(draw: Any, size: tuple, dtype: Any, device: Any, requires_grad: builtins.bool) -> Tensor:
    dtype = _as_dtype(dtype) or _DEFAULT_FLOAT
    array = draw(_shape_of(size)).astype(dtype, copy=False)
    return Tensor(array, device=device, requires_grad=requires_grad)


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
    return Tensor(array, device=device)


def randperm(n: builtins.int, *, generator: Generator | None = None, dtype: Any = None,
             device: Any = None) -> Tensor:
    array = get_rng(generator).permutation(n).astype(_as_dtype(dtype) or int64)
    return Tensor(array, device=device)


def rand_like(t: Tensor, generator: Generator | None = None) -> Tensor:
    return rand(*t.shape, generator=generator, dtype=t.dtype, device=t.device)


def randn_like(t: Tensor, generator: Generator | None = None) -> Tensor:
    return randn(*t.shape, generator=generator, dtype=t.dtype, device=t.device)


def is_tensor(obj: Any) -> builtins.bool:
    return isinstance(obj, Tensor)


# ---------------------------------------------------------------- ops that belong to the Tensor itself
from hubkit.autograd import Function, is_grad_enabled  # noqa: E402
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


from hubkit.nn.functional import _tensor_methods  # noqa: E402,F401  (binds operators and methods onto Tensor)
