"""Kernels written once for any array module (numpy or cupy): batch normalization and optimizer updates.

``cpu.py`` re-exports these as its own. ``cuda.py`` has fused single-launch versions of the same
functions for float32/float64 and falls back to these for other dtypes, so both devices share one
reference for the arithmetic. Every function takes and returns raw arrays and updates in place where
its docstring says so.
"""

from __future__ import annotations

import math
from typing import Any

from hubkit._backend import get_array_module


def channel_shape(x: Any) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector over ``x`` (N, C, *spatial)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def channel_axes(x: Any) -> tuple[int, ...]:
    """Every axis of ``x`` (N, C, *spatial) except the channel axis."""
    return (0,) + tuple(range(2, x.ndim))


def batch_norm_forward(
    x: Any,
    weight: Any,
    bias: Any,
    running_mean: Any,
    running_var: Any,
    training: bool,
    momentum: float,
    eps: float,
    keep_xhat: bool,
) -> tuple[Any, Any, Any]:
    """Batch normalization of ``x`` (N, C, *) -> ``(y, xhat or None, inv_std)``; ``inv_std`` is (C,).

    Training uses the batch's statistics (biased variance) and, when ``running_mean``/``running_var``
    are arrays, updates them in place with torch's rule (unbiased variance). Eval uses the running
    statistics. ``weight``/``bias`` are (C,) arrays or None.
    """
    xp = get_array_module(x)
    shape = channel_shape(x)
    axes = channel_axes(x)
    if training:
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axis=axes, keepdims=True)
        if running_mean is not None:
            count = x.size // x.shape[1]
            running_mean *= 1 - momentum
            running_mean += momentum * mean.reshape(-1).astype(running_mean.dtype)
            unbiased = var.reshape(-1) * (count / max(count - 1, 1))
            running_var *= 1 - momentum
            running_var += momentum * unbiased.astype(running_var.dtype)
    else:
        mean = running_mean.reshape(shape).astype(x.dtype, copy=False)
        var = running_var.reshape(shape).astype(x.dtype, copy=False)
        centered = x - mean
    inv_std = 1 / xp.sqrt(var + x.dtype.type(eps))
    xhat = centered * inv_std
    y = xhat if weight is None else xhat * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y, (xhat if keep_xhat else None), inv_std.reshape(-1)


def batch_norm_backward(
    gy: Any, xhat: Any, inv_std: Any, weight: Any, training: bool, need_x: bool, need_w: bool, need_b: bool
) -> tuple[Any, Any, Any]:
    """Gradients of :func:`batch_norm_forward` -> ``(gx, gweight, gbias)``, None where not needed.

    With ``gb = sum(gy)`` and ``gw = sum(gy * xhat)`` over all but the channel axis and ``m`` elements
    per channel, training's input gradient is ``weight * inv_std * (gy - gb/m - xhat * gw/m)``: the two
    per-channel sums serve the parameter gradients and the input gradient alike.
    """
    shape = channel_shape(gy)
    axes = channel_axes(gy)
    scale = inv_std if weight is None else inv_std * weight
    scale = scale.reshape(shape)
    gb = gy.sum(axis=axes) if need_b or (need_x and training) else None
    gw = (gy * xhat).sum(axis=axes) if need_w or (need_x and training) else None
    gx = None
    if need_x:
        if training:
            inv_count = gy.dtype.type(gy.shape[1] / gy.size)
            gx = gy - (gb * inv_count).reshape(shape)
            gx -= xhat * (gw * inv_count).reshape(shape)
            gx *= scale
        else:
            gx = gy * scale
    return gx, (gw if need_w else None), (gb if need_b else None)


def sgd_update(
    p: Any,
    g: Any,
    buf: Any,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> Any:
    """One SGD step on ``p`` in place (torch's rule; see ``hubkit.optim.SGD``). ``buf`` is the momentum
    buffer, None before the first step; returns the buffer to keep (None without momentum)."""
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum != 0:
        if buf is None:
            buf = g.copy()
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    p -= lr * g
    return buf


def adam_update(
    p: Any,
    g: Any,
    exp_avg: Any,
    exp_avg_sq: Any,
    max_exp_avg_sq: Any,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    maximize: bool,
) -> None:
    """One Adam/AdamW step on ``p`` and its moment buffers, in place (see ``hubkit.optim.Adam``).
    ``max_exp_avg_sq`` is the amsgrad buffer, or None without amsgrad; ``step`` counts from 1."""
    xp = get_array_module(p)
    if maximize:
        g = -g
    if weight_decay != 0:
        if decoupled:
            p *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * p
    exp_avg *= beta1
    exp_avg += (1 - beta1) * g
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * (g * g)
    if max_exp_avg_sq is not None:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    else:
        second = exp_avg_sq
    step_size = lr / (1 - beta1**step)
    denom = xp.sqrt(second)
    denom /= math.sqrt(1 - beta2**step)
    denom += eps
    update = exp_avg / denom
    update *= step_size
    p -= update
