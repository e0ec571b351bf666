"""Special functions on raw arrays: erfc, erfinv, lgamma, the polygamma family (digamma = order 0) and
the modified Bessel function I1 (the derivative of ``i0``).

numpy has none of these and scipy is not a runtime dependency, so on the CPU they are evaluated here
in float64 (float16/float32 inputs are computed in float64 and rounded back): the gamma family by
shifting the argument up to >= 10 with the recurrence and summing the Stirling/asymptotic series
there, erfc from ``elementwise``'s erf series plus an asymptotic tail, and erfinv from Giles'
single-precision approximation refined by Newton steps. On CUDA, cupyx.scipy.special's kernels
are used instead (one launch each). tests/engine/test_ops_pointwise.py checks them against
PyTorch over their ranges (1e-12 relative in float64; erfc 1e-11 where it comes from 1 - erf).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.ops.elementwise import _ERFCX_LARGE, _chebyshev, erf_array

# Bernoulli numbers B_2, B_4, ..., B_16 for the asymptotic series of lgamma and the polygammas
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_SHIFT_TO = 10.0  # the series below are summed at x >= 10, where 8 terms reach float64 precision


def _cupy_special(x: Any, name: str, *args: Any) -> Any:
    import cupyx.scipy.special as sp

    return getattr(sp, name)(*args, x).astype(x.dtype, copy=False)


def _is_cupy(xp: Any) -> bool:
    return xp.__name__ == "cupy"


def _as64(x: Any) -> Any:
    return x.astype(np.float64) if x.dtype != np.float64 else x


def _sinpi(xp: Any, x: Any) -> Any:
    """sin(pi x), exact at integers (x reduced to [-1, 1] first)."""
    r = x - 2 * xp.round(x / 2)
    return xp.sin(np.pi * r)


def _shift_up(xp: Any, x: Any, to: float) -> tuple[Any, Any]:
    """(w, n): w = x + n with n >= 0 the fewest whole steps that bring every finite x to at least ``to``."""
    steps = xp.ceil(to - x)
    steps = xp.where(xp.isfinite(steps) & (steps > 0), steps, 0)
    return x + steps, steps


# ---------------------------------------------------------------- lgamma


def _lgamma_stirling(xp: Any, w: Any) -> Any:
    """log Gamma(w) for w >= 10 by Stirling's series."""
    inv = 1 / w
    inv2 = inv * inv
    series = xp.zeros_like(w)
    for k in reversed(range(len(_BERNOULLI))):
        series = series * inv2 + _BERNOULLI[k] / ((2 * k + 2) * (2 * k + 1))
    return (w - 0.5) * xp.log(w) - w + _HALF_LOG_2PI + series * inv


def lgamma_array(x: Any) -> Any:
    """log |Gamma(x)|, elementwise, in x's floating dtype (inf at 0 and the negative integers)."""
    xp = get_array_module(x)
    if _is_cupy(xp):
        return _cupy_special(x, "gammaln")
    z = _as64(x)
    with np.errstate(all="ignore"):
        reflect = z < 0.5
        pos = xp.where(reflect, 1 - z, z)  # Gamma(x) Gamma(1 - x) = pi / sin(pi x)
        w, steps = _shift_up(xp, pos, _SHIFT_TO)
        # log Gamma(pos) = log Gamma(pos + n) - log(pos (pos + 1) ... (pos + n - 1)); n <= 10, no overflow
        prod = xp.ones_like(pos)
        for k in range(int(steps.max()) if steps.size else 0):
            prod = xp.where(k < steps, prod * (pos + k), prod)
        out = _lgamma_stirling(xp, w) - xp.log(prod)
        out = xp.where(reflect, xp.log(np.pi / xp.abs(_sinpi(xp, z))) - out, out)
        out = xp.where(reflect & (z == xp.floor(z)), np.inf, out)
        out = xp.where(xp.isinf(z), np.inf, out)
    return out.astype(x.dtype, copy=False)


# ---------------------------------------------------------------- digamma and polygamma


def _polygamma_asymptotic(xp: Any, n: int, w: Any) -> Any:
    """psi^(n)(w) for large w by its asymptotic series."""
    inv = 1 / w
    if n == 0:
        inv2 = inv * inv
        series = xp.zeros_like(w)
        for k in reversed(range(len(_BERNOULLI))):
            series = series * inv2 + _BERNOULLI[k] / (2 * k + 2)
        return xp.log(w) - 0.5 * inv - series * inv2
    # (-1)^(n+1) [ (n-1)!/w^n + n!/(2 w^(n+1)) + sum_k B_2k (2k+n-1)!/(2k)! / w^(2k+n) ]
    total = math.factorial(n - 1) * inv**n + math.factorial(n) / 2 * inv ** (n + 1)
    for k, b in enumerate(_BERNOULLI, start=1):
        total = total + b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) * inv ** (2 * k + n)
    return total if n % 2 else -total


def _polygamma_shifted(xp: Any, n: int, z: Any) -> Any:
    """psi^(n)(z) by the recurrence psi^(n)(z) = psi^(n)(z + 1) - (-1)^n n! / z^(n+1), then the series."""
    w, steps = _shift_up(xp, z, _SHIFT_TO + n)
    acc = xp.zeros_like(z)
    for k in range(int(steps.max()) if steps.size else 0):
        acc = xp.where(k < steps, acc + 1 / (z + k) ** (n + 1), acc)
    sign = -1.0 if n % 2 == 0 else 1.0
    return _polygamma_asymptotic(xp, n, w) + sign * math.factorial(n) * acc


def polygamma_array(n: int, x: Any) -> Any:
    """The n-th derivative of the digamma function (n = 0 is digamma itself), elementwise."""
    xp = get_array_module(x)
    if _is_cupy(xp):
        return _cupy_special(x, "digamma") if n == 0 else _cupy_special(x, "polygamma", xp.asarray(n))
    z = _as64(x)
    with np.errstate(all="ignore"):
        if n > 1:  # no reflection formula is needed for the rare higher orders at negative x
            out = _polygamma_shifted(xp, n, z)
            pole = (z <= 0) & (z == xp.floor(z))
            out = xp.where(pole, np.inf if n % 2 else -np.inf, out)
            return out.astype(x.dtype, copy=False)
        reflect = z < 0.5
        pos = xp.where(reflect, 1 - z, z)
        out = _polygamma_shifted(xp, n, pos)
        if n == 0:  # psi(x) = psi(1 - x) - pi / tan(pi x)
            cot = xp.cos(np.pi * z) / _sinpi(xp, z)
            out = xp.where(reflect, out - np.pi * cot, out)
            pole = reflect & (z == xp.floor(z))
            out = xp.where(pole, xp.where(z == 0, -np.inf, np.nan), out)
        else:  # psi1(x) = pi^2 / sin^2(pi x) - psi1(1 - x)
            out = xp.where(reflect, np.pi**2 / _sinpi(xp, z) ** 2 - out, out)
            out = xp.where(reflect & (z == xp.floor(z)), np.inf, out)
        out = xp.where(xp.isposinf(z), np.log(np.inf) if n == 0 else 0.0, out)
    return out.astype(x.dtype, copy=False)


# ---------------------------------------------------------------- erfc and erfinv

_ERFC_ASYMPTOTIC_TERMS = 25  # at x >= 6 the 25th term of the series is below 3e-15 of the sum


def _erfc_positive_tail(xp: Any, a: Any) -> Any:
    """erfc(a) for a >= 2, with full relative precision (no 1 - erf cancellation)."""
    with np.errstate(all="ignore"):
        mid = xp.exp(-a * a) * _chebyshev((1 / a - 1 / 3) * 6, _ERFCX_LARGE)
        # erfc(a) ~ exp(-a^2) / (a sqrt(pi)) * sum_k (-1)^k (2k-1)!! / (2a^2)^k for a >= 6
        inv = 1 / (2 * a * a)
        term = xp.ones_like(a)
        total = xp.ones_like(a)
        for k in range(1, _ERFC_ASYMPTOTIC_TERMS):
            term = term * -(2 * k - 1) * inv
            total = total + term
        far = xp.exp(-a * a) / (a * math.sqrt(math.pi)) * total
        far = xp.where(xp.isinf(a), 0.0, far)
    return xp.where(a < 6, mid, far)


def erfc_array(x: Any) -> Any:
    """The complementary error function ``1 - erf(x)``, accurate in the tail."""
    xp = get_array_module(x)
    if _is_cupy(xp):
        return _cupy_special(x, "erfc")
    z = _as64(x)
    out = 1 - erf_array(z)
    tail = z >= 2
    if tail.any():
        out[tail] = _erfc_positive_tail(xp, z[tail])
    return out.astype(x.dtype, copy=False)


# Giles, "Approximating the erfinv function" (GPU Computing Gems, 2010): single precision, two branches
_GILES_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                  -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_GILES_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
               -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
_ERFINV_NEWTON_STEPS = 4


def _horner(xp: Any, w: Any, coefs: tuple[float, ...]) -> Any:
    acc = xp.full_like(w, coefs[0])
    for c in coefs[1:]:
        acc = acc * w + c
    return acc


def erfinv_array(x: Any) -> Any:
    """The inverse error function on [-1, 1] (+-inf at +-1, nan outside)."""
    xp = get_array_module(x)
    if _is_cupy(xp):
        return _cupy_special(x, "erfinv")
    z = _as64(x)
    with np.errstate(all="ignore"):
        w = -xp.log((1 - z) * (1 + z))
        y = z * xp.where(w < 5, _horner(xp, w - 2.5, _GILES_CENTRAL), _horner(xp, xp.sqrt(w) - 3, _GILES_TAIL))
        # Newton on erf(y) = z in the centre. In the tails (|z| >= 0.5) Newton runs on
        # log erfc(|y|) = log(1 - |z|) instead: 1 - |z| is exact there, erf(y) - z would cancel to nothing,
        # and the log turns erfc's exponential decay into a near-quadratic that Newton solves in few steps.
        a = xp.abs(z)
        inner = a < 0.5
        for _ in range(_ERFINV_NEWTON_STEPS):
            finite = xp.isfinite(y)
            ys = xp.where(finite, y, 0.0)
            slope = _TWO_OVER_SQRT_PI * xp.exp(-ys * ys)
            step = (erf_array(ys) - z) / slope
            if (~inner).any():
                ay = xp.abs(ys[~inner])
                tail = erfc_array(ay)
                step[~inner] = xp.sign(z[~inner]) * (xp.log(1 - a[~inner]) - xp.log(tail)) * tail / slope[~inner]
            y = xp.where(finite, ys - step, y)
        y = xp.where(a == 1, xp.sign(z) * np.inf, y)
        y = xp.where(a > 1, np.nan, y)
    return y.astype(x.dtype, copy=False)


# ---------------------------------------------------------------- modified Bessel function I1

_I1_MAX_TERMS = 2000


def i1_array(x: Any) -> Any:
    """The modified Bessel function of the first kind of order 1 (the derivative of I0)."""
    xp = get_array_module(x)
    if _is_cupy(xp):
        return _cupy_special(x, "i1")
    z = _as64(x)
    half = z / 2
    q = half * half
    term = half.copy()
    total = half.copy()
    with np.errstate(all="ignore"):
        # sum_k (x/2)^(2k+1) / (k! (k+1)!): every term is positive for x > 0, so stop at float64 precision
        for k in range(1, _I1_MAX_TERMS):
            term = term * q / (k * (k + 1))
            total = total + term
            if not bool((xp.abs(term) > 1e-17 * xp.abs(total)).any()):
                break
    return total.astype(x.dtype, copy=False)
