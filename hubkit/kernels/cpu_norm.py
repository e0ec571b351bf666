"""CPU batch normalization: the statistics and the affine map in as few passes over the activation as possible.

``generic.batch_norm_forward`` (the reference, shared with cupy) makes seven passes and five temporaries the
size of the activation in training; on the CPU, eval-mode BatchNorm then cost more than the convolution
before it (bench/RESULTS.md). Here the normalisation and the affine map are one ``x * scale + shift`` per
channel, and training keeps the input ``x`` and the batch mean for backward instead of writing ``xhat``
(the same memory: nothing else holds the conv output ``x``, and backward recomputes ``xhat`` on the fly).

Forward returns ``(y, saved, stats)``; backward takes both back unchanged. ``saved``/``stats`` are either
``xhat`` and ``inv_std`` (C,), as from ``generic``, or ``x`` and ``(2, C)`` = ``(inv_std, mean)``, as from
here. With numba installed (``_jit.py``) each pass is one compiled loop split by channel (statistics) or by
(image, channel) row (the elementwise passes) over numba's threads (``*_parallel``), or over hubkit's pool
where those are not in use; without numba, numpy ufuncs with ``out=``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hubkit.kernels import _jit, generic
from hubkit.kernels._cpu_util import _numba_min_items
from hubkit.kernels._threads import parallel_for

# Channels (statistics) or images (elementwise passes) per thread get at least this many elements.
_PARALLEL_MIN_ELEMENTS = 1 << 16


def _per_item(total: int, items: int) -> int:
    return max(1, -(-_PARALLEL_MIN_ELEMENTS // max(total // max(items, 1), 1)))


def _rows(x3: np.ndarray, *per_channel: np.ndarray) -> tuple[np.ndarray, ...]:
    """``x3`` (N, C, L) as rows (N*C, L), with each per-channel vector repeated per image: the compiled
    passes split rows over the threads, so a batch of one image is split too."""
    n, c, length = x3.shape
    return (x3.reshape(n * c, length),) + tuple(np.tile(v, n) for v in per_channel)


def _affine(x3: np.ndarray, scale: np.ndarray, shift: np.ndarray, out: np.ndarray) -> None:
    """``out = x3 * scale[c] + shift[c]`` for ``x3`` (N, C, L), with ``scale``/``shift`` (C,) in x's dtype."""
    jit = _jit.compiled(x3.size)
    if jit is None:
        np.multiply(x3, scale[:, None], out=out)
        out += shift[:, None]
        return
    x2, a, b = _rows(x3, scale, shift)
    y2 = out.reshape(x2.shape)
    chunks = _numba_chunks(x2, streaming=True)
    if chunks:
        jit.scale_shift_parallel(x2, a, b, y2, chunks)
        return
    parallel_for(x2.shape[0], lambda r0, r1: jit.scale_shift(x2[r0:r1], a[r0:r1], b[r0:r1], y2[r0:r1]),
                 _per_item(x2.size, x2.shape[0]))  # fmt: skip


def _mean_var(x3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and biased variance of ``x3`` (N, C, L), in float64."""
    c = x3.shape[1]
    jit = _jit.compiled(x3.size)
    if jit is None:
        mean = x3.mean(axis=(0, 2))
        centered = x3 - mean[:, None]
        np.square(centered, out=centered)
        return mean.astype(np.float64), centered.mean(axis=(0, 2)).astype(np.float64)
    mean, var = np.empty(c), np.empty(c)
    chunks = _numba_chunks(x3.transpose(1, 0, 2))
    if chunks:
        jit.channel_mean_var_parallel(x3, mean, var, chunks)
    else:
        parallel_for(c, lambda c0, c1: jit.channel_mean_var(x3, mean, var, c0, c1), _per_item(x3.size, c))
    return mean, var


def _fusable(x: Any, *vectors: Any) -> bool:
    return (
        x.dtype in (np.float32, np.float64)
        and x.ndim >= 2
        and x.size > 0
        and all(v is None or (v.dtype == x.dtype and v.ndim == 1) for v in vectors)
    )


def batch_norm_forward(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    training: bool,
    momentum: float,
    eps: float,
    keep_xhat: bool,
) -> tuple[np.ndarray, Any, np.ndarray]:
    """Batch normalization of ``x`` (N, C, *) -> ``(y, saved, stats)`` (see the module docstring).

    Same semantics as :func:`hubkit.kernels.generic.batch_norm_forward`: training normalizes with the
    batch statistics (biased variance) and updates ``running_mean``/``running_var`` in place with torch's
    rule (unbiased variance); eval uses the running statistics. ``saved`` is None unless ``keep_xhat``.
    """
    if not _fusable(x, weight, bias):
        return generic.batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps,
                                          keep_xhat)  # fmt: skip
    n, c = x.shape[:2]
    x = np.ascontiguousarray(x)
    x3 = x.reshape(n, c, -1)
    if training:
        mean, var = _mean_var(x3)
        if running_mean is not None:
            count = x3.size // c
            running_mean *= 1 - momentum
            running_mean += (momentum * mean).astype(running_mean.dtype)
            running_var *= 1 - momentum
            running_var += (momentum * count / max(count - 1, 1) * var).astype(running_var.dtype)
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    inv_std64 = 1 / np.sqrt(var + eps)
    inv_std = inv_std64.astype(x.dtype)
    scale64 = inv_std64 if weight is None else inv_std64 * weight
    shift64 = -mean * scale64 if bias is None else bias - mean * scale64
    y = np.empty(x.shape, dtype=x.dtype)
    _affine(x3, scale64.astype(x.dtype), shift64.astype(x.dtype), y.reshape(x3.shape))
    if not keep_xhat:
        return y, None, inv_std
    return y, x, np.stack([inv_std, mean.astype(x.dtype)])


def batch_norm_backward(
    gy: np.ndarray,
    saved: Any,
    stats: np.ndarray,
    weight: np.ndarray | None,
    training: bool,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> tuple[Any, Any, Any]:
    """Gradients of :func:`batch_norm_forward` -> ``(gx, gweight, gbias)``, None where not needed."""
    if stats.ndim == 1:  # xhat and inv_std, from generic
        return generic.batch_norm_backward(gy, saved, stats, weight, training, need_x, need_w, need_b)
    x = saved
    inv_std, mean = stats[0], stats[1]
    n, c = gy.shape[:2]
    gy3 = np.ascontiguousarray(gy).reshape(n, c, -1)
    x3 = x.reshape(n, c, -1)
    count = gy3.size // c
    sums_needed = need_w or need_b or (need_x and training)
    gb64 = gxc64 = None
    if sums_needed:
        jit = _jit.compiled(gy3.size)
        if jit is None:
            gb64 = gy3.sum(axis=(0, 2), dtype=np.float64)
            centered = x3 - mean[:, None]
            np.multiply(centered, gy3, out=centered)
            gxc64 = centered.sum(axis=(0, 2), dtype=np.float64)
        else:
            gb64, gxc64 = np.empty(c), np.empty(c)
            mean64 = mean.astype(np.float64)
            chunks = _numba_chunks(gy3.transpose(1, 0, 2), 2)
            if chunks:
                jit.channel_grad_sums_parallel(gy3, x3, mean64, gb64, gxc64, chunks)
            else:
                parallel_for(c, lambda c0, c1: jit.channel_grad_sums(gy3, x3, mean64, gb64, gxc64, c0, c1),
                             _per_item(gy3.size, c))  # fmt: skip
    inv64 = inv_std.astype(np.float64)
    gw64 = None if gxc64 is None else gxc64 * inv64  # sum(gy * xhat)
    gx = None
    if need_x:
        scale64 = inv64 if weight is None else inv64 * weight
        gx = np.empty(gy.shape, dtype=gy.dtype)
        gx3 = gx.reshape(gy3.shape)
        if not training:
            zero = np.zeros(c, dtype=gy.dtype)
            _affine(gy3, scale64.astype(gy.dtype), zero, gx3)
        else:
            # gx = scale * (gy - gb/m - xhat * gw/m), xhat = (x - mean) * inv_std
            a = scale64
            b = scale64 * gb64 / count
            k = scale64 * gw64 * inv64 / count
            jit = _jit.compiled(gy3.size)
            if jit is None:
                np.multiply(gy3, a.astype(gy.dtype)[:, None], out=gx3)
                gx3 -= b.astype(gy.dtype)[:, None]
                centered = x3 - mean[:, None]
                centered *= k.astype(gy.dtype)[:, None]
                gx3 -= centered
            else:
                t = gy.dtype
                x2, m2, a2, b2, k2 = _rows(x3, mean, a.astype(t), b.astype(t), k.astype(t))
                gy2, gx2 = gy3.reshape(x2.shape), gx3.reshape(x2.shape)
                chunks = _numba_chunks(x2, 3, streaming=True)
                if chunks:
                    jit.batch_norm_input_grad_parallel(gy2, x2, m2, a2, b2, k2, gx2, chunks)
                    return _grads(gx, gw64, gb64, gy.dtype, need_w, need_b)
                parallel_for(x2.shape[0], lambda r0, r1: jit.batch_norm_input_grad(
                    gy2[r0:r1], x2[r0:r1], m2[r0:r1], a2[r0:r1], b2[r0:r1], k2[r0:r1], gx2[r0:r1]),
                    _per_item(x2.size, x2.shape[0]))  # fmt: skip
    return _grads(gx, gw64, gb64, gy.dtype, need_w, need_b)


def _grads(gx: Any, gw64: Any, gb64: Any, dtype: np.dtype, need_w: bool, need_b: bool) -> tuple[Any, Any, Any]:
    return gx, gw64.astype(dtype) if need_w else None, gb64.astype(dtype) if need_b else None


def channel_sum(g: np.ndarray) -> np.ndarray:
    """``g`` (N, C, *) summed over every axis but the channels: a convolution's bias gradient. One compiled pass
    per channel (float64 sums, channels split over the threads, so the result does not depend on their number)
    where numba is installed; numpy's sum over axes (0, 2, ...) was 3-4x slower (LeNet-5's layers)."""
    axes = (0,) + tuple(range(2, g.ndim))
    jit = _jit.compiled(g.size) if g.dtype in (np.float32, np.float64) and g.ndim >= 3 else None
    if jit is None:
        return g.sum(axis=axes)
    n, c = g.shape[:2]
    g3 = np.ascontiguousarray(g).reshape(n, c, -1)
    out = np.empty(c, dtype=np.float64)
    chunks = _numba_chunks(g3.transpose(1, 0, 2))
    if chunks:
        jit.channel_sums_parallel(g3, out, chunks)
    else:
        parallel_for(c, lambda c0, c1: jit.channel_sums(g3, out, c0, c1), _per_item(g3.size, c))
    return out.astype(g.dtype)


def _numba_chunks(items: np.ndarray, arrays: int = 1, streaming: bool = False) -> int:
    """Chunks for a compiled pass's parallel driver over the leading axis of ``items`` (rows, or channels of a
    channel-first view), each chunk reading ``arrays`` arrays like it (``_jit.parallel_chunks``), or 0: run
    the pass on hubkit's pool instead."""
    per_item = math.prod(items.shape[1:]) * items.itemsize * arrays
    return _jit.parallel_chunks(items.shape[0], _numba_min_items(per_item), items.nbytes * arrays, streaming)


def layer_norm_forward(
    x: np.ndarray, k: int, weight: np.ndarray | None, bias: np.ndarray | None, eps: float, training: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None:
    """Layer norm of ``x`` over its last ``k`` dims in one compiled pass per row block -> ``(y, xhat, rstd)``
    (``xhat``/``rstd`` with rstd's shape ``x.shape[:-k] + (1,)*k``, only when ``training``), or None when the
    compiled kernels are not in use (the caller then runs the numpy reference in ``nn/functional``).

    Rows are split over hubkit's threads; each row's statistics are float64 sums, so results do not depend on
    the thread count. Transformer encoders normalise (tokens, 384-1024) activations after every sub-layer:
    the numpy version's six passes and four temporaries were as slow as the GEMM before them at MiniLM's size."""
    if not _fusable(x) or x.ndim < k:
        return None
    jit = _jit.compiled(x.size)
    if jit is None:
        return None
    d = math.prod(x.shape[x.ndim - k :])
    w = np.empty(0, x.dtype) if weight is None else weight.reshape(-1)
    b = np.empty(0, x.dtype) if bias is None else bias.reshape(-1)
    if w.dtype != x.dtype or b.dtype != x.dtype or w.size not in (0, d) or b.size not in (0, d):
        return None
    x2 = np.ascontiguousarray(x).reshape(-1, d)
    rows = x2.shape[0]
    y = np.empty(x.shape, dtype=x.dtype)
    y2 = y.reshape(rows, d)
    xhat = np.empty(x.shape, dtype=x.dtype) if training else np.empty((0, d), dtype=x.dtype)
    xhat2 = xhat.reshape(-1, d)
    rstd = np.empty(rows, dtype=x.dtype)
    w, b = np.ascontiguousarray(w), np.ascontiguousarray(b)
    chunks = _numba_chunks(x2, 2 + training, streaming=True)
    if chunks:
        jit.layer_norm_rows_parallel(x2, w, b, eps, y2, xhat2, rstd, chunks)
    else:
        parallel_for(rows, lambda r0, r1: jit.layer_norm_rows(x2, w, b, eps, y2, xhat2, rstd, r0, r1),
                     _per_item(x2.size, rows))  # fmt: skip
    if not training:
        return y, None, None
    return y, xhat, rstd.reshape(x.shape[: x.ndim - k] + (1,) * k)


def group_norm_forward(
    x: np.ndarray, groups: int, weight: np.ndarray | None, bias: np.ndarray | None, eps: float, training: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray] | None:
    """Group norm of ``x`` (N, C, *) -> ``(y, xhat or None, inv_std (N, G, 1))``: one compiled kernel per block
    of (image, group) rows, statistics and the per-channel affine map together, or None when the compiled
    kernels are not in use (the numpy reference in ``nn/functional`` runs then).

    wav2vec 2.0's feature encoder normalises a (1, 512, 50,000) activation per channel: the numpy passes took a
    seventh of a 10-second clip's inference."""
    if not _fusable(x, weight, bias) or x.shape[1] % groups:
        return None
    jit = _jit.compiled(x.size)
    if jit is None:
        return None
    n, c = x.shape[:2]
    rows, cg = n * groups, c // groups
    x3 = np.ascontiguousarray(x).reshape(rows, cg, -1)
    y = np.empty(x.shape, dtype=x.dtype)
    xhat = np.empty(x.shape, dtype=x.dtype) if training else None
    none = np.empty((0, 0, 0), dtype=x.dtype)
    w2 = np.empty((0, 0), x.dtype) if weight is None else np.ascontiguousarray(weight).reshape(groups, cg)
    b2 = np.empty((0, 0), x.dtype) if bias is None else np.ascontiguousarray(bias).reshape(groups, cg)
    rstd = np.empty(rows, dtype=x.dtype)
    y3, xhat3 = y.reshape(x3.shape), (none if xhat is None else xhat.reshape(x3.shape))
    chunks = _numba_chunks(x3, 2 + training, streaming=True)
    if chunks:
        jit.group_norm_rows_parallel(x3, groups, w2, b2, eps, y3, xhat3, rstd, chunks)
    else:
        parallel_for(rows, lambda r0, r1: jit.group_norm_rows(x3, groups, w2, b2, eps, y3, xhat3, rstd, r0, r1),
                     _per_item(x3.size, rows))  # fmt: skip
    return y, (xhat if training else None), rstd.reshape(n, groups, 1)
