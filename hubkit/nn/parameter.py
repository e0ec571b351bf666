"""``Parameter``: a Tensor that a Module registers as learnable (``requires_grad=True`` by default)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hubkit._backend import Device, get_array_module, to_device
from hubkit.errors import ShapeError
from hubkit.tensor import Tensor, _as_dtype, get_default_device, get_default_dtype


class Parameter(Tensor):
    """A leaf Tensor that ``Module.__setattr__`` registers in ``_parameters``.

    ``Parameter(t)`` shares ``t``'s memory (no copy), like ``torch.nn.Parameter``.
    """

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        super().__init__(data.array if isinstance(data, Tensor) else data)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (_rebuild_parameter, (self.array, self.requires_grad, self.grad))

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(self.array.copy(), requires_grad=self.requires_grad)
        if self.grad is not None:
            out.grad = Tensor._make(self.grad.array.copy())
        memo[id(self)] = out
        return out


def _rebuild_parameter(data: Any, requires_grad: bool, grad: Tensor | None) -> Parameter:
    p = Parameter(data, requires_grad=requires_grad)
    p.grad = grad
    return p


# ---------------------------------------------------------------- lazy (shape not yet known)


class UninitializedTensorMixin:
    """What ``UninitializedParameter`` and ``UninitializedBuffer`` share (torch's mixin of the same name).

    The tensor holds an empty array that carries only the dtype and device: ``module.to(...)``,
    ``.double()`` or ``.cuda()`` before the first forward change those, as in torch. Its shape is not
    known, so reading ``.shape`` raises. ``materialize(shape)`` gives it memory of that shape and turns
    the same object into a ``Parameter`` (a plain ``Tensor`` for a buffer), so an optimizer created
    before the first forward holds the materialized parameter afterwards.
    """

    __slots__ = ()
    cls_to_become: type

    def materialize(self, shape: Any, device: Any = None, dtype: Any = None) -> None:
        """Replace the empty placeholder by zeros of ``shape`` (on ``device``, of ``dtype``; by default the
        placeholder's) and become ``cls_to_become``; the caller then initializes the values."""
        placeholder = self.array
        array = get_array_module(placeholder).zeros(tuple(int(s) for s in shape),
                                                    dtype=_as_dtype(dtype) or placeholder.dtype)
        target = Device(device) if device is not None else self.device
        self.__class__ = self.cls_to_become
        self.array = to_device(array, target)

    @property
    def shape(self) -> Any:
        raise ShapeError(
            "Can't access the shape of an uninitialized parameter or buffer. This error usually happens in "
            "`load_state_dict` when trying to load an uninitialized parameter into an initialized one. Call "
            "`forward` to initialize the parameters before accessing their attributes."
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _placeholder(device: Any, dtype: Any) -> Any:
    array = np.empty((0,), dtype=_as_dtype(dtype) or get_default_dtype())
    return to_device(array, Device(device) if device is not None else get_default_device())


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A parameter whose shape a lazy module (``nn.LazyLinear``, ...) infers at its first forward.

    Only its dtype and device are known until then (given here or changed by ``module.to``); reading its
    shape raises. ``materialize(shape)`` makes it a ``Parameter`` in place. In ``state_dict()`` it
    appears as itself, as in torch.
    """

    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__(_placeholder(device, dtype), requires_grad=requires_grad)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (_rebuild_uninitialized, (type(self), self.requires_grad, str(self.array.dtype)))

    def __deepcopy__(self, memo: dict) -> UninitializedParameter:
        if id(self) not in memo:
            memo[id(self)] = type(self)(self.requires_grad, self.device, self.array.dtype)
        return memo[id(self)]


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer (``running_mean`` of ``nn.LazyBatchNorm2d``, ...) whose shape is inferred at the first
    forward; ``materialize(shape)`` makes it a plain ``Tensor``."""

    __slots__ = ()
    cls_to_become = Tensor

    def __init__(self, requires_grad: bool = False, device: Any = None, dtype: Any = None,
                 persistent: bool = True) -> None:
        super().__init__(_placeholder(device, dtype), requires_grad=requires_grad)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (_rebuild_uninitialized, (type(self), self.requires_grad, str(self.array.dtype)))

    def __deepcopy__(self, memo: dict) -> UninitializedBuffer:
        if id(self) not in memo:
            memo[id(self)] = type(self)(self.requires_grad, self.device, self.array.dtype)
        return memo[id(self)]


def _rebuild_uninitialized(cls: type, requires_grad: bool, dtype: str) -> Any:
    return cls(requires_grad=requires_grad, dtype=dtype)


def is_lazy(param: Any) -> bool:
    """Whether ``param`` is an ``UninitializedParameter`` or ``UninitializedBuffer``."""
    return isinstance(param, UninitializedTensorMixin)
