"""CPU elementwise kernels for the activations that dominate CNN and transformer steps: clamp (ReLU, ReLU6,
hardtanh) and exact (erf) GELU, forward and backward; and the SGD update.

Each is one compiled pass (``_jit_kernels.py``) split over hubkit's threads in contiguous ranges of the
flattened array, or, without numba, the numpy reference: a couple of ufunc passes (GELU: the erf series in
``ops/elementwise.py``). The ops in ``ops/activation.py`` call these for numpy arrays only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hubkit.kernels import _jit, generic
from hubkit.kernels._threads import parallel_for

# Each thread gets at least this many elements: below it the hand-off costs more than the pass.
_PARALLEL_MIN_ELEMENTS = 1 << 16


def _compiled(*arrays: np.ndarray) -> Any:
    if all(a.dtype in (np.float32, np.float64) for a in arrays):
        return _jit.compiled(arrays[0].size)
    return None


def _flat(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1)


def _split(n: int, body: Callable[[int, int], None], parallel: Callable[[int], None] | None = None) -> None:
    """``body(start, stop)`` over contiguous ranges of ``n`` elements on hubkit's pool, or, when the kernel has a
    parallel driver and numba's threads are usable for a streaming job, ``parallel(chunks)`` once
    (``_jit.parallel_chunks``)."""
    chunks = _jit.parallel_chunks(n, _PARALLEL_MIN_ELEMENTS, streaming=True) if parallel is not None else 0
    if chunks:
        parallel(chunks)
    else:
        parallel_for(n, body, _PARALLEL_MIN_ELEMENTS)


def add(x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """``x + y`` for two C-ordered float arrays of one shape and dtype, split over numba's threads; None where that
    does not apply (then numpy's single-threaded ufunc runs): a transformer's residual adds, 0.4M floats each, took
    113 us on one core against torch's 31 us on two, and left half the rows in the wrong core's cache for the
    row-split LayerNorm after them."""
    if x.dtype != y.dtype or x.shape != y.shape or not (x.flags.c_contiguous and y.flags.c_contiguous):
        return None
    jit = _compiled(x, y)
    if jit is None:
        return None
    chunks = _jit.parallel_chunks(x.size, _PARALLEL_MIN_ELEMENTS, 3 * x.nbytes, streaming=True)
    if not chunks:
        return None
    out = np.empty(x.shape, dtype=x.dtype)
    jit.add_parallel(x.reshape(-1), y.reshape(-1), out.reshape(-1), chunks)
    return out


def clamp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``min(max(x, lo), hi)`` elementwise, a new array of x's shape and dtype (NaN stays NaN)."""
    if x.dtype.kind in "iu":  # integer tensors (relu of an index map): whole bounds, an infinite one left out
        bounds = [None if math.isinf(v) else int(math.ceil(v) if i == 0 else math.floor(v))
                  for i, v in enumerate((lo, hi))]  # fmt: skip
        return np.clip(x, *bounds)
    jit = _compiled(x)
    t = x.dtype.type
    if jit is None:
        return np.clip(x, t(lo), t(hi))
    xf = _flat(x)
    y = np.empty(x.shape, dtype=x.dtype)
    yf = y.reshape(-1)
    _split(xf.size, lambda a, b: jit.clamp(xf[a:b], t(lo), t(hi), yf[a:b]),
           lambda chunks: jit.clamp_parallel(xf, t(lo), t(hi), yf, chunks))  # fmt: skip
    return y


def clamp_backward(gy: np.ndarray, y: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Gradient of :func:`clamp` from its output ``y``: ``gy`` where ``lo < y < hi``, else 0."""
    jit = _compiled(gy, y)
    t = gy.dtype.type
    if jit is None or gy.dtype != y.dtype:
        inside = y > t(lo) if hi == float("inf") else (y > t(lo)) & (y < t(hi))
        return gy * inside
    gyf, yf = _flat(gy), _flat(y)
    gx = np.empty(gy.shape, dtype=gy.dtype)
    gxf = gx.reshape(-1)
    _split(gyf.size, lambda a, b: jit.clamp_backward(gyf[a:b], yf[a:b], t(lo), t(hi), gxf[a:b]),
           lambda chunks: jit.clamp_backward_parallel(gyf, yf, t(lo), t(hi), gxf, chunks))  # fmt: skip
    return gx


def softmax_rows_(x: np.ndarray, scale: float = 1.0) -> None:
    """``x = softmax(x * scale)`` over the last axis, in place (a row of only ``-inf`` gives zeros)."""
    scores_softmax_(x, scale, None, None)


def scores_softmax_(x: np.ndarray, scale: float, mask: np.ndarray | None, keep: np.ndarray | None) -> None:
    """Attention's weights from its scores, in place: ``x = softmax(x * scale + mask)`` over the last axis, with
    the positions where ``keep`` is False weighing exactly 0 (a row with none left gives zeros). ``mask`` (x's
    dtype) and ``keep`` (bool) broadcast to ``x``, or are None. Float32 runs one compiled kernel per row (a
    vectorised exp, within 2 ulp of numpy's); other dtypes, more than two batch axes, or no numba, the numpy
    reference ``generic.scores_softmax_``. Called from pool threads: it does not split."""
    fits = x.dtype == np.float32 and 1 <= x.ndim <= 4 and x.size
    jit = _jit.compiled(x.size, small_once_loaded=True) if fits else None
    if jit is None or (mask is not None and mask.dtype != x.dtype):
        generic.scores_softmax_(x, scale, mask, keep)
        return
    x4 = x[(None,) * (4 - x.ndim)]
    jit.softmax_scores_f32(x4, np.float32(scale), *score_masks(mask, keep, x4.shape))


_NO_MASK = np.zeros(1, dtype=np.float32)
_NO_KEEP = np.ones(1, dtype=bool)


def score_masks(mask: np.ndarray | None, keep: np.ndarray | None, shape: tuple[int, ...]
                ) -> tuple[np.ndarray, np.ndarray, bool, bool]:  # fmt: skip
    """``(mask, keep, use_mask, use_keep)`` as the compiled softmax kernels take them: float32 and bool views
    broadcast to the scores' 4-d ``shape`` (a stand-in where one is None)."""
    return (np.broadcast_to(_NO_MASK if mask is None else mask, shape),
            np.broadcast_to(_NO_KEEP if keep is None else keep, shape), mask is not None, keep is not None)


def gelu(x: np.ndarray, erf: Callable[[np.ndarray], np.ndarray], want_cdf: bool = True
         ) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Exact GELU: ``(x * Phi(x), Phi(x) or None)`` with ``Phi(x) = (1 + erf(x / sqrt 2)) / 2`` (``Phi`` is what
    backward needs; without ``want_cdf`` it may be None). Float32 runs one compiled pass (a vectorised erf
    polynomial, within 2e-7 of erf); other dtypes, or no numba, use ``erf`` (the numpy reference,
    ``ops.elementwise.erf_array``)."""
    jit = _jit.compiled(x.size) if x.dtype == np.float32 else None
    t = x.dtype.type
    if jit is None:
        cdf = erf(x * t(0.7071067811865476))
        cdf += t(1)
        cdf *= t(0.5)
        return x * cdf, cdf
    xf = _flat(x)
    y = np.empty(x.shape, dtype=x.dtype)
    yf = y.reshape(-1)
    if not want_cdf:
        _split(xf.size, lambda a, b: jit.gelu_erf_f32(xf[a:b], yf[a:b]),
               lambda chunks: jit.gelu_erf_f32_parallel(xf, yf, chunks))  # fmt: skip
        return y, None
    cdf = np.empty(x.shape, dtype=x.dtype)
    cf = cdf.reshape(-1)
    _split(xf.size, lambda a, b: jit.gelu_erf_cdf_f32(xf[a:b], yf[a:b], cf[a:b]),
           lambda chunks: jit.gelu_erf_cdf_f32_parallel(xf, yf, cf, chunks))  # fmt: skip
    return y, cdf


def gelu_backward(gy: np.ndarray, x: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Gradient of :func:`gelu`: ``gy * (Phi(x) + x * phi(x))`` (numpy: its float32 exp is vectorised)."""
    t = gy.dtype.type
    slope = x * x
    slope *= t(-0.5)
    np.exp(slope, out=slope)
    slope *= t(0.3989422804014327)
    slope *= x
    slope += cdf
    slope *= gy
    return slope


def sgd_update(p: np.ndarray, g: np.ndarray, buf: np.ndarray | None, lr: float, momentum: float, dampening: float,
               weight_decay: float, nesterov: bool, maximize: bool) -> np.ndarray | None:  # fmt: skip
    """:func:`hubkit.kernels.generic.sgd_update` (torch's rule, ``p`` updated in place; returns the momentum
    buffer): with momentum, one compiled pass per parameter split over the threads instead of four numpy
    passes on one."""
    from hubkit.kernels import generic

    jit = _compiled(p, g) if momentum != 0 and p.dtype == g.dtype and p.flags.c_contiguous else None
    if jit is None or (buf is not None and (buf.dtype != p.dtype or not buf.flags.c_contiguous)):
        return generic.sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize)
    first = buf is None
    if first:
        buf = np.empty_like(p)
    pf, gf, bf = p.reshape(-1), _flat(g), buf.reshape(-1)
    t = p.dtype.type
    args = (t(lr), t(momentum), t(dampening), t(weight_decay), nesterov, maximize, first)
    _split(pf.size, lambda a, b: jit.sgd_momentum(pf[a:b], gf[a:b], bf[a:b], *args),
           lambda chunks: jit.sgd_momentum_parallel(pf, gf, bf, *args, chunks))  # fmt: skip
    return buf


def adadelta_update(p: np.ndarray, g: np.ndarray, square_avg: np.ndarray, acc_delta: np.ndarray, lr: float,
                    rho: float, eps: float, weight_decay: float, flush: float) -> bool:  # fmt: skip
    """Adadelta's update of ``p`` and its two state arrays in place, one compiled pass (``optim/adadelta.py``
    has the rule and the numpy reference, whose rounding this follows; state entries below ``flush`` become 0).
    Returns False, changing nothing, when the compiled kernels cannot take the arrays (no numba, mixed dtypes,
    non-contiguous state)."""
    arrays = (p, g, square_avg, acc_delta)
    jit = _compiled(*arrays) if len({a.dtype for a in arrays}) == 1 else None
    if jit is None or not all(a.flags.c_contiguous for a in (p, square_avg, acc_delta)):
        return False
    t = p.dtype.type
    flat = (p.reshape(-1), _flat(g), square_avg.reshape(-1), acc_delta.reshape(-1))
    args = (t(lr), t(rho), t(1 - rho), t(eps), t(weight_decay), t(flush))
    _split(p.size, lambda a, b: jit.adadelta(*(f[a:b] for f in flat), *args),
           lambda chunks: jit.adadelta_parallel(*flat, *args, chunks))  # fmt: skip
    return True


def adam_update(p: np.ndarray, g: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
                max_exp_avg_sq: np.ndarray | None, step: int, lr: float, beta1: float, beta2: float, eps: float,
                weight_decay: float, decoupled: bool, maximize: bool) -> None:  # fmt: skip
    """:func:`hubkit.kernels.generic.adam_update` (torch's Adam/AdamW, in place) as one compiled pass split over the
    threads instead of a dozen numpy passes, with the same rounding; the numpy reference without numba or for
    arrays the kernel cannot take.

    One difference: with ``eps > 0``, moment entries that fall below the smallest normal number become 0. A unit
    that stops getting gradients has its averages decay by beta every step through the subnormal range, where every
    CPU operation takes a microcode assist (pytorch/examples' MNIST network under Adam: 48-52 -> 58-59 ms per step
    after 800 steps, a third of its state subnormal). The second moment's flush changes nothing (its square root
    vanishes beside eps); the first moment's changes a parameter by at most ``lr * 1.2e-38 / eps / (1 - beta1)``."""
    arrays = [p, g, exp_avg, exp_avg_sq] + ([] if max_exp_avg_sq is None else [max_exp_avg_sq])
    jit = _compiled(*arrays) if len({a.dtype for a in arrays}) == 1 else None
    kept = [a for a in arrays if a is not g]
    if jit is None or not all(a.flags.c_contiguous for a in kept):
        generic.adam_update(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
                            decoupled, maximize)  # fmt: skip
        return
    t = p.dtype.type
    use_max = max_exp_avg_sq is not None
    flat = [p.reshape(-1), _flat(g), exp_avg.reshape(-1), exp_avg_sq.reshape(-1)]
    vmax = max_exp_avg_sq.reshape(-1) if use_max else flat[0][:0]
    flush = t(np.finfo(p.dtype).tiny) if eps > 0 else t(0)
    args = (use_max, t(1 - lr * weight_decay), t(weight_decay), bool(decoupled), bool(maximize), t(beta1), t(beta2),
            t(1 - beta1), t(1 - beta2), t(math.sqrt(1 - beta2**step)), t(eps), t(lr / (1 - beta1**step)), flush)
    pf, gf, mf, vf = flat
    _split(pf.size, lambda a, b: jit.adam(pf[a:b], gf[a:b], mf[a:b], vf[a:b], vmax[a:b] if use_max else vmax, *args),
           lambda chunks: jit.adam_parallel(pf, gf, mf, vf, vmax, *args, chunks))  # fmt: skip
