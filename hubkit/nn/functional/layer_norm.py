"""Layer normalization and RMS normalization over the trailing dims."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ShapeError
from hubkit.kernels import cpu_norm
from hubkit.tensor import Tensor


class LayerNorm(Function):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` with statistics over the last ``k`` dims."""

    def __init__(self, k: int, eps: float) -> None:
        self.k, self.eps = k, eps

    def forward(self, x: Any, weight: Any, bias: Any) -> Any:
        xp = get_array_module(x)
        axes = tuple(range(x.ndim - self.k, x.ndim))
        if xp is np:
            training = any(self.needs_input_grad)
            fused = cpu_norm.layer_norm_forward(x, self.k, weight, bias, self.eps, training)
            if fused is not None:
                y, self.xhat, self.rstd = fused
                self.axes, self.weight = axes, weight
                return y
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axis=axes, keepdims=True)
        rstd = 1 / xp.sqrt(var + x.dtype.type(self.eps))
        xhat = centered * rstd
        self.axes, self.xhat, self.rstd, self.weight = axes, xhat, rstd, weight
        y = xhat if weight is None else xhat * weight
        return y if bias is None else y + bias

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        axes, xhat = self.axes, self.xhat
        lead = tuple(range(gy.ndim - self.k))
        gw = (gy * xhat).sum(axis=lead) if self.needs_input_grad[1] else None
        gb = gy.sum(axis=lead) if self.needs_input_grad[2] else None
        gx = None
        if self.needs_input_grad[0]:
            g = gy if self.weight is None else gy * self.weight
            gx = self.rstd * (
                g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True)
            )
        return gx, gw, gb


def layer_norm(
    input: Tensor,  # noqa: A002
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` dims (biased variance), then scale and shift.

    ``input: (*, *normalized_shape)``, ``weight``/``bias: normalized_shape`` -> same shape as ``input``.
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(int(n) for n in normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise ShapeError(
            f"layer_norm: input {tuple(input.shape)} must end with normalized_shape {shape}"
        )
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != shape:
            raise ShapeError(f"layer_norm: {name} has shape {tuple(p.shape)}, expected normalized_shape {shape}")
    return LayerNorm(k, eps)(input, weight, bias)


def rms_norm(
    input: Tensor,  # noqa: A002
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    eps: float | None = None,
) -> Tensor:
    """Root-mean-square normalization over the trailing ``normalized_shape`` dims (Zhang & Sennrich, 2019):
    ``y = x / sqrt(mean(x**2) + eps) * weight``; ``eps`` defaults to the input dtype's machine epsilon.

    ``input: (*, *normalized_shape)``, ``weight: normalized_shape`` -> same shape as ``input``. Built from
    differentiable ops (five elementwise passes; autograd's backward is as fast as a fused one would be here).
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(int(n) for n in normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise ShapeError(f"rms_norm: input {tuple(input.shape)} must end with normalized_shape {shape}")
    if weight is not None and tuple(weight.shape) != shape:
        raise ShapeError(f"rms_norm: weight has shape {tuple(weight.shape)}, expected normalized_shape {shape}")
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    dims = tuple(range(input.ndim - k, input.ndim))
    out = input * ((input * input).mean(dim=dims, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight
