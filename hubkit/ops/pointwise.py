"""Pointwise math (torch's "Pointwise Ops"): trigonometric and hyperbolic functions, exponentials and
logarithms, special functions, rounding, and the two-argument functions (atan2, hypot, fmod,
logaddexp, xlogy, lerp, addcmul, ...).

Every op here is shape-preserving (binary ones broadcast). Float math on integer or bool input gives
float32, as in PyTorch; rounding, sign and remainder keep integer dtypes. Gradients follow PyTorch,
including its conventions at kinks and poles (rounding passes zero, nan_to_num passes nothing
where the input was not finite).
"""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError
from hubkit.ops import elementwise as ew
from hubkit.ops import special
from hubkit.ops.elementwise import _broadcast_check, _float_input, as_operands
from hubkit.tensor import Tensor, float32, float64

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


def _array(xp: Any, y: Any) -> Any:
    """numpy turns 0-d results into scalars; ops must hand Tensor a real (writable) array."""
    return y if hasattr(y, "flags") else xp.asarray(y)


# ---------------------------------------------------------------- one-argument math
# name: (f(xp, x), f'(xp, x, y) with y = f(x), which of x and y the derivative reads).
# Forward and derivative sit side by side; UnaryMath runs them.
_UNARY: dict[str, tuple[Callable[..., Any], Callable[..., Any], str]] = {
    "sin": (lambda xp, x: xp.sin(x), lambda xp, x, y: xp.cos(x), "x"),
    "cos": (lambda xp, x: xp.cos(x), lambda xp, x, y: -xp.sin(x), "x"),
    "tan": (lambda xp, x: xp.tan(x), lambda xp, x, y: 1 + y * y, "y"),
    "asin": (lambda xp, x: xp.arcsin(x), lambda xp, x, y: 1 / xp.sqrt(1 - x * x), "x"),
    "acos": (lambda xp, x: xp.arccos(x), lambda xp, x, y: -1 / xp.sqrt(1 - x * x), "x"),
    "atan": (lambda xp, x: xp.arctan(x), lambda xp, x, y: 1 / (1 + x * x), "x"),
    "sinh": (lambda xp, x: xp.sinh(x), lambda xp, x, y: xp.cosh(x), "x"),
    "cosh": (lambda xp, x: xp.cosh(x), lambda xp, x, y: xp.sinh(x), "x"),
    "asinh": (lambda xp, x: xp.arcsinh(x), lambda xp, x, y: 1 / xp.sqrt(x * x + 1), "x"),
    "acosh": (lambda xp, x: xp.arccosh(x), lambda xp, x, y: 1 / xp.sqrt((x - 1) * (x + 1)), "x"),
    "atanh": (lambda xp, x: xp.arctanh(x), lambda xp, x, y: 1 / (1 - x * x), "x"),
    "exp2": (lambda xp, x: xp.exp2(x), lambda xp, x, y: y * _LN2, "y"),
    "expm1": (lambda xp, x: xp.expm1(x), lambda xp, x, y: y + 1, "y"),
    "log2": (lambda xp, x: xp.log2(x), lambda xp, x, y: 1 / (x * _LN2), "x"),
    "log10": (lambda xp, x: xp.log10(x), lambda xp, x, y: 1 / (x * _LN10), "x"),
    "log1p": (lambda xp, x: xp.log1p(x), lambda xp, x, y: 1 / (1 + x), "x"),
    "rsqrt": (lambda xp, x: 1 / xp.sqrt(x), lambda xp, x, y: -0.5 * y * y * y, "y"),
    "reciprocal": (lambda xp, x: 1 / x, lambda xp, x, y: -y * y, "y"),
    # sinc(x) = sin(pi x) / (pi x); its slope (cos(pi x) - sinc(x)) / x is 0 at x = 0
    "sinc": (lambda xp, x: xp.sinc(x),
             lambda xp, x, y: xp.where(x == 0, 0, (xp.cos(np.pi * x) - y) / xp.where(x == 0, 1, x)), "xy"),
    "erfc": (lambda xp, x: special.erfc_array(x), lambda xp, x, y: -2 / math.sqrt(math.pi) * xp.exp(-x * x), "x"),
    "erfinv": (lambda xp, x: special.erfinv_array(x), lambda xp, x, y: math.sqrt(math.pi) / 2 * xp.exp(y * y), "y"),
    "lgamma": (lambda xp, x: special.lgamma_array(x), lambda xp, x, y: special.polygamma_array(0, x), "x"),
    "digamma": (lambda xp, x: special.polygamma_array(0, x), lambda xp, x, y: special.polygamma_array(1, x), "x"),
    "i0": (lambda xp, x: xp.i0(x), lambda xp, x, y: special.i1_array(x), "x"),
}


class UnaryMath(Function):
    """``y = f(x)`` elementwise for one entry of the table above; ``gx = gy * f'(x)``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        f, _, saves = _UNARY[self.name]
        with np.errstate(all="ignore"):
            y = _array(xp, f(xp, x)).astype(x.dtype, copy=False)
        if self.needs_input_grad[0]:
            self.x = x if "x" in saves else None
            self.y = y if "y" in saves else None
        return y

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        with np.errstate(all="ignore"):
            return gy * _UNARY[self.name][1](xp, self.x, self.y).astype(gy.dtype, copy=False)


def _unary(name: str, doc: str) -> Callable[[Tensor], Tensor]:
    def op(input: Tensor) -> Tensor:  # noqa: A002
        return UnaryMath(name)(_float_input(input))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc + " Elementwise, ``(*) -> (*)``; integer input gives float32."
    return op


sin = _unary("sin", "Sine.")
cos = _unary("cos", "Cosine.")
tan = _unary("tan", "Tangent.")
asin = _unary("asin", "Arcsine (nan outside [-1, 1]).")
acos = _unary("acos", "Arccosine (nan outside [-1, 1]).")
atan = _unary("atan", "Arctangent.")
sinh = _unary("sinh", "Hyperbolic sine.")
cosh = _unary("cosh", "Hyperbolic cosine.")
asinh = _unary("asinh", "Inverse hyperbolic sine.")
acosh = _unary("acosh", "Inverse hyperbolic cosine (nan below 1).")
atanh = _unary("atanh", "Inverse hyperbolic tangent (nan outside [-1, 1]).")
exp2 = _unary("exp2", "``2 ** x``.")
expm1 = _unary("expm1", "``exp(x) - 1``, accurate near 0.")
log2 = _unary("log2", "Base-2 logarithm.")
log10 = _unary("log10", "Base-10 logarithm.")
log1p = _unary("log1p", "``log(1 + x)``, accurate near 0.")
rsqrt = _unary("rsqrt", "``1 / sqrt(x)``.")
reciprocal = _unary("reciprocal", "``1 / x``.")
sinc = _unary("sinc", "Normalized sinc, ``sin(pi x) / (pi x)`` (1 at 0).")
erfc = _unary("erfc", "Complementary error function ``1 - erf(x)``, accurate in the tail.")
erfinv = _unary("erfinv", "Inverse error function on [-1, 1].")
lgamma = _unary("lgamma", "``log |Gamma(x)|``.")
digamma = _unary("digamma", "Digamma ``d/dx log Gamma(x)``.")
i0 = _unary("i0", "Modified Bessel function of the first kind, order 0.")


class Polygamma(Function):
    def __init__(self, n: int) -> None:
        self.n = n

    def forward(self, x: Any) -> Any:
        self.x = x
        return special.polygamma_array(self.n, x)

    def backward(self, gy: Any) -> Any:
        return gy * special.polygamma_array(self.n + 1, self.x)


def polygamma(n: int, input: Tensor) -> Tensor:  # noqa: A002
    """The n-th derivative of digamma (``n >= 0``), elementwise."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ArgumentError(f"polygamma: n must be a non-negative int, got {n!r}")
    return Polygamma(n)(_float_input(input))


def mvlgamma(input: Tensor, p: int) -> Tensor:  # noqa: A002
    """Multivariate log-gamma of dimension ``p``: ``sum_i lgamma(x - i/2) + p(p-1)/4 log(pi)``; needs x > (p-1)/2."""
    if not isinstance(p, int) or p < 1:
        raise ArgumentError(f"mvlgamma: p must be a positive int, got {p!r}")
    x = _float_input(input)
    if bool((x.array <= (p - 1) / 2).any()):
        raise ArgumentError(f"mvlgamma: all elements must be greater than (p-1)/2 = {(p - 1) / 2}")
    total = lgamma(x)
    for i in range(1, p):
        total = ew.add(total, lgamma(ew.sub(x, i / 2)))
    return ew.add(total, p * (p - 1) / 4 * math.log(math.pi))


def deg2rad(input: Tensor) -> Tensor:  # noqa: A002
    """Degrees to radians (integer input gives float32)."""
    return ew.mul(_float_input(input), math.pi / 180)


def rad2deg(input: Tensor) -> Tensor:  # noqa: A002
    """Radians to degrees (integer input gives float32)."""
    return ew.mul(_float_input(input), 180 / math.pi)


def square(input: Tensor) -> Tensor:  # noqa: A002
    """``x * x``; integers stay integers, bool becomes int64 (as in PyTorch)."""
    if input.dtype == np.bool_:
        input = input.to("int64")
    return ew.pow(input, 2)


def positive(input: Tensor) -> Tensor:  # noqa: A002
    """``input`` itself (PyTorch returns the same tensor); not defined for bool."""
    if input.dtype == np.bool_:
        raise DTypeError("positive: the + operator on a bool tensor is not supported; use logical ops instead")
    return input


def rsub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:  # noqa: A002
    """``other - alpha * input``."""
    return ew.sub(other, input if alpha == 1 else ew.mul(input, alpha))


def clamp_min(input: Tensor, min: Any) -> Tensor:  # noqa: A002
    return ew.clamp(input, min=min)


def clamp_max(input: Tensor, max: Any) -> Tensor:  # noqa: A002
    return ew.clamp(input, max=max)


# ---------------------------------------------------------------- rounding and sign: piecewise constant


class ZeroGrad(Function):
    """A piecewise-constant function of a float tensor: its gradient is zero, as PyTorch defines it."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def forward(self, x: Any) -> Any:
        return _array(get_array_module(x), self.fn(x)).astype(x.dtype, copy=False)

    def backward(self, gy: Any) -> Any:
        return get_array_module(gy).zeros_like(gy)


def _piecewise_constant(input: Tensor, fn: Callable[[Any], Any]) -> Tensor:
    if input.dtype.kind not in "fc":  # integers are their own floor, ceil, round and trunc
        return Tensor._make(input.array.copy())
    return ZeroGrad(fn)(input)


def floor(input: Tensor) -> Tensor:  # noqa: A002
    return _piecewise_constant(input, lambda x: get_array_module(x).floor(x))


def ceil(input: Tensor) -> Tensor:  # noqa: A002
    return _piecewise_constant(input, lambda x: get_array_module(x).ceil(x))


def trunc(input: Tensor) -> Tensor:  # noqa: A002
    """Round toward zero (``fix`` is the same function)."""
    return _piecewise_constant(input, lambda x: get_array_module(x).trunc(x))


fix = trunc


def round(input: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001,A002
    """Round half to even, to ``decimals`` decimal places (negative: to tens, hundreds, ...)."""
    if decimals and input.dtype.kind not in "fc":
        raise DTypeError(f"round: decimals= needs a floating-point tensor, got {input.dtype}")
    return _piecewise_constant(input, lambda x: get_array_module(x).round(x, decimals))


def sign(input: Tensor) -> Tensor:  # noqa: A002
    """-1, 0 or 1 (bool stays bool); zero gradient."""
    if input.dtype == np.bool_:
        return Tensor._make(input.array.copy())
    if input.dtype.kind != "f":
        return Tensor._make(input._xp.sign(input.array))
    return ZeroGrad(lambda x: get_array_module(x).sign(x))(input)


sgn = sign


def signbit(input: Tensor) -> Tensor:  # noqa: A002
    """True where the sign bit is set (``-0.0`` included); bool, not differentiable."""
    return Tensor._make(_array(input._xp, input._xp.signbit(input.array)))


class Frac(Function):
    def forward(self, x: Any) -> Any:
        return x - get_array_module(x).trunc(x)

    def backward(self, gy: Any) -> Any:
        return gy


def frac(input: Tensor) -> Tensor:  # noqa: A002
    """``x - trunc(x)`` (keeps the sign of x); floating point only."""
    if input.dtype.kind != "f":
        raise DTypeError(f"frac: expected a floating-point tensor, got {input.dtype}")
    return Frac()(input)


class NanToNum(Function):
    def __init__(self, nan: float, posinf: float | None, neginf: float | None) -> None:
        self.nan, self.posinf, self.neginf = nan, posinf, neginf

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self.finite = xp.isfinite(x)
        info = np.finfo(x.dtype)
        posinf = info.max if self.posinf is None else self.posinf
        neginf = info.min if self.neginf is None else self.neginf
        return xp.where(xp.isnan(x), x.dtype.type(self.nan),
                        xp.where(xp.isposinf(x), x.dtype.type(posinf),
                                 xp.where(xp.isneginf(x), x.dtype.type(neginf), x)))

    def backward(self, gy: Any) -> Any:
        return gy * self.finite


def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None,  # noqa: A002
               neginf: float | None = None) -> Tensor:
    """Replace NaN by ``nan`` and +-inf by ``posinf``/``neginf`` (default: the dtype's largest/smallest finite)."""
    if input.dtype.kind != "f":
        return Tensor._make(input.array.copy())
    return NanToNum(nan, posinf, neginf)(input)


class Logit(Function):
    def __init__(self, eps: float | None) -> None:
        self.eps = eps

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        if self.eps is not None:
            lo, hi = x.dtype.type(self.eps), x.dtype.type(1 - self.eps)
            self.inside = (x >= lo) & (x <= hi)
            x = xp.clip(x, lo, hi)
        self.x = x
        with np.errstate(all="ignore"):
            return _array(xp, xp.log(x / (1 - x)))

    def backward(self, gy: Any) -> Any:
        with np.errstate(all="ignore"):
            g = gy / (self.x * (1 - self.x))
        return g * self.inside if self.eps is not None else g


def logit(input: Tensor, eps: float | None = None) -> Tensor:  # noqa: A002
    """``log(p / (1 - p))``; with ``eps`` the input is clamped to [eps, 1 - eps] (no gradient outside)."""
    return Logit(eps)(_float_input(input))


class Frexp(Function):
    def forward(self, x: Any) -> tuple[Any, Any]:
        xp = get_array_module(x)
        mantissa, exponent = xp.frexp(x)
        self.exponent = exponent
        return _array(xp, mantissa), _array(xp, exponent.astype("int32"))

    def backward(self, gm: Any, _ge: Any) -> Any:
        return gm / get_array_module(gm).exp2(self.exponent).astype(gm.dtype)


FrexpResult = namedtuple("frexp", ["mantissa", "exponent"])


def frexp(input: Tensor) -> Any:  # noqa: A002
    """``(mantissa, exponent)`` with ``input = mantissa * 2**exponent``, mantissa in [0.5, 1); exponent int32."""
    if input.dtype.kind != "f":
        raise DTypeError(f"frexp: expected a floating-point tensor, got {input.dtype}")
    return FrexpResult(*Frexp()(input))


# ---------------------------------------------------------------- complex views of real tensors
# hubkit's tensors are real; these give PyTorch's answers for real input.


def real(input: Tensor) -> Tensor:  # noqa: A002
    """The real part: a real tensor itself."""
    return input if input.dtype.kind != "c" else Tensor._make(input.array.real)


def imag(input: Tensor) -> Tensor:  # noqa: A002
    if input.dtype.kind != "c":
        raise DTypeError("imag is not implemented for tensors with non-complex dtypes")
    return Tensor._make(input.array.imag)


def conj(input: Tensor) -> Tensor:  # noqa: A002
    """The complex conjugate: a real tensor itself (``conj_physical``, ``resolve_conj`` and ``resolve_neg`` too)."""
    return input if input.dtype.kind != "c" else Tensor._make(input.array.conj())


def angle(input: Tensor) -> Tensor:  # noqa: A002
    """The argument: pi for negative reals, 0 otherwise (nan stays nan); zero gradient."""
    x = _float_input(input)
    return ZeroGrad(lambda a: get_array_module(a).angle(a))(x)


def is_complex(input: Tensor) -> bool:  # noqa: A002
    return input.dtype.kind == "c"


def is_conj(input: Tensor) -> bool:  # noqa: A002
    return False


def is_neg(input: Tensor) -> bool:  # noqa: A002
    return False


def isreal(input: Tensor) -> Tensor:  # noqa: A002
    xp = input._xp
    if input.dtype.kind != "c":
        return Tensor._make(xp.ones(input.shape, dtype=bool))
    return Tensor._make(input.array.imag == 0)


# ---------------------------------------------------------------- two-argument math


def _float_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Integer operands (already of one dtype, by ``as_operands``) of float-valued math become float32."""
    if a.dtype.kind in "fc":
        return a, b
    return tuple(x.to(float32) if isinstance(x, Tensor) else x.astype(float32) for x in (a, b))


# name: (f(xp, a, b), df/da(xp, a, b, y), df/db(xp, a, b, y))
_BINARY: dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]] = {
    "atan2": (lambda xp, a, b: xp.arctan2(a, b),
              lambda xp, a, b, y: b / (a * a + b * b), lambda xp, a, b, y: -a / (a * a + b * b)),
    "hypot": (lambda xp, a, b: xp.hypot(a, b), lambda xp, a, b, y: a / y, lambda xp, a, b, y: b / y),
    "logaddexp": (lambda xp, a, b: xp.logaddexp(a, b),
                  lambda xp, a, b, y: xp.exp(a - y), lambda xp, a, b, y: xp.exp(b - y)),
    "logaddexp2": (lambda xp, a, b: xp.logaddexp2(a, b),
                   lambda xp, a, b, y: xp.exp2(a - y), lambda xp, a, b, y: xp.exp2(b - y)),
    "copysign": (lambda xp, a, b: xp.copysign(a, b),
                 lambda xp, a, b, y: xp.where(a == 0, 0, y / xp.where(a == 0, 1, a)),
                 lambda xp, a, b, y: xp.zeros_like(y)),
    "fmod": (lambda xp, a, b: xp.fmod(a, b), lambda xp, a, b, y: xp.ones_like(y),
             lambda xp, a, b, y: -xp.trunc(a / b)),
    "remainder": (lambda xp, a, b: xp.remainder(a, b), lambda xp, a, b, y: xp.ones_like(y),
                  lambda xp, a, b, y: -xp.floor(a / b)),
    # x log y, defined as 0 where x == 0 (unless y is nan); the x-gradient is masked where x == 0 and y <= 0
    "xlogy": (lambda xp, a, b: xp.where((a == 0) & ~xp.isnan(b), 0, a * xp.log(b)),
              lambda xp, a, b, y: xp.where((a == 0) & (b <= 0), 0, xp.log(b)), lambda xp, a, b, y: a / b),
    # ties split the gradient evenly and a NaN passes it to both, as in PyTorch
    "fmax": (lambda xp, a, b: xp.fmax(a, b),
             lambda xp, a, b, y: xp.where(a == b, 0.5, xp.where(a < b, 0.0, 1.0)),
             lambda xp, a, b, y: xp.where(a == b, 0.5, xp.where(a > b, 0.0, 1.0))),
    "fmin": (lambda xp, a, b: xp.fmin(a, b),
             lambda xp, a, b, y: xp.where(a == b, 0.5, xp.where(a > b, 0.0, 1.0)),
             lambda xp, a, b, y: xp.where(a == b, 0.5, xp.where(a < b, 0.0, 1.0))),
}


class BinaryMath(Function):
    """``y = f(a, b)`` elementwise (broadcasting) for one entry of ``_BINARY``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def forward(self, a: Any, b: Any) -> Any:
        xp = get_array_module(a if hasattr(a, "shape") else b)
        with np.errstate(all="ignore"):
            y = _array(xp, _BINARY[self.name][0](xp, a, b))
        if any(self.needs_input_grad):
            self.a, self.b, self.y = a, b, y
        return y

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        _, da, db = _BINARY[self.name]
        with np.errstate(all="ignore"):
            ga = gy * da(xp, self.a, self.b, self.y).astype(gy.dtype, copy=False) if self.needs_input_grad[0] else None
            gb = gy * db(xp, self.a, self.b, self.y).astype(gy.dtype, copy=False) if self.needs_input_grad[1] else None
        return ga, gb


_FLOAT_RESULT = {"atan2", "hypot", "logaddexp", "logaddexp2", "copysign", "xlogy"}


def _binary(name: str, doc: str) -> Callable[[Any, Any], Tensor]:
    def op(input: Any, other: Any) -> Tensor:  # noqa: A002
        a, b = as_operands(input, other, name)
        if name in _FLOAT_RESULT:
            a, b = _float_pair(a, b)
        _broadcast_check(name, a, b)
        return BinaryMath(name)(a, b)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc + " Elementwise with broadcasting."
    return op


atan2 = _binary("atan2", "The angle of the point (other, input): ``atan(input / other)`` in the right quadrant.")
hypot = _binary("hypot", "``sqrt(input**2 + other**2)`` without overflow.")
logaddexp = _binary("logaddexp", "``log(exp(input) + exp(other))`` without overflow.")
logaddexp2 = _binary("logaddexp2", "``log2(2**input + 2**other)`` without overflow.")
copysign = _binary("copysign", "``|input|`` with the sign of ``other`` (float result).")
fmod = _binary("fmod", "C's remainder ``input - trunc(input / other) * other`` (sign of ``input``).")
remainder = _binary("remainder", "Python's modulus ``input - floor(input / other) * other`` (sign of ``other``).")
xlogy = _binary("xlogy", "``input * log(other)``, 0 where ``input`` is 0.")
fmax = _binary("fmax", "Elementwise maximum that ignores NaN (NaN only where both are NaN).")
fmin = _binary("fmin", "Elementwise minimum that ignores NaN (NaN only where both are NaN).")


def float_power(input: Any, exponent: Any) -> Tensor:  # noqa: A002
    """``input ** exponent`` computed in float64 (the result is float64)."""
    a = input.to(float64) if isinstance(input, Tensor) else input
    b = exponent.to(float64) if isinstance(exponent, Tensor) else exponent
    if not isinstance(a, Tensor):
        a = Tensor._make(b._xp.asarray(a, dtype=float64))
    return ew.pow(a, b)


def ldexp(input: Tensor, other: Any) -> Tensor:  # noqa: A002
    """``input * 2**other``."""
    return ew.mul(_float_input(input), exp2(other) if isinstance(other, Tensor) else 2.0**other)


def lerp(input: Tensor, end: Tensor, weight: Any) -> Tensor:  # noqa: A002
    """``input + weight * (end - input)``; ``weight`` a number or a tensor (all broadcast)."""
    return ew.add(input, ew.mul(weight, ew.sub(end, input)) if isinstance(weight, Tensor)
                  else ew.mul(ew.sub(end, input), weight))


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:  # noqa: A002
    """``input + value * tensor1 * tensor2`` (broadcasting)."""
    prod = ew.mul(tensor1, tensor2)
    return ew.add(input, prod if value == 1 else ew.mul(prod, value))


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:  # noqa: A002
    """``input + value * tensor1 / tensor2`` (broadcasting); integer tensor1 and tensor2 are refused, as in torch."""
    if tensor1.dtype.kind in "biu" and tensor2.dtype.kind in "biu":
        raise DTypeError("addcdiv: integer division with addcdiv is not supported; use "
                         "input + value * torch.div(tensor1, tensor2, rounding_mode=...) instead")
    quot = ew.div(tensor1, tensor2)
    return ew.add(input, quot if value == 1 else ew.mul(quot, value))


def _raw_binary(name: str, a: Any, b: Any, fn: Callable[[Any, Any, Any], Any]) -> Tensor:
    """A non-differentiable elementwise function of two operands (PyTorch defines no gradient for it)."""
    a, b = as_operands(a, b, name)
    _broadcast_check(name, a, b)
    av = a.array if isinstance(a, Tensor) else a
    bv = b.array if isinstance(b, Tensor) else b
    xp = get_array_module(av if isinstance(a, Tensor) else bv)
    return Tensor._make(_array(xp, fn(xp, av, bv)))


def heaviside(input: Tensor, values: Tensor) -> Tensor:  # noqa: A002
    """0 where input < 0, ``values`` where input == 0, 1 where input > 0 (NaN gives 0); not differentiable."""
    if isinstance(values, Tensor) and values.dtype != input.dtype:
        raise DTypeError(f"heaviside: input ({input.dtype}) and values ({values.dtype}) must have the same dtype")
    return _raw_binary("heaviside", input, values,
                       lambda xp, a, b: xp.where(a == 0, b, (a > 0).astype(np.result_type(a, b))))


def nextafter(input: Tensor, other: Any) -> Tensor:  # noqa: A002
    """The next float after ``input`` toward ``other``; not differentiable."""
    return _raw_binary("nextafter", input, other, lambda xp, a, b: xp.nextafter(a, b))


def _integer_binary(name: str, ufunc: str) -> Callable[[Tensor, Any], Tensor]:
    def op(input: Tensor, other: Any) -> Tensor:  # noqa: A002
        for x in (input, other):
            if isinstance(x, Tensor) and x.dtype.kind not in "biu":
                raise DTypeError(f"{name}: expected integer tensors, got {x.dtype}")
        return _raw_binary(name, input, other, lambda xp, a, b: getattr(xp, ufunc)(a, b))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``{ufunc}`` of two integer tensors, elementwise with broadcasting."
    return op


gcd = _integer_binary("gcd", "gcd")
lcm = _integer_binary("lcm", "lcm")
bitwise_left_shift = _integer_binary("bitwise_left_shift", "left_shift")
bitwise_right_shift = _integer_binary("bitwise_right_shift", "right_shift")


def floor_divide(input: Any, other: Any) -> Tensor:  # noqa: A002
    """``floor(input / other)`` (``//``), keeping integer dtypes."""
    return ew.div(input, other, rounding_mode="floor")
