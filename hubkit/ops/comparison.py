"""Comparison predicates (torch's "Comparison Ops" that are not orderings): isclose, allclose, equal,
isnan/isinf/isfinite/isposinf/isneginf, isin. All return bool tensors (or Python bools) and are not
differentiable. The ordering ops (sort, topk, kthvalue, ...) are in ``order.py``; eq/lt/... in
``elementwise.py``.
"""

from __future__ import annotations

import builtins
from typing import Any

from hubkit.errors import DTypeError
from hubkit.ops.elementwise import _broadcast_check, as_operands
from hubkit.tensor import Tensor


def _mask(input: Tensor, fn: str) -> Tensor:  # noqa: A002
    xp = input._xp
    if input.dtype.kind not in "fc":  # integers are always finite
        full = fn == "isfinite"
        return Tensor._make(xp.full(input.shape, full, dtype=bool))
    return Tensor._make(xp.asarray(getattr(xp, fn)(input.array)))


def isnan(input: Tensor) -> Tensor:  # noqa: A002
    return _mask(input, "isnan")


def isinf(input: Tensor) -> Tensor:  # noqa: A002
    return _mask(input, "isinf")


def isposinf(input: Tensor) -> Tensor:  # noqa: A002
    return _mask(input, "isposinf")


def isneginf(input: Tensor) -> Tensor:  # noqa: A002
    return _mask(input, "isneginf")


def isfinite(input: Tensor) -> Tensor:  # noqa: A002
    return _mask(input, "isfinite")


def isclose(input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08,  # noqa: A002
            equal_nan: bool = False) -> Tensor:
    """``|input - other| <= atol + rtol * |other|`` elementwise (inf equals inf of the same sign)."""
    if isinstance(other, Tensor) and other.dtype != input.dtype:
        raise DTypeError(f"isclose: input ({input.dtype}) and other ({other.dtype}) must have the same dtype")
    a, b = as_operands(input, other, "isclose")
    _broadcast_check("isclose", a, b)
    av = a.array if isinstance(a, Tensor) else a
    bv = b.array if isinstance(b, Tensor) else b
    xp = input._xp
    if av.dtype.kind == "b":
        return Tensor._make(xp.asarray(av == bv))
    return Tensor._make(xp.asarray(xp.isclose(av, bv, rtol=rtol, atol=atol, equal_nan=equal_nan)))


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,  # noqa: A002
             equal_nan: bool = False) -> bool:
    """True when ``isclose`` holds everywhere."""
    return builtins.bool(isclose(input, other, rtol, atol, equal_nan).array.all())


def equal(input: Tensor, other: Tensor) -> bool:  # noqa: A002
    """True when both have the same shape and the same values (NaN never equals NaN)."""
    if input.shape != other.shape:
        return False
    return builtins.bool((input.array == other._xp.asarray(other.array)).all())


def isin(elements: Any, test_elements: Any, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """For each element of ``elements``, whether it occurs in ``test_elements``; shape of ``elements``."""
    ref = elements if isinstance(elements, Tensor) else test_elements
    xp = ref._xp
    e = elements.array if isinstance(elements, Tensor) else xp.asarray(elements)
    t = test_elements.array if isinstance(test_elements, Tensor) else xp.asarray(test_elements)
    return Tensor._make(xp.asarray(xp.isin(e, t, assume_unique=assume_unique, invert=invert)))
