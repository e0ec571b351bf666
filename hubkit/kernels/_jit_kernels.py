"""Compiled CPU loops (numba) behind the numpy kernels; imported only through ``_jit.compiled()``.

Every function works on a slice of the batch (images ``n0:n1`` or channels ``c0:c1``) and writes only
that slice of a preallocated output, so hubkit's thread pool can run slices side by side (``nogil``) and
the result does not depend on the thread count. Reductions accumulate in float64. The numpy kernels in
``cpu_*.py`` are the reference: tests/kernels/test_compiled.py holds these to them.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from hubkit.kernels import _jit

# Reductions may be reassociated (vectorised float64 accumulators): the order is fixed by the compiled
# code, so results are still reproducible run to run. No other fast-math flag: NaN and inf must propagate.
_REDUCE = {"reassoc", "contract"}


# ---------------------------------------------------------------- max pooling


@njit(nogil=True, cache=True)
def max_pool(x, y, arg, n0, n1, kh, kw, sy, sx, pt, pl, dy, dx, want_arg):  # pragma: no cover (compiled)
    """Max pooling of images ``n0:n1``: ``x`` (N, C, H, W) -> ``y`` (N, C, OH, OW) and, when ``want_arg``,
    ``arg`` (N, C, OH, OW) = the first winning kernel position ``ky*KW + kx``; a NaN wins (and stays).

    Each input row is first split by column phase (``q % SX`` of the padded column ``q``, padding = -inf),
    so that every kernel position reads one contiguous run per output row: the loop over output columns
    then vectorises (strided reads did not: 2-4x slower)."""
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    lowest = -np.inf
    pw = ow + ((kw - 1) * dx) // sx + 1  # phase-row length: enough for every kernel position's run
    phases = np.empty((h, sx, pw), dtype=x.dtype)
    best = np.empty(ow, dtype=x.dtype)
    won = np.empty(ow, dtype=np.int32)
    unset = kh * kw  # no winner yet: only when every in-bounds value of a window is -inf
    for n in range(n0, n1):
        for ch in range(c):
            phases[:] = lowest
            for r in range(h):
                for q in range(w):
                    padded = q + pl
                    t = padded // sx
                    if t < pw:
                        phases[r, padded % sx, t] = x[n, ch, r, q]
            for i in range(oh):
                best[:] = lowest
                won[:] = unset
                r0 = i * sy - pt
                for ky in range(kh):
                    r = r0 + ky * dy
                    if r < 0 or r >= h:
                        continue
                    for kx in range(kw):
                        prow = phases[r, (kx * dx) % sx]
                        o = (kx * dx) // sx
                        k = np.int32(ky * kw + kx)
                        for j in range(ow):
                            v = prow[j + o]
                            b = best[j]
                            better = v > b or (v != v and b == b)
                            best[j] = v if better else b
                            won[j] = k if better else won[j]
                for j in range(ow):
                    y[n, ch, i, j] = best[j]
                if want_arg:
                    for j in range(ow):
                        k = won[j]
                        if k == unset:  # all -inf: the first in-bounds position wins, as in torch
                            for kk in range(kh * kw):
                                ky, kx = divmod(kk, kw)
                                rr, qq = r0 + ky * dy, j * sx - pl + kx * dx
                                if 0 <= rr < h and 0 <= qq < w:
                                    k = kk
                                    break
                        arg[n, ch, i, j] = k


@njit(nogil=True, cache=True)
def max_pool_2x2(x, y, arg, n0, n1, want_arg):  # pragma: no cover (compiled)
    """:func:`max_pool` for 2x2 windows, stride 2, no padding: four loads and three branch-free selects
    per output (10x faster than the general loop on LeNet's layers)."""
    c = x.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    for n in range(n0, n1):
        for ch in range(c):
            for i in range(oh):
                top = x[n, ch, 2 * i]
                bottom = x[n, ch, 2 * i + 1]
                for j in range(ow):
                    m = top[2 * j]
                    k = 0
                    v = top[2 * j + 1]
                    if v > m or (v != v and m == m):
                        m = v
                        k = 1
                    v = bottom[2 * j]
                    if v > m or (v != v and m == m):
                        m = v
                        k = 2
                    v = bottom[2 * j + 1]
                    if v > m or (v != v and m == m):
                        m = v
                        k = 3
                    y[n, ch, i, j] = m
                    if want_arg:
                        arg[n, ch, i, j] = k


@njit(nogil=True, cache=True)
def max_pool_2x2_backward(gy, arg, gx, n0, n1):  # pragma: no cover (compiled)
    """Gradient of :func:`max_pool_2x2` for images ``n0:n1``: every pixel of ``gx`` (N, C, H, W) written once
    (``gy`` where it won, else 0; an odd last row/column gets 0), so ``gx`` needs no zeroing. All three arrays
    C-contiguous.

    Each of a window's four pixels is ``g * mask[k, position]``, the winner ``k`` picking a row of the identity:
    no branch (comparisons compiled to branches that a random argmax mispredicted: 4.5x slower), and the
    product is the numpy path's ``g * (k == position)`` exactly. Indexes are unsigned (no wraparound checks)."""
    c, h, w = gx.shape[1], gx.shape[2], gx.shape[3]
    oh, ow = gy.shape[2], gy.shape[3]
    mask = np.zeros((4, 4), dtype=gx.dtype)
    for k in range(4):
        mask[k, k] = 1
    g_flat, a_flat, x_flat = gy.reshape(-1), arg.reshape(-1), gx.reshape(-1)
    one, two = np.uint64(1), np.uint64(2)
    for plane in range(n0 * c, n1 * c):
        for i in range(oh):
            src = np.uint64((plane * oh + i) * ow)
            top = np.uint64((plane * h + 2 * i) * w)
            bottom = top + np.uint64(w)
            for j in range(ow):
                at = src + np.uint64(j)
                g, k = g_flat[at], a_flat[at]
                col = two * np.uint64(j)
                x_flat[top + col] = g * mask[k, 0]
                x_flat[top + col + one] = g * mask[k, 1]
                x_flat[bottom + col] = g * mask[k, 2]
                x_flat[bottom + col + one] = g * mask[k, 3]
            if w > 2 * ow:
                x_flat[top + np.uint64(w - 1)] = 0
                x_flat[bottom + np.uint64(w - 1)] = 0
        for r in range(2 * oh * w, h * w):
            x_flat[plane * h * w + r] = 0


@njit(nogil=True, cache=True, parallel=True)
def max_pool_2x2_parallel(x, y, arg, want_arg, chunks):  # pragma: no cover (compiled)
    """:func:`max_pool_2x2` of every image, in ``chunks`` contiguous ranges over numba's threads."""
    n = x.shape[0]
    for i in prange(chunks):
        max_pool_2x2(x, y, arg, i * n // chunks, (i + 1) * n // chunks, want_arg)


@njit(nogil=True, cache=True, parallel=True)
def max_pool_2x2_backward_parallel(gy, arg, gx, chunks):  # pragma: no cover (compiled)
    """:func:`max_pool_2x2_backward` of every image, in ``chunks`` contiguous ranges over numba's threads."""
    n = gx.shape[0]
    for i in prange(chunks):
        max_pool_2x2_backward(gy, arg, gx, i * n // chunks, (i + 1) * n // chunks)


@njit(nogil=True, cache=True)
def max_pool_backward(gy, arg, gx, n0, n1, kw, sy, sx, pt, pl, dy, dx):  # pragma: no cover (compiled)
    """Add ``gy`` of images ``n0:n1`` into ``gx`` (N, C, H, W, zeroed by the caller) at each window's winner."""
    c = gy.shape[1]
    oh, ow = gy.shape[2], gy.shape[3]
    for n in range(n0, n1):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    ky, kx = divmod(np.int64(arg[n, ch, i, j]), kw)
                    gx[n, ch, i * sy - pt + ky * dy, j * sx - pl + kx * dx] += gy[n, ch, i, j]


# ---------------------------------------------------------------- batch normalization (x viewed as (N, C, L))


@njit(nogil=True, cache=True, fastmath=_REDUCE)
def channel_mean_var(x, mean, var, c0, c1):  # pragma: no cover (compiled)
    """Per-channel mean and biased variance (two passes, float64) of channels ``c0:c1`` of ``x`` (N, C, L)."""
    n, length = x.shape[0], x.shape[2]
    count = n * length
    for c in range(c0, c1):
        s = 0.0
        for i in range(n):
            for k in range(length):
                s += x[i, c, k]
        m = s / count
        q = 0.0
        for i in range(n):
            for k in range(length):
                d = x[i, c, k] - m
                q += d * d
        mean[c] = m
        var[c] = q / count


@njit(nogil=True, cache=True, fastmath=_REDUCE)
def channel_sums(x, out, c0, c1):  # pragma: no cover (compiled)
    """``out[c] = sum(x[:, c, :])`` (float64) for channels ``c0:c1`` of ``x`` (N, C, L): a convolution's bias
    gradient."""
    n, length = x.shape[0], x.shape[2]
    for c in range(c0, c1):
        s = 0.0
        for i in range(n):
            for k in range(length):
                s += x[i, c, k]
        out[c] = s


@njit(nogil=True, cache=True)
def scale_shift(x, scale, shift, y):  # pragma: no cover (compiled)
    """``y[r] = x[r] * scale[r] + shift[r]`` for the rows of ``x`` (R, L) (a row is one image's channel)."""
    rows, length = x.shape
    for r in range(rows):
        a = scale[r]
        b = shift[r]
        for k in range(length):
            y[r, k] = x[r, k] * a + b


@njit(nogil=True, cache=True, fastmath=_REDUCE)
def channel_grad_sums(gy, x, mean, gb, gxc, c0, c1):  # pragma: no cover (compiled)
    """Per channel of ``c0:c1``: ``gb = sum(gy)`` and ``gxc = sum(gy * (x - mean))`` (float64), over (N, L)."""
    n, length = x.shape[0], x.shape[2]
    for c in range(c0, c1):
        m = mean[c]
        s = 0.0
        t = 0.0
        for i in range(n):
            for k in range(length):
                g = gy[i, c, k]
                s += g
                t += g * (x[i, c, k] - m)
        gb[c] = s
        gxc[c] = t


@njit(nogil=True, cache=True)
def batch_norm_input_grad(gy, x, mean, a, b, k, gx):  # pragma: no cover (compiled)
    """Training input gradient for rows (R, L): ``gx = a*gy - b - k*(x - mean)`` per row, where the caller
    folded ``weight * inv_std``, the mean of ``gy`` and the ``xhat`` term into ``a``, ``b``, ``k``."""
    rows, length = x.shape
    for r in range(rows):
        aa = a[r]
        bb = b[r]
        kk = k[r]
        m = mean[r]
        for q in range(length):
            gx[r, q] = aa * gy[r, q] - bb - kk * (x[r, q] - m)


@njit(nogil=True, cache=True, parallel=True)
def channel_mean_var_parallel(x, mean, var, chunks):  # pragma: no cover (compiled)
    """:func:`channel_mean_var` of every channel, in ``chunks`` contiguous ranges over numba's threads."""
    c = x.shape[1]
    for i in prange(chunks):
        channel_mean_var(x, mean, var, i * c // chunks, (i + 1) * c // chunks)


@njit(nogil=True, cache=True, parallel=True)
def channel_sums_parallel(x, out, chunks):  # pragma: no cover (compiled)
    """:func:`channel_sums` of every channel, in ``chunks`` contiguous ranges over numba's threads."""
    c = x.shape[1]
    for i in prange(chunks):
        channel_sums(x, out, i * c // chunks, (i + 1) * c // chunks)


@njit(nogil=True, cache=True, parallel=True)
def channel_grad_sums_parallel(gy, x, mean, gb, gxc, chunks):  # pragma: no cover (compiled)
    """:func:`channel_grad_sums` of every channel, in ``chunks`` contiguous ranges over numba's threads."""
    c = x.shape[1]
    for i in prange(chunks):
        channel_grad_sums(gy, x, mean, gb, gxc, i * c // chunks, (i + 1) * c // chunks)


@njit(nogil=True, cache=True, parallel=True)
def scale_shift_parallel(x, scale, shift, y, chunks):  # pragma: no cover (compiled)
    """:func:`scale_shift` of every row, in ``chunks`` contiguous ranges over numba's threads."""
    rows = x.shape[0]
    for i in prange(chunks):
        r0, r1 = i * rows // chunks, (i + 1) * rows // chunks
        scale_shift(x[r0:r1], scale[r0:r1], shift[r0:r1], y[r0:r1])


@njit(nogil=True, cache=True, parallel=True)
def batch_norm_input_grad_parallel(gy, x, mean, a, b, k, gx, chunks):  # pragma: no cover (compiled)
    """:func:`batch_norm_input_grad` of every row, in ``chunks`` contiguous ranges over numba's threads."""
    rows = x.shape[0]
    for i in prange(chunks):
        r0, r1 = i * rows // chunks, (i + 1) * rows // chunks
        batch_norm_input_grad(gy[r0:r1], x[r0:r1], mean[r0:r1], a[r0:r1], b[r0:r1], k[r0:r1], gx[r0:r1])


# ---------------------------------------------------------------- layer normalization (rows of x viewed as (R, D))


@njit(nogil=True, cache=True, fastmath=_REDUCE)
def layer_norm_rows(x, w, b, eps, y, xhat, rstd, r0, r1):  # pragma: no cover (compiled)
    """Layer norm of rows ``r0:r1`` of ``x`` (R, D): ``y = (x - mean) * rstd * w + b`` with the biased
    variance (two passes over the row, float64 sums); ``w``/``b`` of size 0 mean none. ``xhat`` (R, D) gets
    the normalised row and ``rstd`` (R,) ``1 / sqrt(var + eps)`` when ``xhat`` is not empty (training)."""
    d = x.shape[1]
    keep = xhat.shape[0] > 0
    has_w, has_b = w.size > 0, b.size > 0
    for r in range(r0, r1):
        row = x[r]
        total = 0.0
        for j in range(d):
            total += row[j]
        mean = total / d
        sq = 0.0
        for j in range(d):
            c = row[j] - mean
            sq += c * c
        inv = 1.0 / np.sqrt(sq / d + eps)
        out = y[r]
        m, s = row.dtype.type(mean), row.dtype.type(inv)
        # one branch-free loop per case: tests inside the loop kept it from vectorising (2.3x slower)
        if has_w and has_b:
            for j in range(d):
                out[j] = (row[j] - m) * s * w[j] + b[j]
        elif has_w:
            for j in range(d):
                out[j] = (row[j] - m) * s * w[j]
        elif has_b:
            for j in range(d):
                out[j] = (row[j] - m) * s + b[j]
        else:
            for j in range(d):
                out[j] = (row[j] - m) * s
        if keep:
            h = xhat[r]
            for j in range(d):
                h[j] = (row[j] - m) * s
            rstd[r] = s


@njit(nogil=True, cache=True, fastmath=_REDUCE)
def group_norm_rows(x, groups, w, b, eps, y, xhat, rstd, r0, r1):  # pragma: no cover (compiled)
    """Group norm of rows ``r0:r1`` of ``x`` (N*G, C/G, L), row ``r`` being group ``r % G`` of image ``r // G``:
    ``y = (x - mean) * rstd * w[c] + b[c]`` with the per-channel ``w``/``b`` (G, C/G) (size 0: none), statistics
    in float64 over the whole row. ``xhat`` gets the normalised values when it is not empty (training); ``rstd``
    (N*G,) always gets ``1 / sqrt(var + eps)``."""
    cg, length = x.shape[1], x.shape[2]
    keep = xhat.shape[0] > 0
    has_w, has_b = w.size > 0, b.size > 0
    count = cg * length
    for r in range(r0, r1):
        total = 0.0
        for k in range(cg):
            row = x[r, k]
            for j in range(length):
                total += row[j]
        mean = total / count
        sq = 0.0
        for k in range(cg):
            row = x[r, k]
            for j in range(length):
                c = row[j] - mean
                sq += c * c
        inv = 1.0 / np.sqrt(sq / count + eps)
        m, s = x.dtype.type(mean), x.dtype.type(inv)
        rstd[r] = s
        g = r % groups
        for k in range(cg):
            row = x[r, k]
            out = y[r, k]
            a = s * w[g, k] if has_w else s
            shift = b[g, k] if has_b else x.dtype.type(0)
            if keep:
                h = xhat[r, k]
                for j in range(length):
                    v = (row[j] - m) * s
                    h[j] = v
                    out[j] = (v * w[g, k] if has_w else v) + shift
            else:
                for j in range(length):
                    out[j] = (row[j] - m) * a + shift




@njit(nogil=True, cache=True, parallel=True)
def layer_norm_rows_parallel(x, w, b, eps, y, xhat, rstd, chunks):  # pragma: no cover (compiled)
    """:func:`layer_norm_rows` of every row, in ``chunks`` contiguous ranges over numba's threads."""
    rows = x.shape[0]
    for i in prange(chunks):
        layer_norm_rows(x, w, b, eps, y, xhat, rstd, i * rows // chunks, (i + 1) * rows // chunks)


@njit(nogil=True, cache=True, parallel=True)
def group_norm_rows_parallel(x, groups, w, b, eps, y, xhat, rstd, chunks):  # pragma: no cover (compiled)
    """:func:`group_norm_rows` of every (image, group) row, in ``chunks`` contiguous ranges over numba's threads."""
    rows = x.shape[0]
    for i in prange(chunks):
        group_norm_rows(x, groups, w, b, eps, y, xhat, rstd, i * rows // chunks, (i + 1) * rows // chunks)
# ---------------------------------------------------------------- activations (flat arrays)
# The caller passes slices rather than a start index: a loop over range(start, stop) indexes with a possibly
# negative number, numba's wraparound check then stops LLVM from vectorising it (10x slower).


@njit(nogil=True, cache=True)
def clamp(x, lo, hi, y):  # pragma: no cover (compiled)
    """``y = min(max(x, lo), hi)``; NaN stays NaN (as ``np.clip``)."""
    for i in range(x.size):
        v = x[i]
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        y[i] = v


@njit(nogil=True, cache=True)
def clamp_backward(gy, y, lo, hi, gx):  # pragma: no cover (compiled)
    """``gx = gy`` where ``lo < y < hi``, else 0 (from the clamp's output, which equals x strictly inside);
    with ``hi = inf`` (ReLU) an infinite output still passes its gradient, as torch's does."""
    bounded = hi != np.inf
    for i in range(gy.size):
        v = y[i]
        gx[i] = gy[i] if v > lo and (v < hi or not bounded) else 0


@njit(nogil=True, cache=True, parallel=True)
def add_parallel(x, y, out, chunks):  # pragma: no cover (compiled)
    """``out = x + y`` (flat arrays of one size and dtype) in ``chunks`` contiguous ranges over numba's threads."""
    n = x.size
    for i in prange(chunks):
        a, b = i * n // chunks, (i + 1) * n // chunks
        xs, ys, outs = x[a:b], y[a:b], out[a:b]
        for j in range(b - a):
            outs[j] = xs[j] + ys[j]


@njit(nogil=True, cache=True, parallel=True)
def clamp_parallel(x, lo, hi, y, chunks):  # pragma: no cover (compiled)
    """:func:`clamp` in ``chunks`` contiguous ranges over numba's threads."""
    n = x.size
    for i in prange(chunks):
        a, b = i * n // chunks, (i + 1) * n // chunks
        clamp(x[a:b], lo, hi, y[a:b])


@njit(nogil=True, cache=True, parallel=True)
def clamp_backward_parallel(gy, y, lo, hi, gx, chunks):  # pragma: no cover (compiled)
    """:func:`clamp_backward` in ``chunks`` contiguous ranges over numba's threads."""
    n = gy.size
    for i in prange(chunks):
        a, b = i * n // chunks, (i + 1) * n // chunks
        clamp_backward(gy[a:b], y[a:b], lo, hi, gx[a:b])


# erf(z) / z for |z| <= 4 as a polynomial in u = z^2 / 8 - 1 (lowest power first): a degree-16 Chebyshev fit
# (least squares at 4,000 Chebyshev nodes against math.erf) converted to powers of u. Evaluated in float32 by
# Horner's rule it is within 1.9e-7 of erf on [-4, 4], and erf(4) rounds to 1 in float32, so z is clamped
# there. Unlike a libm erf call (scalar, 20 ms per 3M values here) the polynomial vectorises.
(_E0, _E1, _E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11, _E12, _E13, _E14, _E15, _E16) = (
    np.float32(c)
    for c in (
        0.3535309963615693, -0.1765761718769577, 0.13167500145685207, -0.10771336119335481, 0.09021204267272565,
        -0.07468753070231779, 0.05985599357737492, -0.04601432136458019, 0.033217001109539256,
        -0.021662532257865314, 0.01390814619025232, -0.010085906978828, 0.0055773637066513036,
        -0.0010769421011028824, 0.0006166106990650476, -0.001372815090880219, 0.0005964250778035004,
    )
)  # fmt: skip


@njit(nogil=True, cache=True, fastmath={"contract"}, inline="always")
def _normal_cdf_f32(v):  # pragma: no cover (compiled)
    """Phi(v) = (1 + erf(v / sqrt 2)) / 2 in float32 from the polynomial above (NaN stays NaN). The polynomial is
    evaluated by Estrin's scheme (pairs, then pairs of pairs in u^2, u^4, u^8): a dependency chain of 5
    multiply-adds instead of Horner's 16, which made the loop latency-bound (1.5x slower)."""
    z = v * np.float32(0.7071067811865476)
    four = np.float32(4)
    z = four if z > four else z
    z = -four if z < -four else z
    u = z * z * np.float32(0.125) - np.float32(1)
    u2 = u * u
    u4 = u2 * u2
    u8 = u4 * u4
    b0 = (_E0 + _E1 * u) + (_E2 + _E3 * u) * u2
    b1 = (_E4 + _E5 * u) + (_E6 + _E7 * u) * u2
    b2 = (_E8 + _E9 * u) + (_E10 + _E11 * u) * u2
    b3 = (_E12 + _E13 * u) + (_E14 + _E15 * u) * u2
    p = (b0 + b1 * u4) + ((b2 + b3 * u4) + _E16 * u8) * u8
    half = np.float32(0.5)
    return half + half * (z * p)


@njit(nogil=True, cache=True, fastmath={"contract"})
def gelu_erf_f32(x, y):  # pragma: no cover (compiled)
    """Float32 exact GELU of flat ``x``: ``y = x * Phi(x)`` (inference: Phi is not kept)."""
    for i in range(x.size):
        v = x[i]
        y[i] = v * _normal_cdf_f32(v)


@njit(nogil=True, cache=True, fastmath={"contract"})
def gelu_erf_cdf_f32(x, y, cdf):  # pragma: no cover (compiled)
    """:func:`gelu_erf_f32` that also stores ``cdf = Phi(x)``, which backward needs."""
    for i in range(x.size):
        v = x[i]
        c = _normal_cdf_f32(v)
        cdf[i] = c
        y[i] = v * c


@njit(nogil=True, cache=True, parallel=True)
def gelu_erf_f32_parallel(x, y, chunks):  # pragma: no cover (compiled)
    """:func:`gelu_erf_f32` in ``chunks`` contiguous ranges over numba's threads."""
    n = x.size
    for i in prange(chunks):
        a, b = i * n // chunks, (i + 1) * n // chunks
        gelu_erf_f32(x[a:b], y[a:b])


@njit(nogil=True, cache=True, parallel=True)
def gelu_erf_cdf_f32_parallel(x, y, cdf, chunks):  # pragma: no cover (compiled)
    """:func:`gelu_erf_cdf_f32` in ``chunks`` contiguous ranges over numba's threads."""
    n = x.size
    for i in prange(chunks):
        a, b = i * n // chunks, (i + 1) * n // chunks
        gelu_erf_cdf_f32(x[a:b], y[a:b], cdf[a:b])


# ---------------------------------------------------------------- softmax (rows of attention's scores)
# exp(t) for t <= 0 without libm (a scalar call that does not vectorise; numpy's float32 exp costs 3 ns per value
# on an AVX2 machine): t = n ln2 + r with |r| <= ln2 / 2, e^r from Cephes' expf polynomial (within 2 ulp), and
# 2^n assembled from its float32 bits, so the loop vectorises. t below -87.33 (where 2^n would leave the normal
# range, and -inf: masked positions) gives exactly 0.
_LOG2E, _LN2_HI, _LN2_LO, _EXP_LOW = (np.float32(c) for c in (1.4426950408889634, 0.693359375, -2.12194440e-4,
                                                             -87.33654))  # fmt: skip
(_X0, _X1, _X2, _X3, _X4, _X5) = (
    np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
                            5.0000001201e-1)  # fmt: skip
)


@njit(nogil=True, cache=True, fastmath=_REDUCE, inline="always")
def _exp_nonpositive_f32(t):  # pragma: no cover (compiled)
    """e^t for float32 ``t <= 0`` (see above); NaN gives NaN."""
    zero, one, half = np.float32(0), np.float32(1), np.float32(0.5)
    dead = t < _EXP_LOW
    t = _EXP_LOW if dead else t
    n = np.floor(t * _LOG2E + half)
    f = t - n * _LN2_HI - n * _LN2_LO
    p = ((((_X0 * f + _X1) * f + _X2) * f + _X3) * f + _X4) * f + _X5
    p = p * (f * f) + f + one
    two_n = np.int32((np.int32(n) + np.int32(127)) << np.int32(23)).view(np.float32)
    return zero if dead else p * two_n


@njit(nogil=True, cache=True, inline="always")
def _larger(v, m):  # pragma: no cover (compiled)
    """``v`` where it is larger than ``m``, else ``m``: a NaN ``v`` never wins."""
    return v if v > m else m


@njit(nogil=True, cache=True, fastmath=_REDUCE, inline="always")
def _row_max_f32(row, width):  # pragma: no cover (compiled)
    """The largest non-NaN entry of ``row[:width]`` (-inf when there is none). Eight running maxima: one would
    be a chain of dependent compares (4 cycles per value), which the vectoriser may not reorder because of NaN."""
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = np.float32(-np.inf)
    j = 0
    while j + 8 <= width:
        m0, m1, m2, m3 = _larger(row[j], m0), _larger(row[j + 1], m1), _larger(row[j + 2], m2), _larger(row[j + 3], m3)
        m4, m5, m6, m7 = (_larger(row[j + 4], m4), _larger(row[j + 5], m5), _larger(row[j + 6], m6),
                          _larger(row[j + 7], m7))  # fmt: skip
        j += 8
    while j < width:
        m0 = _larger(row[j], m0)
        j += 1
    return _larger(_larger(_larger(m1, m0), _larger(m3, m2)), _larger(_larger(m5, m4), _larger(m7, m6)))


@njit(nogil=True, cache=True, fastmath=_REDUCE, inline="always")
def _softmax_row_f32(row, width, scale, add, allowed, use_mask, use_keep):  # pragma: no cover (compiled)
    """One row of :func:`softmax_scores_f32`: ``add`` and ``allowed`` are the row's mask and keep entries."""
    one, zero = np.float32(1), np.float32(0)
    if scale != one:
        for j in range(width):
            row[j] *= scale
    if use_mask:
        for j in range(width):
            row[j] += add[j]
    if use_keep:
        for j in range(width):
            row[j] = row[j] if allowed[j] else np.float32(-np.inf)
    top = _row_max_f32(row, width)
    if not np.isfinite(top):  # nothing to attend to (all -inf) or +inf: NaN below, as numpy's
        top = zero
    total = zero
    for j in range(width):
        e = _exp_nonpositive_f32(row[j] - top)
        row[j] = e
        total += e
    norm = one if total <= zero else total
    for j in range(width):
        row[j] = row[j] / norm


@njit(nogil=True, cache=True, fastmath=_REDUCE)
def softmax_scores_f32(x, scale, mask, keep, use_mask, use_keep):  # pragma: no cover (compiled)
    """In place on float32 scores ``x`` (P, Q, L, S): each row becomes ``softmax(x * scale + mask)`` over the
    positions that ``keep`` allows (the others weigh exactly 0), as the numpy reference does it in separate passes
    (``generic.scores_softmax_``): ``x * scale``, ``+ mask`` (float32, ``use_mask``), ``-inf`` where not ``keep``
    (bool, ``use_keep``). ``mask`` and ``keep`` have x's shape, broadcast views included (stride 0). A row with
    nothing to attend to gives zeros (PyTorch's safe softmax); a NaN makes its row NaN. Sums run in float32 over
    several partial sums (the vectorised order)."""
    pp, qq, length, width = x.shape
    for a in range(pp):
        for b in range(qq):
            for i in range(length):
                _softmax_row_f32(x[a, b, i], width, scale, mask[a, b, i], keep[a, b, i], use_mask, use_keep)


# ---------------------------------------------------------------- attention, one head at a time
# Each (sample, head) runs start to end on one thread: q @ k^T into its rows of ``attn`` (BLAS, by function
# pointer: kernels/_blas.py), the softmax of those rows (above), then attn @ v into its rows of ``out`` (BLAS), so
# a head's scores go through the cache once instead of once per pass over the whole batch (wav2vec2's 4 x 12
# heads of 249 x 249 took 9.6 ms as separate batched passes, memory-bound, on two threads).


@njit(nogil=True, cache=True, fastmath=_REDUCE)
def attention_heads_f32(gemm_qk, gemm_pv, q, k, v, scale, mask, keep, use_mask, use_keep, attn, out, i0,
                        i1):  # pragma: no cover (compiled)
    """Heads ``i0:i1`` (flat index ``b * H + h``) of float32 attention: ``attn[b, h] = softmax(q[b, h] @
    k[b, h]^T * scale + mask, keep)`` and ``out[b, h] = attn[b, h] @ v[b, h]``. ``q`` (B, H, L, E), ``k`` (B, H, S,
    E), ``v`` (B, H, S, Ev), broadcast views allowed, each head's matrix with unit-stride rows; ``mask``/``keep`` as
    in :func:`softmax_scores_f32`; ``attn`` (B, H, L, S) and ``out`` (B, H, L, Ev) C-ordered."""
    heads = q.shape[1]
    length, width, depth, out_width = q.shape[2], k.shape[2], q.shape[3], v.shape[3]
    size = q.itemsize
    ldq = q.strides[2] // size if length > 1 else depth
    ldk = k.strides[2] // size if width > 1 else depth
    ldv = v.strides[2] // size if width > 1 else out_width
    for idx in range(i0, i1):
        b, h = idx // heads, idx % heads
        scores = attn[b, h]
        qp = q.ctypes.data + b * q.strides[0] + h * q.strides[1]
        kp = k.ctypes.data + b * k.strides[0] + h * k.strides[1]
        vp = v.ctypes.data + b * v.strides[0] + h * v.strides[1]
        gemm_qk(101, 111, 112, length, width, depth, 1.0, qp, ldq, kp, ldk, 0.0, scores.ctypes.data, width)
        for i in range(length):
            _softmax_row_f32(scores[i], width, scale, mask[b, h, i], keep[b, h, i], use_mask, use_keep)
        gemm_pv(101, 111, 111, length, out_width, width, 1.0, scores.ctypes.data, width, vp, ldv, 0.0,
                out[b, h].ctypes.data, out_width)  # fmt: skip


@njit(nogil=True, cache=True, parallel=True)
def attention_heads_f32_parallel(gemm_qk, gemm_pv, q, k, v, scale, mask, keep, use_mask, use_keep, attn, out,
                                 chunks):  # pragma: no cover (compiled)
    """:func:`attention_heads_f32` over every head, in ``chunks`` contiguous ranges on numba's threads."""
    total = q.shape[0] * q.shape[1]
    for c in prange(chunks):
        attention_heads_f32(gemm_qk, gemm_pv, q, k, v, scale, mask, keep, use_mask, use_keep, attn, out,
                            c * total // chunks, (c + 1) * total // chunks)  # fmt: skip


# ---------------------------------------------------------------- depthwise convolution (cpu_depthwise.py)
# One filter per channel: w (C, KH*KW). Each (image, channel) plane is split by stride phase into zero-padded
# flat planes (phase (py, px) holds padded pixels (py::SY, px::SX), each plane PHP x PWP), so that output
# pixel (oy, ox) reads tap (ky, kx) at flat index (ky*DY // SY + oy)*PWP + kx*DX // SX + ox of phase
# ((ky*DY) % SY, (kx*DX) % SX): over the "wide" output (OH rows of PWP, the last PWP - OW entries unused),
# every tap is one contiguous multiply-add of OH*PWP elements, which vectorises (row-by-row loops were 2-3x
# slower on MobileNet's small maps). ``geo`` = (SY, SX, PT, PL, DY, DX, PHP, PWP).


@njit(nogil=True, cache=True)
def _phase_columns(w, px, pl, sx, pwp):  # pragma: no cover (compiled)
    """Columns ``qx`` of phase ``px`` that hold input pixels: ``0 <= qx*SX + px - PL < W``, as a range."""
    lo = pl - px
    q0 = 0 if lo <= 0 else (lo + sx - 1) // sx
    q1 = min(pwp, (w - 1 + pl - px) // sx + 1) if w - 1 + pl - px >= 0 else 0
    return q0, max(q0, q1)


@njit(nogil=True, cache=True)
def _split_phases(plane, phases, sy, sx, pt, pl, php, pwp):  # pragma: no cover (compiled)
    """Padded pixel (r + pt, q + pl) of ``plane`` (H, W) into its phase plane; padding entries stay zero."""
    h, w = plane.shape
    for py in range(sy):
        for px in range(sx):
            dst = phases[py * sx + px]
            q0, q1 = _phase_columns(w, px, pl, sx, pwp)
            for ry in range(php):
                r = ry * sy + py - pt
                if r < 0 or r >= h or q1 <= q0:
                    continue
                src = plane[r, q0 * sx + px - pl :: sx]
                out = dst[ry * pwp + q0 : ry * pwp + q1]
                for q in range(q1 - q0):
                    out[q] = src[q]


@njit(nogil=True, cache=True)
def _merge_phases(phases, plane, sy, sx, pt, pl, php, pwp):  # pragma: no cover (compiled)
    """Adjoint of :func:`_split_phases`: ``plane`` (H, W) = its pixels' entries of the phase planes (pixels
    beyond the planes get 0)."""
    h, w = plane.shape
    plane[:, :] = 0
    for py in range(sy):
        for px in range(sx):
            src = phases[py * sx + px]
            q0, q1 = _phase_columns(w, px, pl, sx, pwp)
            for ry in range(php):
                r = ry * sy + py - pt
                if r < 0 or r >= h or q1 <= q0:
                    continue
                out = plane[r, q0 * sx + px - pl :: sx]
                row = src[ry * pwp + q0 : ry * pwp + q1]
                for q in range(q1 - q0):
                    out[q] = row[q]


@njit(nogil=True, cache=True)
def depthwise_forward(x, w, kw, y, n0, n1, geo):  # pragma: no cover (compiled)
    """``y[n, c] = x[n, c]`` cross-correlated with filter ``w[c]`` (KH*KW taps) for images ``n0:n1``."""
    sy, sx, pt, pl, dy, dx, php, pwp = geo
    c, oh, ow = x.shape[1], y.shape[2], y.shape[3]
    length = oh * pwp
    phases = np.zeros((sy * sx, php * pwp + pwp), dtype=x.dtype)
    acc = np.empty(length, dtype=x.dtype)
    for n in range(n0, n1):
        for ch in range(c):
            _split_phases(x[n, ch], phases, sy, sx, pt, pl, php, pwp)
            acc[:] = 0
            for t in range(w.shape[1]):
                ky, kx = divmod(t, kw)
                off = (ky * dy // sy) * pwp + kx * dx // sx
                seg = phases[((ky * dy) % sy) * sx + (kx * dx) % sx, off : off + length]
                wv = w[ch, t]
                for i in range(length):
                    acc[i] += wv * seg[i]
            for oy in range(oh):
                y[n, ch, oy, :] = acc[oy * pwp : oy * pwp + ow]


@njit(nogil=True, cache=True)
def depthwise_input_grad(gy, w, kw, gx, n0, n1, geo):  # pragma: no cover (compiled)
    """Adjoint of :func:`depthwise_forward`: ``gx`` (N, C, H, W) for images ``n0:n1`` (what falls on the
    padding is dropped; pixels no window reached get 0)."""
    sy, sx, pt, pl, dy, dx, php, pwp = geo
    c, oh, ow = gy.shape[1], gy.shape[2], gy.shape[3]
    length = oh * pwp
    phases = np.empty((sy * sx, php * pwp + pwp), dtype=gx.dtype)
    wide = np.zeros(length, dtype=gx.dtype)  # gy over the wide rows; the unused tail of each row stays 0
    for n in range(n0, n1):
        for ch in range(c):
            for oy in range(oh):
                wide[oy * pwp : oy * pwp + ow] = gy[n, ch, oy]
            phases[:] = 0
            for t in range(w.shape[1]):
                ky, kx = divmod(t, kw)
                off = (ky * dy // sy) * pwp + kx * dx // sx
                seg = phases[((ky * dy) % sy) * sx + (kx * dx) % sx, off : off + length]
                wv = w[ch, t]
                for i in range(length):
                    seg[i] += wv * wide[i]
            _merge_phases(phases, gx[n, ch], sy, sx, pt, pl, php, pwp)


@njit(nogil=True, cache=True, fastmath=_REDUCE)
def depthwise_weight_grad(x, gy, kw, partial, n0, n1, geo):  # pragma: no cover (compiled)
    """``partial[n, c, t]`` (float64) = the dot product of ``gy[n, c]`` with what tap ``t = ky*KW + kx`` of
    the window sees, for images ``n0:n1``; the caller sums the images in order."""
    sy, sx, pt, pl, dy, dx, php, pwp = geo
    c, oh, ow = x.shape[1], gy.shape[2], gy.shape[3]
    length = oh * pwp
    phases = np.zeros((sy * sx, php * pwp + pwp), dtype=x.dtype)
    wide = np.zeros(length, dtype=x.dtype)
    for n in range(n0, n1):
        for ch in range(c):
            _split_phases(x[n, ch], phases, sy, sx, pt, pl, php, pwp)
            for oy in range(oh):
                wide[oy * pwp : oy * pwp + ow] = gy[n, ch, oy]
            for t in range(partial.shape[2]):
                ky, kx = divmod(t, kw)
                off = (ky * dy // sy) * pwp + kx * dx // sx
                seg = phases[((ky * dy) % sy) * sx + (kx * dx) % sx, off : off + length]
                s = 0.0
                for i in range(length):
                    s += wide[i] * seg[i]
                partial[n, ch, t] = s


# Channels-last variants for small maps (MobileNet's 14x14 and below): with a handful of output pixels per
# plane, per-plane setup dominates the flat-plane kernels above, while channels-last inputs (N, H, W, C) make
# every tap one multiply-add over the C channels (one contiguous vector), whatever the map size.


@njit(nogil=True, cache=True)
def depthwise_forward_cl(xt, wt, kh, kw, yt, n0, n1, sy, sx, pt, pl, dy, dx):  # pragma: no cover (compiled)
    """``yt`` (N, OH, OW, C) from ``xt`` (N, H, W, C) and taps ``wt`` (KH*KW, C), images ``n0:n1``."""
    h, w, c = xt.shape[1], xt.shape[2], xt.shape[3]
    oh, ow = yt.shape[1], yt.shape[2]
    for n in range(n0, n1):
        for oy in range(oh):
            for ox in range(ow):
                acc = yt[n, oy, ox]
                acc[:] = 0
                for ky in range(kh):
                    iy = oy * sy - pt + ky * dy
                    if iy < 0 or iy >= h:
                        continue
                    for kx in range(kw):
                        ix = ox * sx - pl + kx * dx
                        if ix < 0 or ix >= w:
                            continue
                        src = xt[n, iy, ix]
                        tap = wt[ky * kw + kx]
                        for ch in range(c):
                            acc[ch] += tap[ch] * src[ch]


@njit(nogil=True, cache=True)
def depthwise_input_grad_cl(gyt, wt, kh, kw, gxt, n0, n1, sy, sx, pt, pl, dy, dx):  # pragma: no cover
    """Adjoint of :func:`depthwise_forward_cl`: ``gxt`` (N, H, W, C) for images ``n0:n1``."""
    h, w, c = gxt.shape[1], gxt.shape[2], gxt.shape[3]
    oh, ow = gyt.shape[1], gyt.shape[2]
    for n in range(n0, n1):
        gxt[n] = 0
        for oy in range(oh):
            for ox in range(ow):
                g = gyt[n, oy, ox]
                for ky in range(kh):
                    iy = oy * sy - pt + ky * dy
                    if iy < 0 or iy >= h:
                        continue
                    for kx in range(kw):
                        ix = ox * sx - pl + kx * dx
                        if ix < 0 or ix >= w:
                            continue
                        dst = gxt[n, iy, ix]
                        tap = wt[ky * kw + kx]
                        for ch in range(c):
                            dst[ch] += tap[ch] * g[ch]


@njit(nogil=True, cache=True)
def depthwise_weight_grad_cl(xt, gyt, kh, kw, partial, n0, n1, sy, sx, pt, pl, dy, dx):  # pragma: no cover
    """``partial[n, t, c]`` = sum over output pixels of ``gyt[n, ., ., c] * xt[n, tap t's pixel, c]`` for
    images ``n0:n1`` (in x's dtype; the caller sums the images in order, in float64)."""
    h, w, c = xt.shape[1], xt.shape[2], xt.shape[3]
    oh, ow = gyt.shape[1], gyt.shape[2]
    for n in range(n0, n1):
        partial[n] = 0
        for oy in range(oh):
            for ox in range(ow):
                g = gyt[n, oy, ox]
                for ky in range(kh):
                    iy = oy * sy - pt + ky * dy
                    if iy < 0 or iy >= h:
                        continue
                    for kx in range(kw):
                        ix = ox * sx - pl + kx * dx
                        if ix < 0 or ix >= w:
                            continue
                        src = xt[n, iy, ix]
                        acc = partial[n, ky * kw + kx]
                        for ch in range(c):
                            acc[ch] += g[ch] * src[ch]


# Parallel drivers of the depthwise kernels: ``chunks`` contiguous ranges of images over numba's threads.


@njit(nogil=True, cache=True, parallel=True)
def depthwise_forward_parallel(x, w, kw, y, geo, chunks):  # pragma: no cover (compiled)
    n = x.shape[0]
    for i in prange(chunks):
        depthwise_forward(x, w, kw, y, i * n // chunks, (i + 1) * n // chunks, geo)


@njit(nogil=True, cache=True, parallel=True)
def depthwise_input_grad_parallel(gy, w, kw, gx, geo, chunks):  # pragma: no cover (compiled)
    n = gy.shape[0]
    for i in prange(chunks):
        depthwise_input_grad(gy, w, kw, gx, i * n // chunks, (i + 1) * n // chunks, geo)


@njit(nogil=True, cache=True, parallel=True)
def depthwise_weight_grad_parallel(x, gy, kw, partial, geo, chunks):  # pragma: no cover (compiled)
    n = x.shape[0]
    for i in prange(chunks):
        depthwise_weight_grad(x, gy, kw, partial, i * n // chunks, (i + 1) * n // chunks, geo)


@njit(nogil=True, cache=True, parallel=True)
def depthwise_forward_cl_parallel(xt, wt, kh, kw, yt, sy, sx, pt, pl, dy, dx, chunks):  # pragma: no cover
    n = xt.shape[0]
    for i in prange(chunks):
        depthwise_forward_cl(xt, wt, kh, kw, yt, i * n // chunks, (i + 1) * n // chunks, sy, sx, pt, pl, dy, dx)


@njit(nogil=True, cache=True, parallel=True)
def depthwise_input_grad_cl_parallel(gyt, wt, kh, kw, gxt, sy, sx, pt, pl, dy, dx, chunks):  # pragma: no cover
    n = gyt.shape[0]
    for i in prange(chunks):
        depthwise_input_grad_cl(gyt, wt, kh, kw, gxt, i * n // chunks, (i + 1) * n // chunks, sy, sx, pt, pl, dy, dx)


@njit(nogil=True, cache=True, parallel=True)
def depthwise_weight_grad_cl_parallel(xt, gyt, kh, kw, partial, sy, sx, pt, pl, dy, dx, chunks):  # pragma: no cover
    n = xt.shape[0]
    for i in prange(chunks):
        depthwise_weight_grad_cl(xt, gyt, kh, kw, partial, i * n // chunks, (i + 1) * n // chunks, sy, sx, pt, pl,
                                 dy, dx)  # fmt: skip

# ---------------------------------------------------------------- direct convolution (cpu_wide.py)
# Small convolutions without im2col, on the wide layout: ``planes`` (P, M, C, L) are the zero-padded images
# split by stride phase and flattened, so that kernel tap ``t`` of output pixel (i, j) reads element
# ``offset[t] + i*PW + j`` of phase plane ``phase[t]``, one contiguous run of ``OH*PW`` elements per tap
# (entries ``j >= OW`` of every output row are discarded). Channels go in blocks of four that never span two
# groups: ``blocks`` (K, 2) = (first channel, count), and the blocks' weights are zero-padded to four, so every
# block runs the same vectorised loop (a separate loop per channel for the last, partial block was 2x slower).
# The gradients' loops multiply two runs into four accumulator runs per pass (two output channels in the input
# gradient, two taps in the weight gradient): half the accumulator loads and stores per multiply-add of one
# run at a time, which was store-bound (1.5-1.7x faster on LeNet-5's and small ResNet layers).
#
# The forward pass keeps its accumulators in registers instead: a chunk of ``_CHUNK`` consecutive outputs of
# the four channels of a block (eight AVX registers of float32) takes every (channel, tap) in turn, two
# vector loads and four broadcasts per eight multiply-adds, and is stored once. The chunk lives in a stack
# buffer (``_stack_buffer``): LLVM promotes it to registers, which it cannot do for an array numba allocates
# on the heap (nor did it for this buffer when the chunk loop was written inside the block function's own
# loops), and indexes are unsigned so that no negative-index wraparound check sits in the loop. LeNet-5's
# 6->16 layer, one thread, batch 64: 0.66-0.70 ms against 1.27-1.40 ms for accumulator rows in memory; 32->32
# 3x3 at 16 px 0.67-0.84x, a 3->64 7x7/2 stem 0.86-0.91x, but LeNet-5's 1->6 layer (25 taps per chunk) 1.15x.
# In float64 the sixteen accumulators do not fit the sixteen AVX registers and spill: 1.4-1.8x slower than the
# accumulator rows were (a chunk of eight through numba's IR inlining lost the registers altogether).
# Compiled for 512-bit vectors (``_jit.full_width_features``: AVX-512), a chunk of sixteen float32 outputs is one
# register per channel, four dependent multiply-add chains, too few to hide the latency of two FMA units; chunks
# of 32 (eight registers of 32 available) took LeNet-5's two forward layers from 0.83 to 0.66-0.72 ms on a
# Sapphire Rapids VM. Runs of 16-31 outputs then take the 16-output chunks.
_CHUNK = 16
_WIDE_CHUNK = 32 if _jit.full_width_applied() else _CHUNK


@intrinsic
def _stack_buffer(typingctx, like, count):
    """A pointer to ``count`` (a literal) uninitialised elements of ``like``'s dtype on the calling function's
    stack, for ``numba.carray``: a scratch block that LLVM can keep in registers."""
    if not isinstance(count, types.IntegerLiteral):
        return None
    dtype, size = like.dtype, count.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_data_type(dtype), size=size)

    return types.CPointer(dtype)(like, count), codegen


def _make_direct_conv_chunks(chunk: int):
    """The chunk loop of the direct convolution for chunks of ``chunk`` outputs (a compile-time constant)."""
    block = 4 * chunk  # the stack buffer of a chunk of four channels (a literal for _stack_buffer)

    @njit(nogil=True, cache=True, fastmath={"contract"})
    def direct_conv_chunks(flat, wq, at, run, wide):  # pragma: no cover (compiled)
        """``wide[b, r] = sum over q of wq[q, b] * flat[at[q] + r]`` for the four rows ``b`` and ``r < run``
        (``run >= chunk``), ``chunk`` outputs at a time in registers; the last chunk ends at ``run`` and may
        overlap the one before it (its outputs are computed again, in the same order: the same values)."""
        acc = carray(_stack_buffer(wide, block), (4, chunk))
        for j0 in range(0, run, chunk):
            start = np.uint64(min(j0, run - chunk))
            for jj in range(chunk):
                acc[0, jj] = 0
                acc[1, jj] = 0
                acc[2, jj] = 0
                acc[3, jj] = 0
            for q in range(at.shape[0]):
                base = at[q] + start
                w0, w1, w2, w3 = wq[q, 0], wq[q, 1], wq[q, 2], wq[q, 3]
                for jj in range(chunk):
                    v = flat[base + np.uint64(jj)]
                    acc[0, jj] += w0 * v
                    acc[1, jj] += w1 * v
                    acc[2, jj] += w2 * v
                    acc[3, jj] += w3 * v
            for jj in range(chunk):
                r = start + np.uint64(jj)
                wide[0, r] = acc[0, jj]
                wide[1, r] = acc[1, jj]
                wide[2, r] = acc[2, jj]
                wide[3, r] = acc[3, jj]

    return direct_conv_chunks


_direct_conv_chunks = _make_direct_conv_chunks(_CHUNK)
_direct_conv_chunks_wide = _make_direct_conv_chunks(_WIDE_CHUNK) if _WIDE_CHUNK != _CHUNK else _direct_conv_chunks


@njit(nogil=True, cache=True, fastmath={"contract"})
def _direct_conv_block(planes, wb, bias, blocks, phase, offset, pw, y, n, k):  # pragma: no cover (compiled)
    """Output-channel block ``k`` of image ``n`` of :func:`direct_conv`, ``_WIDE_CHUNK`` outputs at a time; the last
    chunk of a run ends at the run's end and may overlap the one before it (its outputs are computed again,
    in the same order: the same values). ``planes`` must be C-contiguous."""
    _, oc_n, oh, ow = y.shape
    m, c_n, length = planes.shape[1], planes.shape[2], planes.shape[3]
    cg, taps = wb.shape[1], wb.shape[2]
    ocg = oc_n // (c_n // cg)
    flat = planes.reshape(-1)
    plane = m * c_n * length
    run = oh * pw
    o0, ob = blocks[k, 0], blocks[k, 1]
    first = (n * c_n + (o0 // ocg) * cg) * length  # the block's group's first channel of image n
    steps = cg * taps
    at = np.empty(steps, dtype=np.uint64)  # where (channel, tap) q's run starts in flat
    for c in range(cg):
        for t in range(taps):
            at[c * taps + t] = phase[t] * plane + first + c * length + offset[t]
    wq = wb[k].reshape(steps, 4)
    wide = np.empty((4, run), dtype=y.dtype)
    if run >= _WIDE_CHUNK:
        _direct_conv_chunks_wide(flat, wq, at, run, wide)
    elif run >= _CHUNK:
        _direct_conv_chunks(flat, wq, at, run, wide)
    else:  # a map too small for one chunk
        wide[:] = 0
        for b in range(4):
            for q in range(steps):
                for r in range(run):
                    wide[b, r] += wq[q, b] * flat[at[q] + np.uint64(r)]
    for b in range(ob):
        shift = bias[o0 + b]
        for i in range(oh):
            for j in range(ow):
                y[n, o0 + b, i, j] = wide[b, i * pw + j] + shift


@njit(nogil=True, cache=True, fastmath={"contract"})
def _direct_conv_grad_input_block(gyw, wb, blocks, phase, offset, gplanes, n, k):  # pragma: no cover (compiled)
    """Input-channel block ``k`` of image ``n`` of :func:`direct_conv_grad_input`."""
    oc_n, run = gyw.shape[1], gyw.shape[2]
    ocg, taps = wb.shape[1], wb.shape[2]
    groups = oc_n // ocg
    c_n = gplanes.shape[2] - 3 * groups
    cg = c_n // groups
    c0, cb = blocks[k, 0], blocks[k, 1]
    grp = c0 // cg
    o_first = grp * ocg
    spare = c_n + 3 * grp  # this group's three spare channels (only its last block can be partial)
    gplanes[:, n, c0 : c0 + cb] = 0
    if cb < 4:
        gplanes[:, n, spare : spare + 3] = 0
    for t in range(taps):
        p, s, e = phase[t], offset[t], offset[t] + run
        d0 = gplanes[p, n, c0, s:e]
        d1 = gplanes[p, n, c0 + 1 if cb > 1 else spare, s:e]
        d2 = gplanes[p, n, c0 + 2 if cb > 2 else spare + 1, s:e]
        d3 = gplanes[p, n, c0 + 3 if cb > 3 else spare + 2, s:e]
        for o in range(0, ocg - 1, 2):
            u = gyw[n, o_first + o]
            v = gyw[n, o_first + o + 1]
            u0, u1, u2, u3 = wb[k, o, t, 0], wb[k, o, t, 1], wb[k, o, t, 2], wb[k, o, t, 3]
            v0, v1, v2, v3 = wb[k, o + 1, t, 0], wb[k, o + 1, t, 1], wb[k, o + 1, t, 2], wb[k, o + 1, t, 3]
            for j in range(run):
                g, h = u[j], v[j]
                d0[j] += u0 * g + v0 * h
                d1[j] += u1 * g + v1 * h
                d2[j] += u2 * g + v2 * h
                d3[j] += u3 * g + v3 * h
        if ocg % 2:
            o = ocg - 1
            u = gyw[n, o_first + o]
            u0, u1, u2, u3 = wb[k, o, t, 0], wb[k, o, t, 1], wb[k, o, t, 2], wb[k, o, t, 3]
            for j in range(run):
                g = u[j]
                d0[j] += u0 * g
                d1[j] += u1 * g
                d2[j] += u2 * g
                d3[j] += u3 * g


@njit(nogil=True, cache=True, fastmath=_REDUCE)
def _direct_conv_grad_weight_block(planes, gyw, blocks, phase, offset, partial, n, k):  # pragma: no cover (compiled)
    """Output-channel block ``k`` of image ``n`` of :func:`direct_conv_grad_weight`."""
    oc_n, run = gyw.shape[1], gyw.shape[2]
    cg, taps = partial.shape[2], partial.shape[3]
    ocg = oc_n // (planes.shape[2] // cg)
    zero = partial.dtype.type(0)
    o0, ob = blocks[k, 0], blocks[k, 1]
    c0 = (o0 // ocg) * cg
    # a partial block repeats its last channel; those sums are not stored
    g0 = gyw[n, o0]
    g1 = gyw[n, o0 + min(1, ob - 1)]
    g2 = gyw[n, o0 + min(2, ob - 1)]
    g3 = gyw[n, o0 + min(3, ob - 1)]
    for c in range(cg):
        for t in range(0, taps - 1, 2):
            u = planes[phase[t], n, c0 + c, offset[t] : offset[t] + run]
            v = planes[phase[t + 1], n, c0 + c, offset[t + 1] : offset[t + 1] + run]
            s0 = s1 = s2 = s3 = r0 = r1 = r2 = r3 = zero
            for j in range(run):
                p, q = u[j], v[j]
                s0 += g0[j] * p
                s1 += g1[j] * p
                s2 += g2[j] * p
                s3 += g3[j] * p
                r0 += g0[j] * q
                r1 += g1[j] * q
                r2 += g2[j] * q
                r3 += g3[j] * q
            sums = (s0, s1, s2, s3)
            rests = (r0, r1, r2, r3)
            for b in range(ob):
                partial[n, o0 + b, c, t] = sums[b]
                partial[n, o0 + b, c, t + 1] = rests[b]
        if taps % 2:
            t = taps - 1
            u = planes[phase[t], n, c0 + c, offset[t] : offset[t] + run]
            s0 = s1 = s2 = s3 = zero
            for j in range(run):
                p = u[j]
                s0 += g0[j] * p
                s1 += g1[j] * p
                s2 += g2[j] * p
                s3 += g3[j] * p
            sums = (s0, s1, s2, s3)
            for b in range(ob):
                partial[n, o0 + b, c, t] = sums[b]


# ---------------------------------------------------------------- matrix products split over numba's threads
# (kernels/_blas.py: why, and which BLAS)


@njit(nogil=True, cache=True, parallel=True)
def gemm_split_parallel(gemm, ta, tb, m, n, k, a, lda, step_a, b, ldb, step_b, out, bias, use_bias, starts,
                        by_rows):  # pragma: no cover (compiled)
    """``out = op(A) @ op(B) (+ bias on every row)``, one BLAS call per chunk on numba's threads.

    ``gemm`` is a ``cblas_?gemm`` function pointer (``_blas``); ``a``/``b`` are the operands' addresses with
    their transpose flags and leading dimensions as BLAS takes them; ``out`` (M, N) is C-ordered. The chunks
    are ``starts[t]:starts[t + 1]`` of the rows of ``out`` (``by_rows``) or of its columns; ``step_a`` is the
    byte distance between rows of op(A), ``step_b`` between columns of op(B). ``bias`` (N,) is added to each
    chunk after its product, as ``_threads.matmul``'s pool path does."""
    ldc = out.shape[1]
    c = out.ctypes.data
    size = out.itemsize
    for t in prange(starts.size - 1):
        s0, s1 = starts[t], starts[t + 1]
        if by_rows:
            gemm(101, ta, tb, s1 - s0, n, k, 1.0, a + s0 * step_a, lda, b, ldb, 0.0, c + s0 * ldc * size, ldc)
            if use_bias:
                for i in range(s0, s1):
                    for j in range(n):
                        out[i, j] += bias[j]
        else:
            gemm(101, ta, tb, m, s1 - s0, k, 1.0, a, lda, b + s0 * step_b, ldb, 0.0, c + s0 * size, ldc)
            if use_bias:
                for i in range(m):
                    for j in range(s0, s1):
                        out[i, j] += bias[j]


# ---------------------------------------------------------------- hubkit's float32 product (kernels/_sgemm.py)
# The loops around the LLVM micro-kernels of ``_sgemm`` (12 x 32 blocks of C), BLIS's order: for each block of
# K, each panel of B (its columns packed as 32-wide slivers, ``k``-major, zero-padded: about 0.7 MB, which stays
# in the core's L2 cache) is swept by 12-row slivers of A (read in place when its rows are contiguous, else
# packed), each of which stays in L1 while the micro-kernel runs over every sliver of the panel. A product of few
# rows (a part of at most _SGEMM_STREAM_ROWS) whose B has contiguous rows reads B in place instead: packing would
# copy each value of B for a handful of uses (a grouped convolution's 48 output channels over 6,144 inputs).
_SGEMM_KC = 384  # largest block of K (A's 12-row sliver: 18 KB; a 32-column sliver of B: 48 KB)
_SGEMM_NC = 480  # largest panel of B's columns
_SGEMM_STREAM_ROWS = 96


@njit(nogil=True, cache=True)
def sgemm_k_blocks(k):  # pragma: no cover (compiled)
    """The size of each block of K (all but the last equal): the fewest blocks of at most ``_SGEMM_KC``."""
    blocks = (k + _SGEMM_KC - 1) // _SGEMM_KC
    return (k + blocks - 1) // blocks


@njit(nogil=True, cache=True)
def _sgemm_edge(tile, out, bias, i0, c0, h, w, mode):  # pragma: no cover (compiled)
    """Write the valid ``h`` x ``w`` corner of an edge block computed whole into ``tile``, as the kernel would."""
    for r in range(h):
        for j in range(w):
            if mode == 0:
                out[i0 + r, c0 + j] = tile[r, j]
            elif mode == 1:
                out[i0 + r, c0 + j] = out[i0 + r, c0 + j] + tile[r, j]
            else:
                out[i0 + r, c0 + j] = tile[r, j] + bias[c0 + j]


@njit(nogil=True, cache=True)
def _sgemm_part(kernels, a, b, out, bias, use_bias, r0, r1, n0, n1):  # pragma: no cover (compiled)
    """``out[r0:r1, n0:n1] = a[r0:r1] @ b[:, n0:n1] (+ bias[n0:n1])`` on this thread (float32; ``out``'s
    columns adjacent; every stride a whole number of floats)."""
    k = a.shape[1]
    if k == 0:
        for i in range(r0, r1):
            for j in range(n0, n1):
                out[i, j] = bias[j] if use_bias else 0.0
        return
    kc_max = sgemm_k_blocks(k)
    stream = r1 - r0 <= _SGEMM_STREAM_ROWS and b.strides[1] == 4
    width = n1 - n0
    chunks = (width + _SGEMM_NC - 1) // _SGEMM_NC
    step = ((width + chunks - 1) // chunks + 31) // 32 * 32
    # The scratch buffers are handed to _sgemm_blocks as arguments: it reaches them only through raw addresses,
    # and numba frees a local array after its last use as an array, not after the last use of its address.
    panel = np.empty(((min(step, width) + 31) // 32 if not stream else 1, kc_max, 32), dtype=np.float32)
    slivers_a = (r1 - r0 + 11) // 12 if stream else 1
    packed_a = np.empty(slivers_a * kc_max * 12 + 4, dtype=np.float32)  # + 4: pack_a stores 16-float vectors
    tile = np.empty((12, 32), dtype=np.float32)
    _sgemm_blocks(kernels, a, b, out, bias, use_bias, r0, r1, n0, n1, kc_max, stream, step, panel, packed_a, tile)


@njit(nogil=True, cache=True)
def _sgemm_blocks(kernels, a, b, out, bias, use_bias, r0, r1, n0, n1, kc_max, stream, step, panel, packed_a,
                  tile):  # pragma: no cover (compiled)
    """:func:`_sgemm_part`'s loops, with its scratch buffers: ``panel`` (B's packed slivers), ``packed_a`` (A's)
    and ``tile`` (an edge block)."""
    rows_kernel, packed_kernel, stream_kernel, pack_a, pack_b = kernels
    k = a.shape[1]
    lda, a_step = a.strides[0] // 4, a.strides[1] // 4  # in floats
    ldb, b_step = b.strides[0] // 4, b.strides[1] // 4
    ldc = out.strides[0] // 4
    rows_in_place = a_step == 1
    slivers_a = (r1 - r0 + 11) // 12 if stream else 1
    a_base, b_base, out_base, bias_base = a.ctypes.data, b.ctypes.data, out.ctypes.data, bias.ctypes.data
    panel_base, packed_base, tile_base = panel.ctypes.data, packed_a.ctypes.data, tile.ctypes.data
    for p0 in range(0, k, kc_max):
        kc = min(kc_max, k - p0)
        mode = (2 if use_bias else 0) if p0 == 0 else 1
        if stream:
            for t in range(slivers_a):
                i0 = r0 + 12 * t
                pack_a(kc, a_base + (i0 * lda + p0 * a_step) * 4, a_step, lda, packed_base + t * kc_max * 48,
                       min(12, r1 - i0))  # fmt: skip
            for c0 in range(n0, n1, 32):
                w = min(32, n1 - c0)
                if w == 32:
                    b_ptr, b_ld = b_base + (p0 * ldb + c0) * 4, ldb
                else:  # the last columns: packed, so the kernel reads nothing past them
                    pack_b(kc, b_base + (p0 * ldb + c0) * 4, ldb, 1, panel_base, w)
                    b_ptr, b_ld = panel_base, 32
                for t in range(slivers_a):
                    i0 = r0 + 12 * t
                    h = min(12, r1 - i0)
                    full = h == 12 and w == 32
                    c_ptr, c_ld = (out_base + (i0 * ldc + c0) * 4, ldc) if full else (tile_base, 32)
                    stream_kernel(kc, packed_base + t * kc_max * 48, 0, b_ptr, b_ld, c_ptr, c_ld,
                                  mode if full else 0, bias_base + c0 * 4)  # fmt: skip
                    if not full:
                        _sgemm_edge(tile, out, bias, i0, c0, h, w, mode)
            continue
        for j0 in range(n0, n1, step):
            nb = min(step, n1 - j0)
            slivers = (nb + 31) // 32
            for s in range(slivers):
                c0 = j0 + 32 * s
                pack_b(kc, b_base + (p0 * ldb + c0 * b_step) * 4, ldb, b_step, panel_base + s * kc_max * 128,
                       min(32, n1 - c0))  # fmt: skip
            for i0 in range(r0, r1, 12):
                h = min(12, r1 - i0)
                in_place = h == 12 and rows_in_place
                if in_place:
                    a_ptr = a_base + (i0 * lda + p0) * 4
                else:
                    pack_a(kc, a_base + (i0 * lda + p0 * a_step) * 4, a_step, lda, packed_base, h)
                    a_ptr = packed_base
                for s in range(slivers):
                    c0 = j0 + 32 * s
                    w = min(32, n1 - c0)
                    full = h == 12 and w == 32
                    # an edge block is computed whole into ``tile``, its valid part then written as the kernel would
                    c_ptr, c_ld = (out_base + (i0 * ldc + c0) * 4, ldc) if full else (tile_base, 32)
                    b_ptr, c_mode = panel_base + s * kc_max * 128, mode if full else 0
                    if in_place:
                        rows_kernel(kc, a_ptr, lda, b_ptr, 32, c_ptr, c_ld, c_mode, bias_base + c0 * 4)
                    else:
                        packed_kernel(kc, a_ptr, 0, b_ptr, 32, c_ptr, c_ld, c_mode, bias_base + c0 * 4)
                    if not full:
                        _sgemm_edge(tile, out, bias, i0, c0, h, w, mode)


@njit(nogil=True, cache=True)
def sgemm(rows_kernel, packed_kernel, stream_kernel, pack_a, pack_b, a, b, out, bias, use_bias):  # pragma: no cover
    """``out = a @ b (+ bias)`` for float32 ``a`` (M, K), ``b`` (K, N) of any strides and ``out`` (M, N) with
    adjacent columns, on this thread; ``bias`` (N,) contiguous (any float32 array when not ``use_bias``). The
    routines are ``_sgemm.microkernels().functions``."""
    kernels = (rows_kernel, packed_kernel, stream_kernel, pack_a, pack_b)
    _sgemm_part(kernels, a, b, out, bias, use_bias, 0, a.shape[0], 0, b.shape[1])


@njit(nogil=True, cache=True, parallel=True)
def sgemm_parallel(rows_kernel, packed_kernel, stream_kernel, pack_a, pack_b, a, b, out, bias, use_bias, starts,
                   by_rows):  # pragma: no cover (compiled)
    """:func:`sgemm` split over numba's threads: chunk ``t`` is ``starts[t]:starts[t + 1]`` of the rows of
    ``out`` (``by_rows``) or of its columns (then each thread packs only its own columns of ``b``). Every entry
    is computed as :func:`sgemm` computes it, whatever the chunks."""
    kernels = (rows_kernel, packed_kernel, stream_kernel, pack_a, pack_b)
    for t in prange(starts.size - 1):
        if by_rows:
            _sgemm_part(kernels, a, b, out, bias, use_bias, starts[t], starts[t + 1], 0, b.shape[1])
        else:
            _sgemm_part(kernels, a, b, out, bias, use_bias, 0, a.shape[0], starts[t], starts[t + 1])


@njit(nogil=True, cache=True, parallel=True)
def parallel_probe(x):  # pragma: no cover (compiled)
    """A trivial parallel loop: its first call starts numba's threading layer (``_jit.parallel_threads``)."""
    for i in prange(x.shape[0]):
        x[i] += 1


# One (image, channel block) per iteration, so a batch of one still keeps every thread busy: the serial drivers
# run in hubkit's pool threads (or alone), the parallel ones on numba's threads (``_jit.parallel_threads``).
# Each output entry is written by one iteration, so results do not depend on the thread count.


@njit(nogil=True, cache=True)
def direct_conv(planes, wb, bias, blocks, phase, offset, pw, y):  # pragma: no cover (compiled)
    """``y`` (M, OC, OH, OW) = the convolution of the M images of ``planes`` plus ``bias`` (OC,). ``wb``
    (K, C/G, T, 4): block ``k``'s weights, ``wb[k, c, t, b] = w[blocks[k, 0] + b, c, t]``."""
    for n in range(y.shape[0]):
        for k in range(blocks.shape[0]):
            _direct_conv_block(planes, wb, bias, blocks, phase, offset, pw, y, n, k)


@njit(nogil=True, cache=True, parallel=True)
def direct_conv_parallel(planes, wb, bias, blocks, phase, offset, pw, y):  # pragma: no cover (compiled)
    """:func:`direct_conv` over numba's threads."""
    jobs = blocks.shape[0]
    for i in prange(y.shape[0] * jobs):
        _direct_conv_block(planes, wb, bias, blocks, phase, offset, pw, y, i // jobs, i % jobs)


@njit(nogil=True, cache=True)
def direct_conv_grad_input(gyw, wb, blocks, phase, offset, gplanes):  # pragma: no cover (compiled)
    """Adjoint of :func:`direct_conv`: ``gplanes`` (P, M, C, L) = ``gyw`` (M, OC, OH*PW), the output gradient
    in the wide layout (zeros in the discarded entries: they land on real pixels), spread back over the taps.
    ``blocks`` are blocks of input channels and ``wb`` (K, OC/G, T, 4) their weights,
    ``wb[k, o, t, b] = w[g*OC/G + o, blocks[k, 0] - g*C/G + b, t]`` for the block's group ``g``. ``gplanes``
    has three spare channels per group after the C real ones: a group's partial block adds its unused rows into
    those (one expression for all four rows keeps the loop vectorised; a separate array did not). Every entry
    of the real channels is written."""
    for n in range(gyw.shape[0]):
        for k in range(blocks.shape[0]):
            _direct_conv_grad_input_block(gyw, wb, blocks, phase, offset, gplanes, n, k)


@njit(nogil=True, cache=True, parallel=True)
def direct_conv_grad_input_parallel(gyw, wb, blocks, phase, offset, gplanes):  # pragma: no cover (compiled)
    """:func:`direct_conv_grad_input` over numba's threads."""
    jobs = blocks.shape[0]
    for i in prange(gyw.shape[0] * jobs):
        _direct_conv_grad_input_block(gyw, wb, blocks, phase, offset, gplanes, i // jobs, i % jobs)


@njit(nogil=True, cache=True)
def direct_conv_grad_weight(planes, gyw, blocks, phase, offset, partial):  # pragma: no cover (compiled)
    """``partial`` (M, OC, C/G, T) = per image, the weight gradient of :func:`direct_conv`: the dot product
    of each output channel's wide gradient ``gyw`` (M, OC, OH*PW; zeros in the discarded entries) with each
    tap's run of ``planes``. ``blocks`` are blocks of output channels. The caller sums over images (a fixed
    order for any thread count)."""
    for n in range(gyw.shape[0]):
        for k in range(blocks.shape[0]):
            _direct_conv_grad_weight_block(planes, gyw, blocks, phase, offset, partial, n, k)


@njit(nogil=True, cache=True, parallel=True)
def direct_conv_grad_weight_parallel(planes, gyw, blocks, phase, offset, partial):  # pragma: no cover (compiled)
    """:func:`direct_conv_grad_weight` over numba's threads."""
    jobs = blocks.shape[0]
    for i in prange(gyw.shape[0] * jobs):
        _direct_conv_grad_weight_block(planes, gyw, blocks, phase, offset, partial, i // jobs, i % jobs)


# ---------------------------------------------------------------- Winograd F(2x2, 3x3) (cpu_winograd.py)
# Tiles of 2x2 outputs read 4x4 inputs; tile row r is image r // TH, tile row r % TH, and the tiles of rows
# r0:r1 are columns (r - r0)*TW + tx of the transformed operands. Each loop runs along a row of tiles.


@njit(nogil=True, cache=True)
def _tile_rows(x, d, n, c, top, pl):  # pragma: no cover (compiled)
    """Rows ``top:top + len(d)`` of channel ``c`` of image ``n`` of ``x`` into ``d``, shifted right by ``pl`` columns;
    zeros where they fall outside ``x`` (the padding)."""
    h, w, width = x.shape[2], x.shape[3], d.shape[1]
    first, last = min(pl, width), min(pl + w, width)
    for i in range(d.shape[0]):
        iy = top + i
        row = d[i]
        if 0 <= iy < h:
            src = x[n, c, iy]
            for j in range(first):
                row[j] = 0
            for j in range(first, last):
                row[j] = src[j - pl]
            for j in range(last, width):
                row[j] = 0
        else:
            for j in range(width):
                row[j] = 0


@njit(nogil=True, cache=True)
def winograd_input(x, v, r0, r1, th, tw, pt, pl):  # pragma: no cover (compiled)
    """``v`` (16, C, (r1-r0)*TW) = B^T d B for every 4x4 input tile ``d`` of tile rows r0:r1 of ``x``
    (N, C, H, W), padded by ``pt`` rows on top and ``pl`` columns on the left (zeros past every edge)."""
    width = 2 * tw + 2
    d = np.empty((4, width), dtype=x.dtype)
    t = np.empty((4, width), dtype=x.dtype)
    for c in range(x.shape[1]):
        for r in range(r0, r1):
            n, ty = r // th, r % th
            _tile_rows(x, d, n, c, 2 * ty - pt, pl)
            for j in range(width):  # B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3
                t[0, j] = d[0, j] - d[2, j]
                t[1, j] = d[1, j] + d[2, j]
                t[2, j] = d[2, j] - d[1, j]
                t[3, j] = d[1, j] - d[3, j]
            base = (r - r0) * tw
            for i in range(4):  # (B^T d) B: the same along each tile's four columns
                ti = t[i]
                k = 4 * i
                for tx in range(tw):
                    a0, a1, a2, a3 = ti[2 * tx], ti[2 * tx + 1], ti[2 * tx + 2], ti[2 * tx + 3]
                    v[k, c, base + tx] = a0 - a2
                    v[k + 1, c, base + tx] = a1 + a2
                    v[k + 2, c, base + tx] = a2 - a1
                    v[k + 3, c, base + tx] = a1 - a3


@njit(nogil=True, cache=True)
def winograd_output(m, bias, y, r0, r1, th, tw):  # pragma: no cover (compiled)
    """``y`` (N, OC, OH, OW) tiles of rows r0:r1 = A^T M A (+ ``bias`` (OC,), or size 0) from ``m``
    (16, OC, (r1-r0)*TW), the products of the transformed tiles and weights."""
    oh, ow = y.shape[2], y.shape[3]
    full = ow // 2  # tiles whose two columns are both inside the output
    s = np.empty((8, tw), dtype=y.dtype)
    for o in range(m.shape[1]):
        b = bias[o] if bias.size else y.dtype.type(0)
        for r in range(r0, r1):
            n, ty = r // th, r % th
            base = (r - r0) * tw
            for j in range(4):  # A^T M: rows m0 + m1 + m2 and m1 - m2 - m3, per tile column j
                for tx in range(tw):
                    p = base + tx
                    m0, m1, m2, m3 = m[j, o, p], m[4 + j, o, p], m[8 + j, o, p], m[12 + j, o, p]
                    s[j, tx] = m0 + m1 + m2
                    s[4 + j, tx] = m1 - m2 - m3
            for a in range(2):
                oy = 2 * ty + a
                if oy >= oh:
                    break
                out = y[n, o, oy]
                q = 4 * a
                for tx in range(full):
                    s1, s2 = s[q + 1, tx], s[q + 2, tx]
                    out[2 * tx] = s[q, tx] + s1 + s2 + b
                    out[2 * tx + 1] = s1 - s2 - s[q + 3, tx] + b
                if full < tw:
                    out[2 * full] = s[q, full] + s[q + 1, full] + s[q + 2, full] + b


# ---------------------------------------------------------------- Winograd F(4x4, 3x3) (cpu_winograd.py)
# Tiles of 4x4 outputs read 6x6 inputs (interpolation points 0, +-1, +-2 and infinity); tile row r is image
# r // TH, tile row r % TH, as for F(2x2, 3x3) above. B^T applied to a 6-vector a is
#   (4a0 - 5a2 + a4, -4a1 - 4a2 + a3 + a4, 4a1 - 4a2 - a3 + a4, -2a1 - a2 + 2a3 + a4, 2a1 - a2 - 2a3 + a4,
#    4a1 - 5a3 + a5)
# and A^T to m: (m0 + m1 + m2 + m3 + m4, m1 - m2 + 2m3 - 2m4, m1 + m2 + 4m3 + 4m4, m1 - m2 + 8m3 - 8m4 + m5).


@njit(nogil=True, cache=True, fastmath={"contract"})
def winograd4_input(x, v, r0, r1, th, tw, pt, pl):  # pragma: no cover (compiled)
    """``v`` (36, C, (r1-r0)*TW) = B^T d B for every 6x6 input tile ``d`` of tile rows r0:r1 of ``x``
    (N, C, H, W), padded by ``pt`` rows on top and ``pl`` columns on the left (zeros past every edge)."""
    width = 4 * tw + 2
    d = np.empty((6, width), dtype=x.dtype)
    t = np.empty((6, width), dtype=x.dtype)
    two, four, five = x.dtype.type(2), x.dtype.type(4), x.dtype.type(5)
    for c in range(x.shape[1]):
        for r in range(r0, r1):
            n, ty = r // th, r % th
            _tile_rows(x, d, n, c, 4 * ty - pt, pl)
            for j in range(width):  # B^T d, down each column
                a0, a1, a2, a3, a4, a5 = d[0, j], d[1, j], d[2, j], d[3, j], d[4, j], d[5, j]
                t[0, j] = four * a0 - five * a2 + a4
                t[1, j] = a3 + a4 - four * (a1 + a2)
                t[2, j] = a4 - a3 + four * (a1 - a2)
                t[3, j] = a4 - a2 + two * (a3 - a1)
                t[4, j] = a4 - a2 - two * (a3 - a1)
                t[5, j] = four * a1 - five * a3 + a5
            base = (r - r0) * tw
            for i in range(6):  # (B^T d) B: the same along each tile's six columns
                ti = t[i]
                k = 6 * i
                for tx in range(tw):
                    q = 4 * tx
                    a0, a1, a2, a3, a4, a5 = ti[q], ti[q + 1], ti[q + 2], ti[q + 3], ti[q + 4], ti[q + 5]
                    col = base + tx
                    v[k, c, col] = four * a0 - five * a2 + a4
                    v[k + 1, c, col] = a3 + a4 - four * (a1 + a2)
                    v[k + 2, c, col] = a4 - a3 + four * (a1 - a2)
                    v[k + 3, c, col] = a4 - a2 + two * (a3 - a1)
                    v[k + 4, c, col] = a4 - a2 - two * (a3 - a1)
                    v[k + 5, c, col] = four * a1 - five * a3 + a5


@njit(nogil=True, cache=True, fastmath={"contract"})
def winograd4_output(m, bias, y, r0, r1, th, tw):  # pragma: no cover (compiled)
    """``y`` (N, OC, OH, OW) tiles of rows r0:r1 = A^T M A (+ ``bias`` (OC,), or size 0) from ``m``
    (36, OC, (r1-r0)*TW), the products of the transformed tiles and weights."""
    oh, ow = y.shape[2], y.shape[3]
    full = ow // 4  # tiles whose four columns are all inside the output
    rest = ow - 4 * full
    s = np.empty((24, tw), dtype=y.dtype)  # A^T M: row a of tile column j at s[6a + j]
    two, four, eight = y.dtype.type(2), y.dtype.type(4), y.dtype.type(8)
    for o in range(m.shape[1]):
        b = bias[o] if bias.size else y.dtype.type(0)
        for r in range(r0, r1):
            n, ty = r // th, r % th
            base = (r - r0) * tw
            for j in range(6):
                for tx in range(tw):
                    p = base + tx
                    m0, m1, m2 = m[j, o, p], m[6 + j, o, p], m[12 + j, o, p]
                    m3, m4, m5 = m[18 + j, o, p], m[24 + j, o, p], m[30 + j, o, p]
                    s[j, tx] = m0 + (m1 + m2) + (m3 + m4)
                    s[6 + j, tx] = (m1 - m2) + two * (m3 - m4)
                    s[12 + j, tx] = (m1 + m2) + four * (m3 + m4)
                    s[18 + j, tx] = (m1 - m2) + eight * (m3 - m4) + m5
            for a in range(4):
                oy = 4 * ty + a
                if oy >= oh:
                    break
                out = y[n, o, oy]
                q = 6 * a
                for tx in range(full):
                    s0, s1, s2 = s[q, tx], s[q + 1, tx], s[q + 2, tx]
                    s3, s4, s5 = s[q + 3, tx], s[q + 4, tx], s[q + 5, tx]
                    out[4 * tx] = s0 + (s1 + s2) + (s3 + s4) + b
                    out[4 * tx + 1] = (s1 - s2) + two * (s3 - s4) + b
                    out[4 * tx + 2] = (s1 + s2) + four * (s3 + s4) + b
                    out[4 * tx + 3] = (s1 - s2) + eight * (s3 - s4) + s5 + b
                if rest:
                    s0, s1, s2, s3, s4, s5 = (s[q, full], s[q + 1, full], s[q + 2, full], s[q + 3, full],
                                              s[q + 4, full], s[q + 5, full])  # fmt: skip
                    x0 = 4 * full
                    out[x0] = s0 + (s1 + s2) + (s3 + s4) + b
                    if rest > 1:
                        out[x0 + 1] = (s1 - s2) + two * (s3 - s4) + b
                    if rest > 2:
                        out[x0 + 2] = (s1 + s2) + four * (s3 + s4) + b


# ---------------------------------------------------------------- padding copies (cpu_conv.py's wide columns)
# Many short rows (LeNet's are 10-32 pixels): numpy spends most of such a copy stepping between rows, and
# zeroing a whole buffer before copying its interior writes it twice.


# The wide layout's copies (cpu_wide.planes and widen) index flat arrays with unsigned offsets: slicing a row
# view per image row cost numba's reference counting on every one of ~100,000 short rows (the MNIST example's
# padded output gradient: 2.8 ms one thread, 1.2 ms flat, 0.5 ms flat on two threads).


@njit(nogil=True, cache=True)
def _pad_range(x, out, pt, pl, r0, r1):  # pragma: no cover (compiled)
    """Rows ``r0:r1`` of :func:`pad_rows`."""
    h, w = x.shape[1], x.shape[2]
    ph, pw = out.shape[1], out.shape[2]
    src, dst = x.reshape(-1), out.reshape(-1)
    for r in range(r0, r1):
        for i in range(ph):
            row = np.uint64((r * ph + i) * pw)
            if i < pt or i >= pt + h:
                for j in range(pw):
                    dst[row + np.uint64(j)] = 0
                continue
            for j in range(pl):
                dst[row + np.uint64(j)] = 0
            at, first = row + np.uint64(pl), np.uint64((r * h + i - pt) * w)
            for j in range(w):
                dst[at + np.uint64(j)] = src[first + np.uint64(j)]
            for j in range(pl + w, pw):
                dst[row + np.uint64(j)] = 0


@njit(nogil=True, cache=True)
def pad_rows(x, out, pt, pl):  # pragma: no cover (compiled)
    """``out`` (R, PH, PW) = ``x`` (R, H, W) at offset (pt, pl), zeros elsewhere; every entry written once.
    Both C-contiguous."""
    _pad_range(x, out, pt, pl, 0, x.shape[0])


@njit(nogil=True, cache=True, parallel=True)
def pad_rows_parallel(x, out, pt, pl, chunks):  # pragma: no cover (compiled)
    """:func:`pad_rows` in ``chunks`` contiguous ranges of rows over numba's threads."""
    n = x.shape[0]
    for i in prange(chunks):
        _pad_range(x, out, pt, pl, i * n // chunks, (i + 1) * n // chunks)


@njit(nogil=True, cache=True)
def _widen_range(g, out, r0, r1):  # pragma: no cover (compiled)
    """Rows ``r0:r1`` of :func:`widen_rows`."""
    w, pw = g.shape[1], out.shape[1]
    src, dst = g.reshape(-1), out.reshape(-1)
    for r in range(r0, r1):
        at, first = np.uint64(r * pw), np.uint64(r * w)
        for j in range(w):
            dst[at + np.uint64(j)] = src[first + np.uint64(j)]
        for j in range(w, pw):
            dst[at + np.uint64(j)] = 0


@njit(nogil=True, cache=True)
def widen_rows(g, out):  # pragma: no cover (compiled)
    """``out`` (R, PW) = rows of ``g`` (R, W) followed by zeros. Both C-contiguous."""
    _widen_range(g, out, 0, g.shape[0])


@njit(nogil=True, cache=True, parallel=True)
def widen_rows_parallel(g, out, chunks):  # pragma: no cover (compiled)
    """:func:`widen_rows` in ``chunks`` contiguous ranges of rows over numba's threads."""
    n = g.shape[0]
    for i in prange(chunks):
        _widen_range(g, out, i * n // chunks, (i + 1) * n // chunks)


# ---------------------------------------------------------------- optimizer (cpu_elementwise.sgd_update)


@njit(nogil=True, cache=True)
def sgd_momentum(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):  # pragma: no cover
    """torch's SGD with momentum on flat ``p``/``g``/``buf`` in one pass (``first``: ``buf = g``)."""
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0:
            d += weight_decay * p[i]
        b = d if first else buf[i] * momentum + (1 - dampening) * d
        buf[i] = b
        p[i] -= lr * (d + momentum * b if nesterov else b)


@njit(nogil=True, cache=True, parallel=True)
def sgd_momentum_parallel(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first,
                          chunks):  # pragma: no cover (compiled)  # fmt: skip
    """:func:`sgd_momentum` in ``chunks`` contiguous ranges over numba's threads."""
    n = p.size
    for i in prange(chunks):
        a, b = i * n // chunks, (i + 1) * n // chunks
        sgd_momentum(p[a:b], g[a:b], buf[a:b], lr, momentum, dampening, weight_decay, nesterov, maximize, first)


@njit(nogil=True, cache=True)
def adam(p, g, m, v, vmax, use_max, decay_factor, weight_decay, decoupled, maximize, beta1, beta2, one_minus_beta1,
         one_minus_beta2, bias2_sqrt, eps, step_size, flush):  # pragma: no cover (compiled)  # fmt: skip
    """torch's Adam/AdamW on flat arrays in one pass, the operations in ``generic.adam_update``'s order (the same
    rounding). ``vmax`` is the amsgrad buffer (``use_max``); ``decay_factor`` = 1 - lr * weight_decay (AdamW).
    Moment entries of magnitude below ``flush`` become 0 (``cpu_elementwise.adam_update``)."""
    zero = p.dtype.type(0)
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0:
            if decoupled:
                p[i] *= decay_factor
            else:
                d = d + weight_decay * p[i]
        mi = m[i] * beta1 + one_minus_beta1 * d
        mi = zero if -flush < mi < flush else mi
        m[i] = mi
        vi = v[i] * beta2 + one_minus_beta2 * (d * d)
        vi = zero if vi < flush else vi
        v[i] = vi
        second = vi
        if use_max:
            old = vmax[i]
            second = vi if (vi > old or vi != vi) else old  # np.maximum: a NaN on either side wins
            vmax[i] = second
        denom = np.sqrt(second) / bias2_sqrt + eps
        p[i] -= mi / denom * step_size


@njit(nogil=True, cache=True, parallel=True)
def adam_parallel(p, g, m, v, vmax, use_max, decay_factor, weight_decay, decoupled, maximize, beta1, beta2,
                  one_minus_beta1, one_minus_beta2, bias2_sqrt, eps, step_size, flush,
                  chunks):  # pragma: no cover (compiled)  # fmt: skip
    """:func:`adam` in ``chunks`` contiguous ranges over numba's threads."""
    n = p.size
    for i in prange(chunks):
        a, b = i * n // chunks, (i + 1) * n // chunks
        adam(p[a:b], g[a:b], m[a:b], v[a:b], vmax[a:b] if use_max else vmax, use_max, decay_factor, weight_decay,
             decoupled, maximize, beta1, beta2, one_minus_beta1, one_minus_beta2, bias2_sqrt, eps, step_size, flush)


@njit(nogil=True, cache=True)
def adadelta(p, g, square_avg, acc_delta, lr, rho, one_minus_rho, eps, decay, flush):  # pragma: no cover
    """torch's Adadelta on flat arrays in one pass (``decay``: the weight decay), the operations in the numpy
    reference's order, so the same float rounding: see ``optim/adadelta.py``. State entries below ``flush`` become
    0 (see there: ``_flush_below``)."""
    zero = square_avg.dtype.type(0)
    for i in range(p.size):
        d = g[i]
        if decay != 0:
            d = d + decay * p[i]
        v = square_avg[i] * rho + one_minus_rho * (d * d)
        v = zero if v < flush else v
        square_avg[i] = v
        delta = np.sqrt(acc_delta[i] + eps) / np.sqrt(v + eps) * d
        a = acc_delta[i] * rho + one_minus_rho * (delta * delta)
        acc_delta[i] = zero if a < flush else a
        p[i] -= lr * delta


@njit(nogil=True, cache=True, parallel=True)
def adadelta_parallel(p, g, square_avg, acc_delta, lr, rho, one_minus_rho, eps, decay, flush,
                      chunks):  # pragma: no cover  # fmt: skip
    """:func:`adadelta` in ``chunks`` contiguous ranges over numba's threads."""
    n = p.size
    for i in prange(chunks):
        a, b = i * n // chunks, (i + 1) * n // chunks
        adadelta(p[a:b], g[a:b], square_avg[a:b], acc_delta[a:b], lr, rho, one_minus_rho, eps, decay, flush)
