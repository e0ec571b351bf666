"""Activations: relu, leaky_relu, elu, sigmoid, tanh, gelu, silu, softplus, hardtanh, relu6,
hardswish, hardsigmoid, softmax, log_softmax; selu, celu, prelu, rrelu, threshold, hardshrink,
softshrink, softsign, tanhshrink, logsigmoid, mish, glu, softmin; and torch's in-place ``relu_`` family.

All but glu are shape-preserving (``(*) -> (*)``) and keep the input's floating dtype. Gradients at the
kinks follow PyTorch (relu passes nothing at 0; hardtanh passes nothing at its bounds).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.ops.elementwise import _float_input, erf_array
from hubkit.ops.reduction import normalize_dims
from hubkit.ops.shape import chunk
from hubkit.random import uniform_array
from hubkit.tensor import Tensor


def _sigmoid_array(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` without overflow for large negative ``x``."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


# ---------------------------------------------------------------- rectifiers


def _cpu_elementwise(x: Any) -> Any:
    """``hubkit.kernels.cpu_elementwise`` for a numpy array (one compiled, threaded pass per activation),
    else None (cupy arrays keep their ufuncs)."""
    if isinstance(x, np.ndarray):
        from hubkit.kernels import cpu_elementwise

        return cpu_elementwise
    return None


class ReLU(Function):
    # keeps its output (which the next layer usually keeps anyway) instead of a mask: torch's choice too,
    # and one pass less in forward
    def forward(self, x: Any) -> Any:
        cpu = _cpu_elementwise(x)
        if cpu is not None:
            self.y = cpu.clamp(x, 0.0, math.inf)
            return self.y
        self.y = get_array_module(x).maximum(x, x.dtype.type(0))
        return self.y

    def backward(self, gy: Any) -> Any:
        cpu = _cpu_elementwise(gy)
        if cpu is not None:
            return cpu.clamp_backward(gy, self.y, 0.0, math.inf)
        if gy.dtype.kind == "f" and gy.dtype == self.y.dtype:
            from hubkit.kernels import cuda

            return cuda.relu_backward(gy, self.y)
        return gy * (self.y > 0)


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
    """``scale * (x if x > 0 else alpha * (exp(input_scale * x) - 1))``: elu, and with other constants
    celu (``input_scale = 1 / alpha``) and selu (fixed ``alpha`` and ``scale``), as torch's kernel has it."""

    def __init__(self, alpha: float, scale: float = 1.0, input_scale: float = 1.0) -> None:
        self.alpha, self.scale, self.input_scale = alpha, scale, input_scale

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        t = x.dtype.type
        self.x = x
        y = xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0) * t(self.input_scale)) * t(self.alpha))
        return y if self.scale == 1.0 else y * t(self.scale)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        x, t = self.x, gy.dtype.type
        negative = xp.exp(xp.minimum(x, 0) * t(self.input_scale)) * t(self.alpha * self.input_scale)
        return gy * (xp.where(x > 0, t(1), negative) * t(self.scale))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    return ELU(alpha)(_float_input(input))


class Hardtanh(Function):
    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def forward(self, x: Any) -> Any:
        cpu = _cpu_elementwise(x)
        if cpu is not None:
            # keeps the output: strictly inside (lo, hi) exactly where x is
            self.y = cpu.clamp(x, self.lo, self.hi)
            return self.y
        self.inside = (x > self.lo) & (x < self.hi)
        return get_array_module(x).clip(x, x.dtype.type(self.lo), x.dtype.type(self.hi))

    def backward(self, gy: Any) -> Any:
        if hasattr(self, "y"):
            return _cpu_elementwise(gy).clamp_backward(gy, self.y, self.lo, self.hi)
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
        t = x.dtype.type
        if self.approximate == "tanh":
            self.x = x
            self.th = xp.tanh(t(_SQRT_2_OVER_PI) * (x + t(0.044715) * x * x * x))
            return t(0.5) * x * (1 + self.th)
        cpu = _cpu_elementwise(x)
        if cpu is not None:
            # one compiled pass (float32), and Phi only kept when backward will need it
            want = self.needs_input_grad[0]
            y, cdf = cpu.gelu(x, erf_array, want_cdf=want)
            if want:
                self.x, self.cdf = x, cdf
            return y
        self.x = x
        self.cdf = t(0.5) * (1 + erf_array(x * t(_INV_SQRT_2)))
        return x * self.cdf

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        x, t = self.x, gy.dtype.type
        if self.approximate == "tanh":
            th = self.th
            inner = t(_SQRT_2_OVER_PI) * (1 + t(3 * 0.044715) * x * x)
            return gy * (t(0.5) * (1 + th) + t(0.5) * x * (1 - th * th) * inner)
        cpu = _cpu_elementwise(gy)
        if cpu is not None:
            return cpu.gelu_backward(gy, x, self.cdf)
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
        # the passes after the first write into the one fresh array (these ops are memory-bound; splitting rows
        # over two threads was measured and gained nothing on a 2-core VM)
        e = x - x.max(axis=self.axis, keepdims=True)
        xp.exp(e, out=e)
        e /= e.sum(axis=self.axis, keepdims=True)
        self.y = e
        return e

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        y = self.y
        g = gy * y
        dot = g.sum(axis=self.axis, keepdims=True)
        xp.subtract(gy, dot, out=g)
        g *= y
        return g


class LogSoftmax(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        if x.size == 0:
            self.y = x.copy()
            return self.y
        shifted = x - x.max(axis=self.axis, keepdims=True)
        total = xp.exp(shifted).sum(axis=self.axis, keepdims=True)
        shifted -= xp.log(total)
        self.y = shifted
        return shifted

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        g = xp.exp(self.y)
        g *= gy.sum(axis=self.axis, keepdims=True)
        xp.subtract(gy, g, out=g)
        return g


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


# ---------------------------------------------------------------- the rest of torch.nn.functional's activations


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``scale * elu(x, alpha)`` with the self-normalizing constants of Klambauer et al. (2017)."""
    return ELU(_SELU_ALPHA, _SELU_SCALE)(_float_input(input))


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    if alpha == 0:
        raise ArgumentError("celu: alpha cannot be 0 (the negative branch divides by it)")
    return ELU(alpha, 1.0, 1.0 / alpha)(_float_input(input))


class PReLU(Function):
    """``x`` where ``x > 0``, else ``weight * x``, one learned slope per channel (dim 1) or one for all."""

    def forward(self, x: Any, w: Any) -> Any:
        xp = get_array_module(x)
        shape = (1, w.size) + (1,) * (x.ndim - 2) if w.size > 1 else ()
        self.x, self.w, self.w_shape = x, w.reshape(shape), w.shape
        return xp.where(x > 0, x, x * self.w)

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        positive = self.x > 0
        gx = xp.where(positive, gy, gy * self.w) if self.needs_input_grad[0] else None
        gw = None
        if self.needs_input_grad[1]:
            contribution = xp.where(positive, gy.dtype.type(0), gy * self.x)
            axes = None if self.w.ndim == 0 else (0, *range(2, gy.ndim))
            gw = contribution.sum(axis=axes).reshape(self.w_shape)
        return gx, gw


def prelu(input: Tensor, weight: Tensor) -> Tensor:  # noqa: A002
    """PReLU, ``torch.nn.functional.prelu``: ``input`` (N, C, *) or without channels, ``weight`` (C,) or
    one element -> same shape as ``input``."""
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() != 1 and weight.numel() != channels:
        raise ShapeError(f"prelu: mismatch of parameter numbers and input channel size: weight has "
                         f"{weight.numel()} elements and input {tuple(input.shape)} has {channels} channel(s) "
                         "(dim 1); pass one slope or one per channel")
    if input.dtype != weight.dtype:
        raise DTypeError(f"prelu: input dtype {input.dtype} and weight dtype {weight.dtype} differ; "
                         "cast one with .to()")
    return PReLU()(input, weight)


class RReLU(Function):
    """Leaky ReLU whose negative slope was drawn per element (``slope`` holds 1 where ``x > 0``)."""

    def __init__(self, slope: Any) -> None:
        self.slope = slope

    def forward(self, x: Any) -> Any:
        return x * self.slope

    def backward(self, gy: Any) -> Any:
        return gy * self.slope


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,  # noqa: A002
          inplace: bool = False) -> Tensor:
    """Randomized leaky ReLU (Xu et al., 2015): while training each element ``x <= 0`` gets its own
    slope drawn from U(lower, upper) (hubkit's global generator); in eval the slope is ``(lower + upper) / 2``."""
    if lower > upper:
        raise ArgumentError(f"rrelu: lower bound ({lower}) must be less than or equal to the upper bound ({upper})")
    input = _float_input(input)
    if not training:
        return LeakyReLU((lower + upper) / 2)(input)
    xp, t = input._xp, input.dtype.type
    u = uniform_array(input.shape, input.dtype, input.device)
    slope = xp.where(input.array > 0, t(1), u * t(upper - lower) + t(lower))
    return RReLU(slope)(input)


class Threshold(Function):
    def __init__(self, threshold: float, value: float) -> None:
        self.threshold, self.value = threshold, value

    def forward(self, x: Any) -> Any:
        self.keep = x > self.threshold
        return get_array_module(x).where(self.keep, x, x.dtype.type(self.value))

    def backward(self, gy: Any) -> Any:
        return gy * self.keep


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:  # noqa: A002
    """``x`` where ``x > threshold``, else ``value``."""
    return Threshold(threshold, value)(_float_input(input))


class Hardshrink(Function):
    def __init__(self, lambd: float) -> None:
        self.lambd = lambd

    def forward(self, x: Any) -> Any:
        self.keep = (x > self.lambd) | (x < -self.lambd)
        return x * self.keep

    def backward(self, gy: Any) -> Any:
        return gy * self.keep


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:  # noqa: A002
    """``x`` where ``|x| > lambd``, else 0."""
    return Hardshrink(lambd)(_float_input(input))


class Softshrink(Function):
    def __init__(self, lambd: float) -> None:
        self.lambd = lambd

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        t = x.dtype.type
        self.keep = (x > self.lambd) | (x < -self.lambd)
        return xp.where(self.keep, x - xp.sign(x) * t(self.lambd), t(0))

    def backward(self, gy: Any) -> Any:
        return gy * self.keep


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:  # noqa: A002
    """``x - lambd`` where ``x > lambd``, ``x + lambd`` where ``x < -lambd``, else 0."""
    if lambd < 0:
        raise ArgumentError(f"softshrink: lambd must be greater than or equal to 0, got {lambd}")
    return Softshrink(lambd)(_float_input(input))


class Softsign(Function):
    def forward(self, x: Any) -> Any:
        self.denom = 1 + get_array_module(x).abs(x)
        return x / self.denom

    def backward(self, gy: Any) -> Any:
        return gy / (self.denom * self.denom)


def softsign(input: Tensor) -> Tensor:  # noqa: A002
    """``x / (1 + |x|)``."""
    return Softsign()(_float_input(input))


class Tanhshrink(Function):
    def forward(self, x: Any) -> Any:
        self.th = get_array_module(x).tanh(x)
        return x - self.th

    def backward(self, gy: Any) -> Any:
        return gy * self.th * self.th


def tanhshrink(input: Tensor) -> Tensor:  # noqa: A002
    """``x - tanh(x)``."""
    return Tanhshrink()(_float_input(input))


class LogSigmoid(Function):
    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self.x = x
        # log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)) never overflows
        return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, gy: Any) -> Any:
        return gy * _sigmoid_array(-self.x)


def logsigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """``log(1 / (1 + exp(-x)))``, computed without overflow."""
    return LogSigmoid()(_float_input(input))


class Mish(Function):
    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        softplus_x = xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        self.x, self.th = x, xp.tanh(softplus_x)
        return x * self.th

    def backward(self, gy: Any) -> Any:
        th = self.th
        return gy * (th + self.x * _sigmoid_array(self.x) * (1 - th * th))


def mish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``x * tanh(softplus(x))`` (Misra, 2019)."""
    return Mish()(_float_input(input))


def glu(input: Tensor, dim: int = -1) -> Tensor:  # noqa: A002
    """Gated linear unit: ``a * sigmoid(b)`` where ``a, b`` are the halves of ``input`` along ``dim``;
    ``(*, 2n, *) -> (*, n, *)``."""
    if input.ndim == 0:
        raise ShapeError("glu does not support scalars because halving size must be even")
    (axis,) = normalize_dims(dim, input.ndim, "glu")
    if input.shape[axis] % 2:
        raise ShapeError(f"glu: halving dimension must be even, but dimension {axis} is size {input.shape[axis]} "
                         f"(input {tuple(input.shape)})")
    a, b = chunk(_float_input(input), 2, axis)
    return a * sigmoid(b)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:  # noqa: A002
    """``softmax(-x)`` along ``dim``. ``(*) -> (*)``."""
    input = _softmax_input(input, dtype)
    if input.ndim == 0:
        return Softmax(0)(-input.reshape(1)).reshape(())
    return Softmax(_softmax_axis(input, dim, "softmin"))(-input)


# in-place variants (torch.nn.functional.relu_ ...): the result is written into ``input``, as the
# in-place Tensor methods do, so a leaf that requires grad is refused under autograd


def relu_(input: Tensor) -> Tensor:  # noqa: A002
    return input._inplace(relu)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:  # noqa: A002
    return input._inplace(elu, alpha)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:  # noqa: A002
    return input._inplace(leaky_relu, negative_slope)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:  # noqa: A002
    return input._inplace(hardtanh, min_val, max_val)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:  # noqa: A002
    return input._inplace(lambda x: Threshold(threshold, value)(_float_input(x)))


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:  # noqa: A002
    return input._inplace(celu, alpha)


def selu_(input: Tensor) -> Tensor:  # noqa: A002
    return input._inplace(selu)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:  # noqa: A002
    return input._inplace(rrelu, lower, upper, training)
