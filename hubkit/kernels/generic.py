"""Kernels written once for any array module (numpy or cupy): batch normalization, optimizer updates and
scaled dot-product attention.

``cpu.py`` re-exports these as its own. ``cuda.py`` has fused single-launch versions of the same
functions for float32/float64 and falls back to these for other dtypes, so both devices share one
reference for the arithmetic. Every function takes and returns raw arrays and updates in place where
its docstring says so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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


# ---------------------------------------------------------------- scaled dot-product attention
# Every product and softmax of attention is independent per batch entry (per sentence and head), so the work
# is done by blocks of the batch: on the CPU the blocks run on hubkit's pool (a block's scores stay in cache
# from the first product to the second), on the GPU as one block. The results are the same for any split.
# Blocks cut one batch axis (the longest); an operand broadcast along that axis is read whole by every block.

# Below this many multiply-adds a block is not worth a pool thread's hand-off (about 0.1 ms).
_ATTENTION_BLOCK_MIN_MACS = 1 << 21

Block = tuple[int, int, int] | None  # (axis, start, stop) of the batch, or None: all of it


def _batch_part(x: Any, block: Block, batch_dims: int) -> Any:
    """The part of ``x`` (..., A, B), broadcast against a batch of ``batch_dims`` axes, that ``block`` reads."""
    if block is None:
        return x
    axis, start, stop = block
    axis -= batch_dims - max(x.ndim - 2, 0)  # x's own axis, counted from the right like broadcasting
    if axis < 0 or x.shape[axis] == 1:
        return x
    return x[(slice(None),) * axis + (slice(start, stop),)]


def _by_blocks(batch: tuple[int, ...], macs_per_entry: int, body: Any, split: Any) -> None:
    """``body(block)`` over the whole batch: once (``split`` None, or no batch axes), or over ranges of the
    batch's longest axis with ``split(n, run, min_items)`` (``_threads.parallel_for``)."""
    if split is None or not batch:
        body(None)
        return
    axis = max(range(len(batch)), key=lambda i: (batch[i], -i))
    per_item = macs_per_entry * (math.prod(batch) // max(batch[axis], 1))
    min_items = -(-_ATTENTION_BLOCK_MIN_MACS // max(per_item, 1))
    split(batch[axis], lambda start, stop: body((axis, start, stop)), min_items)


def scores_softmax_(scores: Any, scale: float, mask: Any, keep: Any) -> None:
    """Attention's weights from its scores, in place: ``scores = softmax(scores * scale + mask)`` over the last
    axis, with the positions where ``keep`` is False weighing exactly 0 (a row with none left gives zeros).
    ``mask`` (scores' dtype) and ``keep`` (bool) broadcast to ``scores``, or are None."""
    xp = get_array_module(scores)
    if mask is None and keep is None:
        softmax_rows_(scores, scale)
        return
    scores *= scores.dtype.type(scale)
    if mask is not None:
        scores += mask
    if keep is not None:
        xp.copyto(scores, -xp.inf, where=~keep)
    softmax_rows_(scores, 1.0)


def softmax_rows_(scores: Any, scale: float = 1.0) -> None:
    """``scores = softmax(scores * scale)`` over the last axis, in place; a row of only ``-inf`` gives zeros
    (PyTorch's safe softmax)."""
    xp = get_array_module(scores)
    if scale != 1.0:
        scores *= scores.dtype.type(scale)
    top = scores.max(axis=-1, keepdims=True)
    top[~xp.isfinite(top)] = 0
    scores -= top
    xp.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    total[total <= 0] = 1
    scores /= total


def _mm(xp: Any, a: Any, b: Any, out: Any) -> Any:
    """``xp.matmul(a, b, out=out)``. Attention's products stay on numpy's BLAS where MKL is installed: their
    matrices are small (L x E per head) and their head axes do not merge into one batch stride, and MKL took
    2-2.5x longer on MiniLM's (32 x 12 heads of 48 x 32 @ 32 x 48 on two threads: 4.7 ms against 1.7)."""
    return xp.matmul(a, b, out=out)


def attention_forward(
    q: Any,
    k: Any,
    v: Any,
    scale: float,
    mask: Any,
    keep: Any,
    dropout_keep: Any,
    dropout_p: float,
    split: Any = None,
    softmax: Any = scores_softmax_,
) -> tuple[Any, Any, Any]:
    """``softmax(q @ k^T * scale + mask) @ v`` -> ``(out, attn, dropped)``.

    ``q`` (..., L, E), ``k`` (..., S, E), ``v`` (..., S, Ev) of one dtype; ``mask`` (float, q's dtype) and
    ``keep`` (bool: False positions may not be attended to) broadcast to (..., L, S), or None; ``dropout_keep``
    (..., L, S) the dropout draw (1 kept, 0 dropped) or None. ``attn`` (batch..., L, S) is the softmax, over the
    batch shape every operand broadcasts to; ``dropped`` the weights after dropout (``attn`` itself without).
    ``split`` runs the blocks in parallel (see :func:`_by_blocks`); ``softmax`` is :func:`scores_softmax_` or a
    faster kernel of the same contract."""
    xp = get_array_module(q)
    dims = [x.shape[:-2] for x in (q, k, v, mask, keep, dropout_keep) if x is not None and x.ndim > 2]
    batch = np.broadcast_shapes(*dims) if dims else ()
    length, source, width = q.shape[-2], k.shape[-2], v.shape[-1]
    t = q.dtype.type
    attn = xp.empty(batch + (length, source), dtype=q.dtype)
    dropped = attn if dropout_keep is None else xp.empty_like(attn)
    out = xp.empty(batch + (length, width), dtype=q.dtype)
    nb = len(batch)

    def body(block: Block) -> None:
        whole = _batch_part(attn, block, nb)
        _mm(xp, _batch_part(q, block, nb), xp.swapaxes(_batch_part(k, block, nb), -1, -2), whole)
        softmax(whole, scale, None if mask is None else _batch_part(mask, block, nb),
                None if keep is None else _batch_part(keep, block, nb))  # fmt: skip
        weights = whole
        if dropout_keep is not None:
            weights = _batch_part(dropped, block, nb)
            xp.multiply(whole, _batch_part(dropout_keep, block, nb) / t(1 - dropout_p), out=weights)
        _mm(xp, weights, _batch_part(v, block, nb), _batch_part(out, block, nb))

    _by_blocks(batch, length * source * (q.shape[-1] + width), body, split)
    return out, attn, dropped


def attention_backward(
    gy: Any,
    q: Any,
    k: Any,
    v: Any,
    scale: float,
    attn: Any,
    dropped: Any,
    dropout_keep: Any,
    dropout_p: float,
    needs: tuple[bool, bool, bool, bool],
    split: Any = None,
) -> tuple[Any, Any, Any, Any]:
    """Gradients ``(gq, gk, gv, gmask)`` of :func:`attention_forward` from the output gradient ``gy``, each None
    where ``needs`` (q, k, v, mask) says it is not wanted; each has the full batch shape of ``attn`` (the caller
    sums over broadcast axes)."""
    xp = get_array_module(gy)
    need_q, need_k, need_v, need_mask = needs
    batch = attn.shape[:-2]
    t = gy.dtype.type

    def full(x: Any) -> Any:
        return xp.empty(batch + x.shape[-2:], dtype=gy.dtype)

    gq, gk, gv = (full(x) if need else None for x, need in ((q, need_q), (k, need_k), (v, need_v)))
    gmask = xp.empty_like(attn) if need_mask else None
    nb = len(batch)

    def body(block: Block) -> None:
        g_out = _batch_part(gy, block, nb)
        if need_v:
            _mm(xp, xp.swapaxes(_batch_part(dropped, block, nb), -1, -2), g_out, _batch_part(gv, block, nb))
        if not (need_q or need_k or need_mask):
            return
        g = _mm(xp, g_out, xp.swapaxes(_batch_part(v, block, nb), -1, -2), None)
        if dropout_keep is not None:
            g *= _batch_part(dropout_keep, block, nb) / t(1 - dropout_p)
        weights = _batch_part(attn, block, nb)
        g -= (g * weights).sum(axis=-1, keepdims=True)
        g *= weights  # the softmax's backward: attn * (g - sum(g * attn))
        if need_mask:
            _batch_part(gmask, block, nb)[...] = g
        g *= t(scale)
        if need_q:
            _mm(xp, g, _batch_part(k, block, nb), _batch_part(gq, block, nb))
        if need_k:
            _mm(xp, xp.swapaxes(g, -1, -2), _batch_part(q, block, nb), _batch_part(gk, block, nb))

    _by_blocks(batch, q.shape[-2] * k.shape[-2] * (2 * q.shape[-1] + 2 * v.shape[-1]), body, split)
    return gq, gk, gv, gmask
