"""Binds operators and methods onto ``Tensor``; each is a thin call into a functional op."""

from __future__ import annotations

from typing import Any

from hubkit.nn.functional import activation, linalg, reduction, shape
from hubkit.nn.functional import elementwise as ew
from hubkit.tensor import Tensor


def _reflected(fn: Any) -> Any:
    return lambda self, other: fn(other, self)


_OPERATORS = {
    "__add__": ew.add,
    "__radd__": _reflected(ew.add),
    "__sub__": ew.sub,
    "__rsub__": _reflected(ew.sub),
    "__mul__": ew.mul,
    "__rmul__": _reflected(ew.mul),
    "__truediv__": ew.div,
    "__rtruediv__": _reflected(ew.div),
    "__pow__": ew.pow,
    "__rpow__": _reflected(ew.pow),
    "__matmul__": linalg.matmul,
    "__rmatmul__": _reflected(linalg.matmul),
    "__neg__": ew.neg,
    "__abs__": ew.abs,
    "__eq__": ew.eq,
    "__ne__": ew.ne,
    "__lt__": ew.lt,
    "__le__": ew.le,
    "__gt__": ew.gt,
    "__ge__": ew.ge,
    "__getitem__": shape.getitem,
    "__setitem__": shape.setitem,
}

_METHODS = {
    "add": ew.add,
    "sub": ew.sub,
    "mul": ew.mul,
    "div": ew.div,
    "pow": ew.pow,
    "neg": ew.neg,
    "exp": ew.exp,
    "log": ew.log,
    "sqrt": ew.sqrt,
    "abs": ew.abs,
    "erf": ew.erf,
    "clamp": ew.clamp,
    "clip": ew.clamp,
    "maximum": ew.maximum,
    "minimum": ew.minimum,
    "eq": ew.eq,
    "ne": ew.ne,
    "lt": ew.lt,
    "le": ew.le,
    "gt": ew.gt,
    "ge": ew.ge,
    "sum": reduction.sum,
    "mean": reduction.mean,
    "max": reduction.max,
    "min": reduction.min,
    "argmax": reduction.argmax,
    "argmin": reduction.argmin,
    "var": reduction.var,
    "std": reduction.std,
    "logsumexp": reduction.logsumexp,
    "cumsum": reduction.cumsum,
    "matmul": linalg.matmul,
    "mm": linalg.mm,
    "bmm": linalg.bmm,
    "reshape": shape.reshape,
    "view": shape.reshape,
    "flatten": shape.flatten,
    "unflatten": shape.unflatten,
    "squeeze": shape.squeeze,
    "unsqueeze": shape.unsqueeze,
    "permute": shape.permute,
    "transpose": shape.transpose,
    "t": shape.t,
    "expand": shape.expand,
    "expand_as": shape.expand_as,
    "split": shape.split,
    "chunk": shape.chunk,
    "unbind": shape.unbind,
    "gather": shape.gather,
    "masked_fill": shape.masked_fill,
    "relu": activation.relu,
    "sigmoid": activation.sigmoid,
    "tanh": activation.tanh,
    "softmax": activation.softmax,
    "log_softmax": activation.log_softmax,
}


def _view_as(self: Tensor, other: Tensor) -> Tensor:
    return shape.reshape(self, *other.shape)


def _floordiv(self: Tensor, other: Any) -> Tensor:
    return ew.div(self, other, rounding_mode="floor")


def _rfloordiv(self: Tensor, other: Any) -> Tensor:
    return ew.div(other, self, rounding_mode="floor")


def _logical(name: str) -> Any:
    def method(self: Tensor, other: Any = None) -> Tensor:
        xp = self._xp
        if other is None:
            return Tensor._make(getattr(xp, name)(self.data))
        return Tensor._make(getattr(xp, name)(self.data, other.data if isinstance(other, Tensor) else other))

    return method


def _reduce_bool(name: str) -> Any:
    def method(self: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
        axes = reduction.normalize_dims(dim, self.ndim, name)
        return Tensor._make(self._xp.asarray(getattr(self.data, name)(axis=axes, keepdims=keepdim)))

    return method


def _iter(self: Tensor) -> Any:
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return iter(shape.unbind(self, 0))


def _bind() -> None:
    for name, fn in {**_OPERATORS, **_METHODS}.items():
        setattr(Tensor, name, fn)
    Tensor.view_as = _view_as
    Tensor.__iter__ = _iter
    Tensor.__floordiv__ = _floordiv
    Tensor.__rfloordiv__ = _rfloordiv
    Tensor.__invert__ = _logical("bitwise_not")
    Tensor.__and__ = _logical("bitwise_and")
    Tensor.__or__ = _logical("bitwise_or")
    Tensor.__xor__ = _logical("bitwise_xor")
    Tensor.logical_not = _logical("logical_not")
    Tensor.logical_and = _logical("logical_and")
    Tensor.logical_or = _logical("logical_or")
    Tensor.any = _reduce_bool("any")
    Tensor.all = _reduce_bool("all")


_bind()
