"""Elementwise arithmetic and math: add, sub, mul, div, neg, pow, exp, log, sqrt, abs, clamp,
maximum, minimum, erf, where, and the (non-differentiable) comparisons.

Binary ops broadcast like numpy; autograd sums gradients back to each input's shape.
Type promotion follows PyTorch: a Python scalar never changes a tensor's float dtype, and an
integer tensor combined with a float becomes the float dtype (float32 for Python floats).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hubkit._backend import get_array_module, is_cupy_array
from hubkit.autograd import Function
from hubkit.errors import DeviceError, ShapeError
from hubkit.tensor import Tensor, float32

# ---------------------------------------------------------------- type promotion


def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's rule for two tensors: a float beats an integer, otherwise numpy's promotion."""
    fa, fb = a.kind in "fc", b.kind in "fc"
    if fa and not fb:
        return a
    if fb and not fa:
        return b
    if a.kind == "b" and b.kind != "b":
        return b
    if b.kind == "b" and a.kind != "b":
        return a
    return np.promote_types(a, b)


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _tensor_result_type(a: Tensor, b: Tensor) -> np.dtype:
    """PyTorch's rule: a 0-d tensor does not widen a dimensioned tensor of the same or a higher category
    (``float32 (n,) + float64 ()`` stays float32), but a 0-d float does turn an integer tensor into float.
    """
    if (a.ndim == 0) != (b.ndim == 0):
        dimmed, zero = (b, a) if a.ndim == 0 else (a, b)
        if _CATEGORY[zero.dtype.kind] <= _CATEGORY[dimmed.dtype.kind]:
            return dimmed.dtype
        return zero.dtype
    return promote_types(a.dtype, b.dtype)


def _scalar_dtype(dtype: np.dtype, value: Any) -> np.dtype:
    if isinstance(value, bool):
        return dtype
    if isinstance(value, float) and dtype.kind not in "fc":
        return float32
    if isinstance(value, complex) and dtype.kind != "c":
        return np.dtype("complex64")
    if isinstance(value, int) and dtype.kind == "b":
        return np.dtype("int64")
    return dtype


def as_operands(a: Any, b: Any, op: str) -> tuple[Any, Any]:
    """Bring two operands (Tensors, arrays or Python scalars) to one dtype and device.

    Python scalars become 0-d arrays of the result dtype, so they never promote float32.
    """
    a_t, b_t = isinstance(a, Tensor), isinstance(b, Tensor)
    if not a_t and hasattr(a, "dtype") and hasattr(a, "shape") and not isinstance(a, np.generic):
        a, a_t = Tensor._make(a if a.ndim else a.reshape(())), True
    if not b_t and hasattr(b, "dtype") and hasattr(b, "shape") and not isinstance(b, np.generic):
        b, b_t = Tensor._make(b if b.ndim else b.reshape(())), True
    if a_t and b_t:
        if is_cupy_array(a.array) != is_cupy_array(b.array) or (
            is_cupy_array(a.array) and a.array.device.id != b.array.device.id
        ):
            raise DeviceError(
                f"{op}: expected both tensors on the same device, found {a.device} and {b.device}; "
                "move one with .to(device)"
            )
        if a.dtype != b.dtype:
            dt = _tensor_result_type(a, b)
            a = a if a.dtype == dt else a.to(dt)
            b = b if b.dtype == dt else b.to(dt)
        return a, b
    if not (a_t or b_t):
        raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")
    t, s = (a, b) if a_t else (b, a)
    if not isinstance(s, (int, float, complex, np.generic)):
        raise TypeError(f"{op}: unsupported operand type {type(s).__name__} with a Tensor")
    dt = _scalar_dtype(t.dtype, s.item() if isinstance(s, np.generic) else s)
    if dt != t.dtype:
        t = t.to(dt)
    s = t._xp.asarray(s, dtype=dt)
    return (t, s) if a_t else (s, t)


def _broadcast_check(op: str, a: Any, b: Any) -> None:
    sa, sb = getattr(a, "shape", ()), getattr(b, "shape", ())
    for x, y in zip(reversed(sa), reversed(sb)):
        if x != y and x != 1 and y != 1:
            raise ShapeError(f"{op}: shapes {tuple(sa)} and {tuple(sb)} cannot be broadcast together")


# ---------------------------------------------------------------- binary arithmetic


# Same-shape adds from this size up may run on numba's threads (kernels.cpu_elementwise.add): residual adds
_THREADED_ADD_MIN = 1 << 17


class Add(Function):
    def forward(self, a: Any, b: Any) -> Any:
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.size >= _THREADED_ADD_MIN:
            from hubkit.kernels import cpu_elementwise

            out = cpu_elementwise.add(a, b)
            if out is not None:
                return out
        return a + b

    def backward(self, gy: Any) -> tuple[Any, Any]:
        return gy, gy


class Sub(Function):
    def forward(self, a: Any, b: Any) -> Any:
        return a - b

    def backward(self, gy: Any) -> tuple[Any, Any]:
        return gy, (-gy if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        return a * b

    def backward(self, gy: Any) -> tuple[Any, Any]:
        ga = gy * self.b if self.needs_input_grad[0] else None
        gb = gy * self.a if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return a / b

    def backward(self, gy: Any) -> tuple[Any, Any]:
        ga = gy / self.b if self.needs_input_grad[0] else None
        gb = -gy * self.a / (self.b * self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    def forward(self, a: Any, b: Any) -> Any:
        y = a**b
        self.a, self.b, self.y = a, b, y
        return y

    def backward(self, gy: Any) -> tuple[Any, Any]:
        a, b = self.a, self.b
        xp = get_array_module(gy)
        ga = gy * b * a ** (b - 1) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            # d(a^b)/db = a^b log a, taken as 0 where a == 0 (PyTorch's convention)
            log_a = xp.log(xp.where(a > 0, a, 1)).astype(self.y.dtype, copy=False)
            gb = gy * self.y * log_a
        return ga, gb


class Maximum(Function):
    """Elementwise max; NaN in either input gives NaN (numpy's ``maximum`` propagates it, as torch's does)."""

    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return get_array_module(a).maximum(a, b)

    def backward(self, gy: Any) -> tuple[Any, Any]:
        return _extremum_grads(gy, self.a, self.b, self.needs_input_grad, a_loses=self.a < self.b,
                               b_loses=self.a > self.b)


class Minimum(Function):
    """Elementwise min; NaN in either input gives NaN."""

    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return get_array_module(a).minimum(a, b)

    def backward(self, gy: Any) -> tuple[Any, Any]:
        return _extremum_grads(gy, self.a, self.b, self.needs_input_grad, a_loses=self.a > self.b,
                               b_loses=self.a < self.b)


def _extremum_grads(gy: Any, a: Any, b: Any, needs: tuple[bool, ...], a_loses: Any, b_loses: Any) -> tuple[Any, Any]:
    """torch's rule for maximum/minimum: a tie splits the gradient in halves, the loser gets none, and
    every other element (the winner, and both sides wherever a NaN makes the comparisons false) gets all
    of it."""
    xp = get_array_module(gy)
    zero, half = gy.dtype.type(0), gy.dtype.type(0.5)
    shared = xp.where(a == b, gy * half, gy)
    ga = xp.where(a_loses, zero, shared) if needs[0] else None
    gb = xp.where(b_loses, zero, shared) if needs[1] else None
    return ga, gb


def _binary(cls: type[Function], name: str, a: Any, b: Any) -> Tensor:
    a, b = as_operands(a, b, name)
    _broadcast_check(name, a, b)
    return cls()(a, b)


def add(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:  # noqa: A002
    """``input + alpha * other`` with broadcasting."""
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Add, "add", input, other)


def sub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:  # noqa: A002
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Sub, "sub", input, other)


def mul(input: Any, other: Any) -> Tensor:  # noqa: A002
    return _binary(Mul, "mul", input, other)


def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor:  # noqa: A002
    """True division (integers give float32, as in PyTorch); ``rounding_mode`` 'trunc' or 'floor'."""
    a, b = as_operands(input, other, "div")
    if rounding_mode is not None:
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
        xp = get_array_module(a.array if isinstance(a, Tensor) else b.array)
        av, bv = (x.array if isinstance(x, Tensor) else x for x in (a, b))
        q = xp.floor_divide(av, bv) if rounding_mode == "floor" else xp.trunc(av / bv).astype(
            np.result_type(av, bv)
        )
        return Tensor._make(q)
    if a.dtype.kind in "iub":
        a = a.to(float32) if isinstance(a, Tensor) else a.astype(float32)
        b = b.to(float32) if isinstance(b, Tensor) else b.astype(float32)
    _broadcast_check("div", a, b)
    return Div()(a, b)


def pow(input: Any, exponent: Any) -> Tensor:  # noqa: A001,A002
    return _binary(Pow, "pow", input, exponent)


def maximum(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    return _binary(Maximum, "maximum", input, other)


def minimum(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    return _binary(Minimum, "minimum", input, other)


# ---------------------------------------------------------------- unary math


class Neg(Function):
    def forward(self, x: Any) -> Any:
        return -x

    def backward(self, gy: Any) -> Any:
        return -gy


class Exp(Function):
    def forward(self, x: Any) -> Any:
        self.y = get_array_module(x).exp(x)
        return self.y

    def backward(self, gy: Any) -> Any:
        return gy * self.y


class Log(Function):
    def forward(self, x: Any) -> Any:
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, gy: Any) -> Any:
        return gy / self.x


class Sqrt(Function):
    def forward(self, x: Any) -> Any:
        self.y = get_array_module(x).sqrt(x)
        return self.y

    def backward(self, gy: Any) -> Any:
        return gy / (2 * self.y)


class Abs(Function):
    def forward(self, x: Any) -> Any:
        self.x = x
        return get_array_module(x).abs(x)

    def backward(self, gy: Any) -> Any:
        return gy * get_array_module(gy).sign(self.x)


class Clamp(Function):
    def __init__(self, lo: Any, hi: Any) -> None:
        self.lo, self.hi = lo, hi

    def forward(self, x: Any) -> Any:
        self.x = x
        return get_array_module(x).clip(x, self.lo, self.hi)

    def backward(self, gy: Any) -> Any:
        keep = True
        if self.lo is not None:
            keep = self.x >= self.lo
        if self.hi is not None:
            keep = keep & (self.x <= self.hi)
        return gy * keep


def _float_input(x: Tensor) -> Tensor:
    return x if x.dtype.kind in "fc" else x.to(float32)


def neg(input: Tensor) -> Tensor:  # noqa: A002
    return Neg()(input)


def exp(input: Tensor) -> Tensor:  # noqa: A002
    return Exp()(_float_input(input))


def log(input: Tensor) -> Tensor:  # noqa: A002
    return Log()(_float_input(input))


def sqrt(input: Tensor) -> Tensor:  # noqa: A002
    return Sqrt()(_float_input(input))


def abs(input: Tensor) -> Tensor:  # noqa: A001,A002
    return Abs()(input)


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """Limit values to [min, max]; the gradient passes where the input was inside (bounds included)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    lo = min.item() if isinstance(min, Tensor) else min
    hi = max.item() if isinstance(max, Tensor) else max
    return Clamp(lo, hi)(input)


clip = clamp


# ---------------------------------------------------------------- where and comparisons


class Where(Function):
    def __init__(self, cond: Any) -> None:
        self.cond = cond

    def forward(self, a: Any, b: Any) -> Any:
        return get_array_module(self.cond).where(self.cond, a, b)

    def backward(self, gy: Any) -> tuple[Any, Any]:
        zero = gy.dtype.type(0)
        xp = get_array_module(gy)
        ga = xp.where(self.cond, gy, zero) if self.needs_input_grad[0] else None
        gb = xp.where(self.cond, zero, gy) if self.needs_input_grad[1] else None
        return ga, gb


def where(condition: Any, input: Any, other: Any) -> Tensor:  # noqa: A002
    """Elementwise ``input if condition else other``, broadcasting all three."""
    cond = condition.array if isinstance(condition, Tensor) else condition
    a, b = as_operands(input, other, "where")
    _broadcast_check("where", a, b)
    xp = get_array_module(a.array if isinstance(a, Tensor) else b.array)
    return Where(xp.asarray(cond, dtype=bool))(a, b)


def _compare(name: str, ufunc: str, a: Any, b: Any) -> Tensor:
    a, b = as_operands(a, b, name)
    _broadcast_check(name, a, b)
    av = a.array if isinstance(a, Tensor) else a
    bv = b.array if isinstance(b, Tensor) else b
    return Tensor._make(getattr(get_array_module(av if isinstance(a, Tensor) else bv), ufunc)(av, bv))


def eq(input: Any, other: Any) -> Tensor:  # noqa: A002
    return _compare("eq", "equal", input, other)


def ne(input: Any, other: Any) -> Tensor:  # noqa: A002
    return _compare("ne", "not_equal", input, other)


def lt(input: Any, other: Any) -> Tensor:  # noqa: A002
    return _compare("lt", "less", input, other)


def le(input: Any, other: Any) -> Tensor:  # noqa: A002
    return _compare("le", "less_equal", input, other)


def gt(input: Any, other: Any) -> Tensor:  # noqa: A002
    return _compare("gt", "greater", input, other)


def ge(input: Any, other: Any) -> Tensor:  # noqa: A002
    return _compare("ge", "greater_equal", input, other)


# ---------------------------------------------------------------- erf
# numpy has no erf and scipy is not a dependency, so erf is evaluated from two Chebyshev series
# fitted (to 40-digit mpmath references) for this module: erf(x) = x * A(x^2) for |x| < 2, and
# erf(x) = 1 - exp(-x^2) * B(1/x) for 2 <= |x| < 6 (beyond 6, erf is +-1 in float64).
# Max abs error 2e-14 in float64; tests/engine/test_elementwise.py checks it against math.erf.

# erf(x)/x as a polynomial in s = (x^2 - 2) / 2 on s in [-1, 1] (|x| < 2): the Chebyshev fit converted to
# powers of s, lowest first (well conditioned: every coefficient is below 0.7). Float64 uses degree 14;
# float16/32 need only ~1e-8 and use the degree-9 truncation of the same Chebyshev series.
_ERF_SMALL = (
    0.6749332360396554,
    -0.2611118609313786,
    0.11947913860986072,
    -0.04866277744417857,
    0.01712834457138419,
    -0.005234875889925143,
    0.001405091428543244,
    -0.0003351432774887068,
    7.180098418289779e-05,
    -1.394689913543819e-05,
    2.4758642026038543e-06,
    -4.03692896118931e-07,
    6.111019198821553e-08,
    -9.158005317052206e-09,
    1.1944697083284457e-09,
)

_ERF_SMALL_SHORT = (
    0.6749332412149293,
    -0.26111186555858273,
    0.11947888054053,
    -0.04866268513262344,
    0.01713040082394765,
    -0.005235390881403108,
    0.0013993724662713686,
    -0.000333973594989819,
    7.824951777782493e-05,
    -1.5101699875685882e-05,
)

_ERFCX_LARGE = (
    0.17652811793633819,
    0.08137379533782715,
    -0.00245750137337802,
    -6.324093536662634e-05,
    1.5519910419392603e-05,
    -1.0108306756788365e-06,
    -1.319732779540376e-08,
    1.0635365965683264e-08,
    -1.2284967746782152e-09,
    4.970332478926309e-11,
    7.773701821145451e-12,
    -1.8656169202084054e-12,
    1.949385097788081e-13,
    -5.58072107044912e-15,
    -2.102022259956963e-15,
)  # exp(x^2) erfc(x) in u = 1/x on [1/6, 1/2], mapped by (u - 1/3) * 6


def _chebyshev(s: Any, coefs: tuple[float, ...]) -> Any:
    """Sum of ``coefs[k] * T_k(s)`` by Clenshaw's recurrence (stable for |s| <= 1)."""
    t = s.dtype.type
    s2 = s + s
    b1 = s2 * t(coefs[-1]) + t(coefs[-2])
    b2 = get_array_module(s).full_like(s, t(coefs[-1]))
    for c in coefs[-3:0:-1]:
        b2 = s2 * b1 - b2  # reuse b2's slot: the next b1
        b2 += t(c)
        b1, b2 = b2, b1
    out = s * b1 - b2
    out += t(coefs[0])
    return out


# float16/float32 need only ~1e-8, so the large-|x| series' tail below that is dropped for speed
_SHORT_LARGE = 8


def _horner(s: Any, coefs: tuple[float, ...]) -> Any:
    """Sum of ``coefs[k] * s**k``."""
    t = s.dtype.type
    acc = s * t(coefs[-1])
    acc += t(coefs[-2])
    for c in coefs[-3::-1]:
        acc *= s
        acc += t(c)
    return acc


def erf_array(x: Any) -> Any:
    """The error function of a floating-point numpy/cupy array, in its own dtype."""
    xp = get_array_module(x)
    if xp.__name__ == "cupy":  # CUDA's erf in one launch; the series below would sync on large.any()
        from cupyx.scipy.special import erf

        return erf(x).astype(x.dtype, copy=False)
    if x.ndim == 0:  # numpy turns 0-d arithmetic into scalars, which can't be assigned into
        return erf_array(x.reshape(1)).reshape(())
    t = x.dtype.type
    precise = x.dtype.itemsize >= 8
    small_coefs = _ERF_SMALL if precise else _ERF_SMALL_SHORT
    large_coefs = _ERFCX_LARGE if precise else _ERFCX_LARGE[:_SHORT_LARGE]
    x2 = x * x
    # the small-|x| series on every element (clamped to its range), then the few large ones redone
    s = xp.minimum(x2, t(4))
    s -= t(2)
    s *= t(0.5)
    out = _horner(s, small_coefs)
    out *= x
    large = x2 >= 4
    if large.any():
        xl = x[large]
        al = xp.abs(xl)
        erfc = xp.exp(-al * al) * _chebyshev((1 / al - t(1 / 3)) * t(6), large_coefs)
        erfc[al >= 6] = 0  # also turns inf * 0 into a clean 0
        out[large] = xp.copysign(1 - erfc, xl)
    return out


class Erf(Function):
    def forward(self, x: Any) -> Any:
        self.x = x
        return erf_array(x)

    def backward(self, gy: Any) -> Any:
        x = self.x
        return gy * (get_array_module(x).exp(-x * x) * x.dtype.type(2 / math.sqrt(math.pi)))


def erf(input: Tensor) -> Tensor:  # noqa: A002
    """The Gauss error function, elementwise (integer inputs give float32)."""
    return Erf()(_float_input(input))
