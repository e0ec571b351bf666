"""Activations: relu, leaky_relu, elu, sigmoid, tanh, gelu, silu, softplus, hardtanh, relu6,
hardswish, hardsigmoid, softmax, log_softmax.

All are shape-preserving (``(*) -> (*)``) and keep the input's floating dtype. Gradients at the
kinks follow PyTorch (relu passes nothing at 0; hardtanh passes nothing at its bounds).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError
from hubkit.ops.elementwise import _float_input, erf_array
from hubkit.ops.reduction import normalize_dims
from hubkit.tensor import Tensor


def _sigmoid_array(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` without overflow for large negative ``x``."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


# ---------------------------------------------------------------- rectifiers


class ReLU(Function):
    def forward(self, x: Any) -> Any:
        self.mask = x > 0
        return get_array_module(x).maximum(x, x.dtype.type(0))

    def backward(self, gy: Any) -> Any:
        return gy * self.mask


def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``max(x, 0)``. ``inplace`` is accepted for compatibility; the result is always a new tensor."""
    return ReLU()(input)


class LeakyReLU(Function):
    def __init__(self, slope: float) -> None:
        self.slope = slope

    def forward(self, x: Any) -> Any:
        self.mask = x > 0
        return get_array_module(x).where(self.mask, x, x * x.dtype.type(self.slope))

    def backward(self, gy: Any) -> Any:
        return get_array_module(gy).where(self.mask, gy, gy * gy.dtype.type(self.slope))


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    """``x`` where ``x > 0``, else ``negative_slope * x``."""
    return LeakyReLU(negative_slope)(_float_input(input))


class ELU(Function):
    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self.x = x
        return xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * x.dtype.type(self.alpha))

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        x = self.x
        return gy * xp.where(x > 0, gy.dtype.type(1), xp.exp(xp.minimum(x, 0)) * gy.dtype.type(self.alpha))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    return ELU(alpha)(_float_input(input))


class Hardtanh(Function):
    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def forward(self, x: Any) -> Any:
        self.inside = (x > self.lo) & (x < self.hi)
        return get_array_module(x).clip(x, x.dtype.type(self.lo), x.dtype.type(self.hi))

    def backward(self, gy: Any) -> Any:
        return gy * self.inside


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """Clamp to ``[min_val, max_val]``; the gradient is 1 strictly inside and 0 at and beyond the bounds."""
    if min_val > max_val:
        raise ArgumentError(f"hardtanh: min_val ({min_val}) must not be greater than max_val ({max_val})")
    return Hardtanh(min_val, max_val)(_float_input(input))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``min(max(x, 0), 6)``, i.e. ``hardtanh(x, 0, 6)``."""
    return hardtanh(input, 0.0, 6.0)


class Hardswish(Function):
    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self.x = x
        return x * xp.clip(x + 3, 0, 6) / x.dtype.type(6)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        x = self.x
        slope = xp.where(x < -3, gy.dtype.type(0), xp.where(x <= 3, x / 3 + gy.dtype.type(0.5), gy.dtype.type(1)))
        return gy * slope


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``x * relu6(x + 3) / 6`` (MobileNetV3)."""
    return Hardswish()(_float_input(input))


class Hardsigmoid(Function):
    def forward(self, x: Any) -> Any:
        self.inside = (x > -3) & (x < 3)
        return get_array_module(x).clip(x + 3, 0, 6) / x.dtype.type(6)

    def backward(self, gy: Any) -> Any:
        return gy * self.inside / gy.dtype.type(6)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``relu6(x + 3) / 6``; the gradient is 1/6 strictly inside (-3, 3), else 0."""
    return Hardsigmoid()(_float_input(input))


# ---------------------------------------------------------------- smooth activations


class Sigmoid(Function):
    def forward(self, x: Any) -> Any:
        self.y = _sigmoid_array(x)
        return self.y

    def backward(self, gy: Any) -> Any:
        return gy * self.y * (1 - self.y)


def sigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """``1 / (1 + exp(-x))``, computed without overflow."""
    return Sigmoid()(_float_input(input))


class Tanh(Function):
    def forward(self, x: Any) -> Any:
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy: Any) -> Any:
        return gy * (1 - self.y * self.y)


def tanh(input: Tensor) -> Tensor:  # noqa: A002
    return Tanh()(_float_input(input))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELU(Function):
    def __init__(self, approximate: str) -> None:
        self.approximate = approximate

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self.x = x
        t = x.dtype.type
        if self.approximate == "tanh":
            self.th = xp.tanh(t(_SQRT_2_OVER_PI) * (x + t(0.044715) * x * x * x))
            return t(0.5) * x * (1 + self.th)
        self.cdf = t(0.5) * (1 + erf_array(x * t(_INV_SQRT_2)))
        return x * self.cdf

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        x, t = self.x, gy.dtype.type
        if self.approximate == "tanh":
            th = self.th
            inner = t(_SQRT_2_OVER_PI) * (1 + t(3 * 0.044715) * x * x)
            return gy * (t(0.5) * (1 + th) + t(0.5) * x * (1 - th * th) * inner)
        pdf = xp.exp(t(-0.5) * x * x) * t(_INV_SQRT_2PI)
        return gy * (self.cdf + x * pdf)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    """``x * Phi(x)`` with Phi the standard normal CDF (``approximate='none'``, via erf), or the
    tanh approximation ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (``approximate='tanh'``).
    """
    if approximate not in ("none", "tanh"):
        raise ArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU(approximate)(_float_input(input))


class SiLU(Function):
    def forward(self, x: Any) -> Any:
        self.x, self.s = x, _sigmoid_array(x)
        return x * self.s

    def backward(self, gy: Any) -> Any:
        s = self.s
        return gy * s * (1 + self.x * (1 - s))


def silu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``x * sigmoid(x)`` (also called swish)."""
    return SiLU()(_float_input(input))


class Softplus(Function):
    def __init__(self, beta: float, threshold: float) -> None:
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        bx = x * x.dtype.type(self.beta)
        self.bx = bx
        # log(1 + exp(bx)) = max(bx, 0) + log1p(exp(-|bx|)) never overflows
        soft = (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / x.dtype.type(self.beta)
        return xp.where(bx > self.threshold, x, soft)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        return gy * xp.where(self.bx > self.threshold, gy.dtype.type(1), _sigmoid_array(self.bx))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: A002
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold``."""
    return Softplus(beta, threshold)(_float_input(input))


# ---------------------------------------------------------------- softmax family


class Softmax(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        if x.size == 0:
            self.y = x.copy()
            return self.y
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        e /= e.sum(axis=self.axis, keepdims=True)
        self.y = e
        return e

    def backward(self, gy: Any) -> Any:
        y = self.y
        return y * (gy - (gy * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        if x.size == 0:
            self.y = x.copy()
            return self.y
        shifted = x - x.max(axis=self.axis, keepdims=True)
        self.y = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        return self.y

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


def _softmax_axis(input: Tensor, dim: int | None, op: str) -> int:
    if dim is None:  # PyTorch's legacy implicit choice, with its warning
        dim = 0 if input.ndim in (0, 1, 3) else 1
        warnings.warn(
            f"Implicit dimension choice for {op} has been deprecated. Change the call to include dim=X as an argument.",
            UserWarning,
            stacklevel=3,
        )
    (axis,) = normalize_dims(dim, input.ndim, op)
    return axis


def _softmax_input(input: Tensor, dtype: Any) -> Tensor:
    return _float_input(input if dtype is None else input.to(dtype))


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:  # noqa: A002
    """``exp(x) / sum(exp(x), dim)``, shifted by the max for stability. ``(*) -> (*)``."""
    input = _softmax_input(input, dtype)
    if input.ndim == 0:
        return Softmax(0)(input.reshape(1)).reshape(())
    return Softmax(_softmax_axis(input, dim, "softmax"))(input)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:  # noqa: A002
    """``x - logsumexp(x, dim)``, stable for large logits. ``(*) -> (*)``."""
    input = _softmax_input(input, dtype)
    if input.ndim == 0:
        return LogSoftmax(0)(input.reshape(1)).reshape(())
    return LogSoftmax(_softmax_axis(input, dim, "log_softmax"))(input)
