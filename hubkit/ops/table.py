"""The op table: every op that is a top-level function (``hubkit.sin``), a Tensor method
(``t.sin()``) or both, with its in-place variant (``t.sin_()``), in one place.

``hubkit/tensor.py`` binds ``OPERATORS``, ``METHODS`` and the in-place variants onto ``Tensor``
at its end; ``hubkit/__init__.py`` exports ``FUNCTIONS``. The list follows PyTorch's
documentation of ``torch`` and ``torch.Tensor``; names PyTorch has that hubkit does not are in
``hubkit.ops.unsupported`` and raise an error saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hubkit.ops import activation, linalg, reduction, shape
from hubkit.ops import elementwise as ew
from hubkit.tensor import Tensor


def _reflected(fn: Any) -> Any:
    return lambda self, other: fn(other, self)


def _floordiv(self: Tensor, other: Any) -> Tensor:
    return ew.div(self, other, rounding_mode="floor")


def _rfloordiv(self: Tensor, other: Any) -> Tensor:
    return ew.div(other, self, rounding_mode="floor")


def _iter(self: Tensor) -> Any:
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return iter(shape.unbind(self, 0))


def _view_as(self: Tensor, other: Tensor) -> Tensor:
    return shape.reshape(self, *other.shape)


def _logical(name: str) -> Any:
    def op(input: Tensor, other: Any = None) -> Tensor:  # noqa: A002
        xp = input._xp
        if other is None:
            return Tensor._make(getattr(xp, name)(input.array))
        return Tensor._make(getattr(xp, name)(input.array, other.array if isinstance(other, Tensor) else other))

    op.__name__ = name
    return op


def _reduce_bool(name: str) -> Any:
    def op(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A002
        axes = reduction.normalize_dims(dim, input.ndim, name)
        return Tensor._make(input._xp.asarray(getattr(input.array, name)(axis=axes, keepdims=keepdim)))

    op.__name__ = name
    return op


_bitwise_not = _logical("bitwise_not")
_bitwise_and = _logical("bitwise_and")
_bitwise_or = _logical("bitwise_or")
_bitwise_xor = _logical("bitwise_xor")

# Python operators on Tensor. The augmented ones (``a -= b``) are the in-place variants, bound by tensor.py.
OPERATORS: dict[str, Callable[..., Any]] = {
    "__add__": ew.add,
    "__radd__": _reflected(ew.add),
    "__sub__": ew.sub,
    "__rsub__": _reflected(ew.sub),
    "__mul__": ew.mul,
    "__rmul__": _reflected(ew.mul),
    "__truediv__": ew.div,
    "__rtruediv__": _reflected(ew.div),
    "__floordiv__": _floordiv,
    "__rfloordiv__": _rfloordiv,
    "__pow__": ew.pow,
    "__rpow__": _reflected(ew.pow),
    "__matmul__": linalg.matmul,
    "__rmatmul__": _reflected(linalg.matmul),
    "__neg__": ew.neg,
    "__abs__": ew.abs,
    "__invert__": _bitwise_not,
    "__and__": _bitwise_and,
    "__or__": _bitwise_or,
    "__xor__": _bitwise_xor,
    "__eq__": ew.eq,
    "__ne__": ew.ne,
    "__lt__": ew.lt,
    "__le__": ew.le,
    "__gt__": ew.gt,
    "__ge__": ew.ge,
    "__getitem__": shape.getitem,
    "__setitem__": shape.setitem,
    "__iter__": _iter,
}

AUGMENTED: dict[str, Callable[..., Any]] = {
    "__iadd__": ew.add,
    "__isub__": ew.sub,
    "__imul__": ew.mul,
    "__itruediv__": ew.div,
    "__ifloordiv__": _floordiv,
    "__ipow__": ew.pow,
    "__iand__": _bitwise_and,
    "__ior__": _bitwise_or,
    "__ixor__": _bitwise_xor,
}

# Where each op is bound: "f" a top-level function, "m" a Tensor method, "i" also an in-place method ``name_``.
_TABLE: list[tuple[str, Callable[..., Any], str]] = [
    # arithmetic
    ("add", ew.add, "fmi"),
    ("sub", ew.sub, "fmi"),
    ("subtract", ew.sub, "fmi"),
    ("mul", ew.mul, "fmi"),
    ("multiply", ew.mul, "fmi"),
    ("div", ew.div, "fmi"),
    ("divide", ew.div, "fmi"),
    ("true_divide", ew.div, "fmi"),
    ("pow", ew.pow, "fmi"),
    ("neg", ew.neg, "fmi"),
    ("negative", ew.neg, "fmi"),
    ("maximum", ew.maximum, "fm"),
    ("minimum", ew.minimum, "fm"),
    ("where", ew.where, "f"),
    # pointwise math
    ("abs", ew.abs, "fmi"),
    ("absolute", ew.abs, "fmi"),
    ("exp", ew.exp, "fmi"),
    ("log", ew.log, "fmi"),
    ("sqrt", ew.sqrt, "fmi"),
    ("erf", ew.erf, "fmi"),
    ("clamp", ew.clamp, "fmi"),
    ("clip", ew.clamp, "fmi"),
    ("relu", activation.relu, "fmi"),
    ("sigmoid", activation.sigmoid, "fmi"),
    ("tanh", activation.tanh, "fmi"),
    ("softmax", activation.softmax, "fm"),
    ("log_softmax", activation.log_softmax, "fm"),
    # comparison
    ("eq", ew.eq, "fmi"),
    ("ne", ew.ne, "fmi"),
    ("lt", ew.lt, "fmi"),
    ("le", ew.le, "fmi"),
    ("gt", ew.gt, "fmi"),
    ("ge", ew.ge, "fmi"),
    ("logical_not", _logical("logical_not"), "fmi"),
    ("logical_and", _logical("logical_and"), "fmi"),
    ("logical_or", _logical("logical_or"), "fmi"),
    ("logical_xor", _logical("logical_xor"), "fmi"),
    ("bitwise_not", _bitwise_not, "fmi"),
    ("bitwise_and", _bitwise_and, "fmi"),
    ("bitwise_or", _bitwise_or, "fmi"),
    ("bitwise_xor", _bitwise_xor, "fmi"),
    # reductions
    ("sum", reduction.sum, "fm"),
    ("mean", reduction.mean, "fm"),
    ("max", reduction.max, "fm"),
    ("min", reduction.min, "fm"),
    ("argmax", reduction.argmax, "fm"),
    ("argmin", reduction.argmin, "fm"),
    ("var", reduction.var, "fm"),
    ("std", reduction.std, "fm"),
    ("logsumexp", reduction.logsumexp, "fm"),
    ("cumsum", reduction.cumsum, "fm"),
    ("any", _reduce_bool("any"), "fm"),
    ("all", _reduce_bool("all"), "fm"),
    # linear algebra
    ("matmul", linalg.matmul, "fm"),
    ("mm", linalg.mm, "fm"),
    ("bmm", linalg.bmm, "fm"),
    # shape and indexing
    ("reshape", shape.reshape, "fm"),
    ("view", shape.reshape, "m"),
    ("view_as", _view_as, "m"),
    ("flatten", shape.flatten, "fm"),
    ("unflatten", shape.unflatten, "fm"),
    ("squeeze", shape.squeeze, "fm"),
    ("unsqueeze", shape.unsqueeze, "fm"),
    ("permute", shape.permute, "fm"),
    ("transpose", shape.transpose, "fm"),
    ("swapaxes", shape.transpose, "fm"),
    ("swapdims", shape.transpose, "fm"),
    ("t", shape.t, "fm"),
    ("expand", shape.expand, "m"),
    ("expand_as", shape.expand_as, "m"),
    ("cat", shape.cat, "f"),
    ("concat", shape.cat, "f"),
    ("concatenate", shape.cat, "f"),
    ("stack", shape.stack, "f"),
    ("split", shape.split, "fm"),
    ("chunk", shape.chunk, "fm"),
    ("unbind", shape.unbind, "fm"),
    ("gather", shape.gather, "fm"),
    ("masked_fill", shape.masked_fill, "fmi"),
]

FUNCTIONS: dict[str, Callable[..., Any]] = {name: fn for name, fn, where in _TABLE if "f" in where}
METHODS: dict[str, Callable[..., Any]] = {name: fn for name, fn, where in _TABLE if "m" in where}
INPLACE: dict[str, Callable[..., Any]] = {name + "_": fn for name, fn, where in _TABLE if "i" in where}
