"""Normalization: batch_norm, group_norm, instance_norm, local_response_norm, normalize, cosine_similarity.

The statistics ops are fused Functions (one forward, one closed-form backward) rather than chains of
primitives: a training step through a BatchNorm would otherwise record a dozen nodes and temporaries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hubkit import kernels
from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, ShapeError
from hubkit.kernels import cpu_norm
from hubkit.kernels.generic import channel_axes, channel_shape
from hubkit.ops.shape import pad
from hubkit.tensor import Tensor


def _normalized_backward(gxhat: Any, xhat: Any, inv_std: Any, axes: tuple[int, ...]) -> Any:
    """Input gradient of ``xhat = (x - mean(x)) * inv_std`` with statistics over ``axes``."""
    mean_g = gxhat.mean(axis=axes, keepdims=True)
    mean_gx = (gxhat * xhat).mean(axis=axes, keepdims=True)
    return (gxhat - mean_g - xhat * mean_gx) * inv_std


class BatchNorm(Function):
    """``x`` (N, C, *), ``weight``/``bias`` (C,) or None -> (N, C, *). Training uses batch statistics
    (and updates the running ones in place); eval uses the running statistics. The arithmetic is in
    ``hubkit.kernels.generic`` (fused on the GPU)."""

    def __init__(self, running_mean: Any, running_var: Any, training: bool, momentum: float, eps: float) -> None:
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x: Any, weight: Any, bias: Any) -> Any:
        y, self.xhat, self.inv_std = kernels.batch_norm_forward(
            x, weight, bias, self.running_mean, self.running_var, self.training, self.momentum, self.eps,
            any(self.needs_input_grad),
        )  # fmt: skip
        self.weight = weight
        self.running_mean = self.running_var = None  # never keep the module's buffers alive
        return y

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        return kernels.batch_norm_backward(gy, self.xhat, self.inv_std, self.weight, self.training,
                                           *self.needs_input_grad)  # fmt: skip


class GroupNorm(Function):
    """``x`` (N, C, *) normalized over each group of C/G channels (and all spatial positions), then a
    per-channel affine ``weight``/``bias`` (C,) or None."""

    def __init__(self, num_groups: int, eps: float) -> None:
        self.num_groups, self.eps = num_groups, eps

    def forward(self, x: Any, weight: Any, bias: Any) -> Any:
        xp = get_array_module(x)
        self.weight = weight
        if xp is np:
            fused = cpu_norm.group_norm_forward(x, self.num_groups, weight, bias, self.eps, any(self.needs_input_grad))
            if fused is not None:
                y, self.xhat, self.inv_std = fused
                return y
        n = x.shape[0]
        xg = x.reshape(n, self.num_groups, -1)
        mean = xg.mean(axis=2, keepdims=True)
        centered = xg - mean
        var = (centered * centered).mean(axis=2, keepdims=True)
        self.inv_std = 1 / xp.sqrt(var + x.dtype.type(self.eps))
        xhat = (centered * self.inv_std).reshape(x.shape)
        self.xhat = xhat if any(self.needs_input_grad) else None
        self.weight = weight
        shape = channel_shape(x)
        y = xhat if weight is None else xhat * weight.reshape(shape)
        return y if bias is None else y + bias.reshape(shape)

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        need_x, need_w, need_b = self.needs_input_grad
        shape = channel_shape(gy)
        axes = channel_axes(gy)
        gx = gw = gb = None
        if need_x:
            gxhat = gy if self.weight is None else gy * self.weight.reshape(shape)
            n = gy.shape[0]
            gx = _normalized_backward(
                gxhat.reshape(n, self.num_groups, -1), self.xhat.reshape(n, self.num_groups, -1), self.inv_std, (2,)
            ).reshape(gy.shape)
        if need_w:
            gw = (gy * self.xhat).sum(axis=axes)
        if need_b:
            gb = gy.sum(axis=axes)
        return gx, gw, gb


def _check_channel_vector(op: str, name: str, v: Tensor | None, c: int, x: Tensor) -> None:
    if v is not None and v.shape != (c,):
        raise ShapeError(f"{op}: {name} has shape {tuple(v.shape)}, expected ({c},) for input {tuple(x.shape)}")


def batch_norm(
    input: Tensor,  # noqa: A002  (PyTorch's name)
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalization, ``torch.nn.functional.batch_norm``: ``input`` (N, C, *) -> same shape.

    Training normalizes with the batch mean and biased variance over (N, *) and, when running stats are
    given, updates them in place: ``running = (1 - momentum) * running + momentum * batch_stat`` (the
    variance term unbiased). Eval normalizes with ``running_mean``/``running_var``.
    """
    op = "batch_norm"
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected an input (N, C, *) with at least 2 dims, got {tuple(input.shape)}")
    c = input.shape[1]
    for name, v in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):  # fmt: skip
        _check_channel_vector(op, name, v, c, input)
    if (running_mean is None) != (running_var is None):
        raise ArgumentError("batch_norm: pass both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ArgumentError("batch_norm: running_mean and running_var are required when training=False")
    if training and input.numel() // c <= 1:
        raise ShapeError(
            f"batch_norm: expected more than 1 value per channel when training, got input {tuple(input.shape)}"
        )
    rm = None if running_mean is None else running_mean.array
    rv = None if running_var is None else running_var.array
    return BatchNorm(rm, rv, bool(training), float(momentum), float(eps))(input, weight, bias)


def group_norm(
    input: Tensor,  # noqa: A002
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Group normalization, ``torch.nn.functional.group_norm``: ``input`` (N, C, *) -> same shape; each
    group of C/num_groups channels is normalized over its channels and positions (biased variance)."""
    op = "group_norm"
    if input.ndim < 2:
        raise ShapeError(f"{op}: expected an input (N, C, *) with at least 2 dims, got {tuple(input.shape)}")
    c = input.shape[1]
    if not isinstance(num_groups, int) or num_groups < 1 or c % num_groups:
        raise ArgumentError(f"{op}: num_groups must divide the {c} channels of input {tuple(input.shape)}, "
                            f"got {num_groups!r}")  # fmt: skip
    _check_channel_vector(op, "weight", weight, c, input)
    _check_channel_vector(op, "bias", bias, c, input)
    return GroupNorm(num_groups, float(eps))(input, weight, bias)


def instance_norm(
    input: Tensor,  # noqa: A002
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Instance normalization, ``torch.nn.functional.instance_norm``: ``input`` (N, C, *) -> same shape.

    Each (sample, channel) plane is normalized over its positions. With ``use_input_stats`` and running
    stats given, those are updated in place with the batch average of the per-instance statistics;
    without ``use_input_stats`` the running statistics are used, as in batch_norm's eval mode.
    """
    op = "instance_norm"
    if input.ndim < 3:
        raise ShapeError(f"{op}: expected an input (N, C, *) with spatial dims, got {tuple(input.shape)}")
    c = input.shape[1]
    for name, v in (("running_mean", running_mean), ("running_var", running_var)):
        _check_channel_vector(op, name, v, c, input)
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    if running_mean is not None and running_var is not None:
        x = input.array
        axes = tuple(range(2, x.ndim))
        count = x[0, 0].size
        mean = x.mean(axis=axes)
        var = x.var(axis=axes) * (count / max(count - 1, 1))
        running_mean.array *= 1 - momentum
        running_mean.array += momentum * mean.mean(axis=0).astype(running_mean.dtype)
        running_var.array *= 1 - momentum
        running_var.array += momentum * var.mean(axis=0).astype(running_var.dtype)
    return group_norm(input, c, weight, bias, eps)


class Normalize(Function):
    """``x / max(||x||_p, eps)`` along ``dim``."""

    def __init__(self, p: float, dim: int, eps: float) -> None:
        self.p, self.dim, self.eps = p, dim, eps

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        a = xp.abs(x)
        if self.p == 2:
            norm = xp.sqrt((x * x).sum(axis=self.dim, keepdims=True))
        elif self.p == float("inf"):
            norm = a.max(axis=self.dim, keepdims=True)
        else:
            norm = (a ** x.dtype.type(self.p)).sum(axis=self.dim, keepdims=True) ** x.dtype.type(1 / self.p)
        denom = xp.maximum(norm, x.dtype.type(self.eps))
        y = x / denom
        self.x, self.norm, self.denom = x, norm, denom
        return y

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        x, norm, denom = self.x, self.norm, self.denom
        gx = gy / denom
        # where the norm was not clamped, y = x / ||x||: subtract the part that flows through the norm
        coeff = (gy * x).sum(axis=self.dim, keepdims=True) / (denom * denom)
        coeff = xp.where(norm > self.eps, coeff, 0)
        if self.p == 2:
            dnorm = x / xp.where(norm > 0, norm, 1)
        elif self.p == float("inf"):
            a = xp.abs(x)
            winner = a == norm
            dnorm = xp.sign(x) * winner / xp.maximum(winner.sum(axis=self.dim, keepdims=True), 1)
        else:
            safe = xp.where(norm > 0, norm, 1)
            dnorm = xp.sign(x) * (xp.abs(x) / safe) ** x.dtype.type(self.p - 1)
        return gx - coeff * dnorm


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:  # noqa: A002
    """``input / max(||input||_p, eps)`` along ``dim``, ``torch.nn.functional.normalize``; same shape."""
    if input.ndim == 0:
        raise ShapeError("normalize: expected an input with at least 1 dim, got a scalar")
    if not -input.ndim <= dim < input.ndim:
        raise ArgumentError(f"normalize: dim {dim} is out of range for input {tuple(input.shape)}")
    if not p > 0:
        raise ArgumentError(f"normalize: p must be positive, got {p!r}")
    return Normalize(float(p), dim % input.ndim, float(eps))(input)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine similarity along ``dim``, ``torch.nn.functional.cosine_similarity``: the inputs broadcast
    together, ``dim`` is reduced: ``sum(x1/max(||x1||, eps) * x2/max(||x2||, eps), dim)``."""
    ndim = max(x1.ndim, x2.ndim)
    if not -ndim <= dim < ndim:
        raise ArgumentError(f"cosine_similarity: dim {dim} is out of range for shapes {tuple(x1.shape)} and "
                            f"{tuple(x2.shape)}")  # fmt: skip
    d = dim % ndim
    a = x1.reshape((1,) * (ndim - x1.ndim) + tuple(x1.shape))
    b = x2.reshape((1,) * (ndim - x2.ndim) + tuple(x2.shape))
    return (normalize(a, 2.0, d, eps) * normalize(b, 2.0, d, eps)).sum(dim=d)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,  # noqa: A002
                        k: float = 1.0) -> Tensor:
    """Local response normalization across channels, ``torch.nn.functional.local_response_norm``:
    ``input`` (N, C, *) -> same shape, ``x / (k + alpha * mean(x^2 over a window of size channels))^beta``.

    The window around channel c spans ``c - size // 2 .. c + (size - 1) // 2``, zero-padded at the
    ends and always divided by ``size`` (torch's average pool with padding counted).
    """
    if input.ndim < 3:
        raise ShapeError(f"local_response_norm: expected an input (N, C, *) with 3 or more dims, got "
                         f"{tuple(input.shape)}")
    if not isinstance(size, int) or size < 1:
        raise ArgumentError(f"local_response_norm: size must be a positive int, got {size!r}")
    if input.numel() == 0:
        return input
    n, c = input.shape[:2]
    squares = (input * input).reshape(n, c, -1)
    padded = pad(squares, (0, 0, size // 2, (size - 1) // 2))
    # a sum of `size` shifted slices: exact (no cumsum cancellation), and size is small (5 in AlexNet)
    window = padded[:, 0:c]
    for offset in range(1, size):
        window = window + padded[:, offset:offset + c]
    div = (window * (alpha / size) + k) ** beta
    return input / div.reshape(input.shape)
