"""GPU kernels on cupy arrays, with the names, signatures and results of ``cpu.py``.

Convolutions run on cuDNN where NVIDIA's cuDNN wheel is installed (``kernels/cudnn.py``: TF32 and the
algorithm rules follow ``hubkit.backends.cudnn``, as torch's do). Otherwise, and for what cuDNN cannot
describe (asymmetric padding), convolution is im2col (an ElementwiseKernel, one thread per column element)
plus one cuBLAS GEMM through ``cupy.matmul``. Every backward kernel of our own is gather-style: each thread
owns one *input* element and sums the outputs that read it, so there are no atomics and results are
deterministic (run to run and against the CPU up to float rounding order). Pooling keeps its argmax as int32.

This module imports cupy at the top: it is only ever imported by ``hubkit.kernels.kernels_for`` when a
cupy array arrives.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import cupy as cp
import numpy as np

from hubkit.kernels import cudnn, generic
from hubkit.kernels.shapes import (
    conv_out_size,
    linear_indices,
    nearest_indices,
    pool_extra_pad,
    pool_out_size,
)

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]

# conv2d(..., keep_columns=True) keeps its im2col matrix for the weight gradient up to this size; larger
# ones are rebuilt in backward (an im2col is cheap next to holding 9x a layer's input in GPU memory).
_KEEP_COLUMNS_BYTES = 16 << 20

# Geometry arguments shared by the window kernels, in this order.
_GEOMETRY = (
    "int32 n, int32 c, int32 h, int32 w, int32 kh, int32 kw, int32 oh, int32 ow, "
    "int32 sy, int32 sx, int32 pt, int32 pl, int32 dy, int32 dx"
)

_im2col_kernel = cp.ElementwiseKernel(
    "raw T img, " + _GEOMETRY + ", T pad_value",
    "T col",
    """
    // i runs over col (C, KH, KW, N, OH, OW)
    ptrdiff_t rest = i;
    const int j = rest % ow; rest /= ow;
    const int r = rest % oh; rest /= oh;
    const int b = rest % n; rest /= n;
    const int kx = rest % kw; rest /= kw;
    const int ky = rest % kh;
    const int ch = rest / kh;
    const int y = r * sy - pt + ky * dy;
    const int x = j * sx - pl + kx * dx;
    if (y >= 0 && y < h && x >= 0 && x < w) {
        col = img[(((ptrdiff_t)b * c + ch) * h + y) * w + x];
    } else {
        col = pad_value;
    }
    """,
    "hubkit_im2col",
)

_col2im_kernel = cp.ElementwiseKernel(
    "raw T col, " + _GEOMETRY,
    "T img",
    """
    // i runs over img (N, C, H, W); gather every column entry that read this pixel
    const int x = i % w;
    const int y = (i / w) % h;
    const int ch = (i / ((ptrdiff_t)w * h)) % c;
    const int b = i / ((ptrdiff_t)w * h * c);
    T val = 0;
    for (int ky = 0; ky < kh; ++ky) {
        const int ys = y + pt - ky * dy;
        if (ys < 0 || ys % sy != 0 || ys / sy >= oh) continue;
        const int r = ys / sy;
        for (int kx = 0; kx < kw; ++kx) {
            const int xs = x + pl - kx * dx;
            if (xs < 0 || xs % sx != 0 || xs / sx >= ow) continue;
            const int q = xs / sx;
            val += col[((((ptrdiff_t)ch * kh + ky) * kw + kx) * n + b) * oh * ow + (ptrdiff_t)r * ow + q];
        }
    }
    img = val;
    """,
    "hubkit_col2im",
)

_max_pool_kernel = cp.ElementwiseKernel(
    "raw T x, " + _GEOMETRY + ", T neg_inf",
    "T y, int32 arg",
    """
    // i runs over y (N, C, OH, OW); PyTorch's rule: first maximum wins, NaN propagates.
    // neg_inf comes from the caller: NVRTC has no INFINITY macro.
    const int q = i % ow;
    const int r = (i / ow) % oh;
    const ptrdiff_t plane = i / ((ptrdiff_t)ow * oh);
    const T* src = &x[plane * h * w];
    T best = neg_inf;
    int best_k = -1;
    for (int ky = 0; ky < kh; ++ky) {
        const int yy = r * sy - pt + ky * dy;
        if (yy < 0 || yy >= h) continue;
        for (int kx = 0; kx < kw; ++kx) {
            const int xx = q * sx - pl + kx * dx;
            if (xx < 0 || xx >= w) continue;
            const T v = src[yy * w + xx];
            if (best_k < 0 || v > best || isnan(v)) {
                best = v;
                best_k = ky * kw + kx;
            }
        }
    }
    y = best;
    arg = best_k < 0 ? 0 : best_k;
    """,
    "hubkit_max_pool2d",
)

_max_pool_backward_kernel = cp.ElementwiseKernel(
    "raw T gy, raw int32 arg, " + _GEOMETRY,
    "T gx",
    """
    // i runs over gx (N, C, H, W); sum gy of every window whose winner is this pixel
    const int x = i % w;
    const int y = (i / w) % h;
    const ptrdiff_t plane = i / ((ptrdiff_t)w * h);
    const ptrdiff_t base = plane * oh * ow;
    T val = 0;
    for (int ky = 0; ky < kh; ++ky) {
        const int ys = y + pt - ky * dy;
        if (ys < 0 || ys % sy != 0 || ys / sy >= oh) continue;
        for (int kx = 0; kx < kw; ++kx) {
            const int xs = x + pl - kx * dx;
            if (xs < 0 || xs % sx != 0 || xs / sx >= ow) continue;
            const ptrdiff_t o = base + (ptrdiff_t)(ys / sy) * ow + xs / sx;
            if (arg[o] == ky * kw + kx) val += gy[o];
        }
    }
    gx = val;
    """,
    "hubkit_max_pool2d_backward",
)

# Divisor of output (r, q) for average pooling, PyTorch's rules; needs h, w, kh, kw, sy, sx, pt, pl,
# count_include_pad and divisor_override in scope.
_AVG_DIVISOR = """
__device__ int hubkit_avg_divisor(int r, int q, int h, int w, int kh, int kw, int sy, int sx,
                                  int pt, int pl, bool include_pad, int divisor_override) {
    if (divisor_override > 0) return divisor_override;
    int y0 = r * sy - pt, x0 = q * sx - pl;
    int y1 = min(y0 + kh, h + pt), x1 = min(x0 + kw, w + pl);
    if (include_pad) return (y1 - y0) * (x1 - x0);
    y0 = max(y0, 0); x0 = max(x0, 0); y1 = min(y1, h); x1 = min(x1, w);
    return (y1 - y0) * (x1 - x0);
}
"""

_avg_pool_kernel = cp.ElementwiseKernel(
    "raw T x, " + _GEOMETRY + ", bool include_pad, int32 divisor_override",
    "T y",
    """
    const int q = i % ow;
    const int r = (i / ow) % oh;
    const ptrdiff_t plane = i / ((ptrdiff_t)ow * oh);
    const T* src = &x[plane * h * w];
    T total = 0;
    for (int ky = 0; ky < kh; ++ky) {
        const int yy = r * sy - pt + ky;
        if (yy < 0 || yy >= h) continue;
        for (int kx = 0; kx < kw; ++kx) {
            const int xx = q * sx - pl + kx;
            if (xx >= 0 && xx < w) total += src[yy * w + xx];
        }
    }
    y = total / (T)hubkit_avg_divisor(r, q, h, w, kh, kw, sy, sx, pt, pl, include_pad, divisor_override);
    """,
    "hubkit_avg_pool2d",
    preamble=_AVG_DIVISOR,
)

_avg_pool_backward_kernel = cp.ElementwiseKernel(
    "raw T gy, " + _GEOMETRY + ", bool include_pad, int32 divisor_override",
    "T gx",
    """
    const int x = i % w;
    const int y = (i / w) % h;
    const ptrdiff_t plane = i / ((ptrdiff_t)w * h);
    T val = 0;
    for (int ky = 0; ky < kh; ++ky) {
        const int ys = y + pt - ky;
        if (ys < 0 || ys % sy != 0 || ys / sy >= oh) continue;
        const int r = ys / sy;
        for (int kx = 0; kx < kw; ++kx) {
            const int xs = x + pl - kx;
            if (xs < 0 || xs % sx != 0 || xs / sx >= ow) continue;
            const int q = xs / sx;
            val += gy[plane * oh * ow + (ptrdiff_t)r * ow + q]
                   / (T)hubkit_avg_divisor(r, q, h, w, kh, kw, sy, sx, pt, pl, include_pad, divisor_override);
        }
    }
    gx = val;
    """,
    "hubkit_avg_pool2d_backward",
    preamble=_AVG_DIVISOR,
)

# Adaptive windows: start = floor(i*in/out), end = ceil((i+1)*in/out).
_ADAPTIVE = """
__device__ int hubkit_start(int i, int in_size, int out_size) { return (int)(((long long)i * in_size) / out_size); }
__device__ int hubkit_end(int i, int in_size, int out_size) {
    return (int)((((long long)(i + 1)) * in_size + out_size - 1) / out_size);
}
"""

_adaptive_pool_kernel = cp.ElementwiseKernel(
    "raw T x, int32 h, int32 w, int32 oh, int32 ow, bool take_max",
    "T y, int64 index",
    """
    const int q = i % ow;
    const int r = (i / ow) % oh;
    const ptrdiff_t plane = i / ((ptrdiff_t)ow * oh);
    const T* src = &x[plane * h * w];
    const int y0 = hubkit_start(r, h, oh), y1 = hubkit_end(r, h, oh);
    const int x0 = hubkit_start(q, w, ow), x1 = hubkit_end(q, w, ow);
    T acc = take_max ? src[y0 * w + x0] : (T)0;
    long long where = (long long)y0 * w + x0;
    for (int yy = y0; yy < y1; ++yy) {
        for (int xx = x0; xx < x1; ++xx) {
            const T v = src[yy * w + xx];
            if (!take_max) {
                acc += v;
            } else if (v > acc || (isnan(v) && !isnan(acc))) {
                acc = v;
                where = (long long)yy * w + xx;
            }
        }
    }
    y = take_max ? acc : acc / (T)((y1 - y0) * (x1 - x0));
    index = where;
    """,
    "hubkit_adaptive_pool2d",
    preamble=_ADAPTIVE,
)

_adaptive_pool_backward_kernel = cp.ElementwiseKernel(
    "raw T gy, raw int64 index, int32 h, int32 w, int32 oh, int32 ow, bool take_max",
    "T gx",
    """
    // i runs over gx (N, C, H, W); visit every output window that contains this pixel
    const int x = i % w;
    const int y = (i / w) % h;
    const ptrdiff_t plane = i / ((ptrdiff_t)w * h);
    const int r_lo = max(hubkit_start(y, oh, h) - 1, 0), r_hi = min(hubkit_end(y, oh, h) + 1, oh);
    const int q_lo = max(hubkit_start(x, ow, w) - 1, 0), q_hi = min(hubkit_end(x, ow, w) + 1, ow);
    T val = 0;
    for (int r = r_lo; r < r_hi; ++r) {
        const int y0 = hubkit_start(r, h, oh), y1 = hubkit_end(r, h, oh);
        if (y < y0 || y >= y1) continue;
        for (int q = q_lo; q < q_hi; ++q) {
            const int x0 = hubkit_start(q, w, ow), x1 = hubkit_end(q, w, ow);
            if (x < x0 || x >= x1) continue;
            const ptrdiff_t o = plane * oh * ow + (ptrdiff_t)r * ow + q;
            if (take_max) {
                if (index[o] == (long long)y * w + x) val += gy[o];
            } else {
                val += gy[o] / (T)((y1 - y0) * (x1 - x0));
            }
        }
    }
    gx = val;
    """,
    "hubkit_adaptive_pool2d_backward",
    preamble=_ADAPTIVE,
)


# ---------------------------------------------------------------- convolution


def _out_hw(hw: Pair, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair) -> Pair:
    return (
        conv_out_size(hw[0], kernel[0], stride[0], *pads[0], dilation[0]),
        conv_out_size(hw[1], kernel[1], stride[1], *pads[1], dilation[1]),
    )


def _geometry(n, c, hw, kernel, out_hw, stride, pads, dilation) -> tuple[int, ...]:
    return (n, c, hw[0], hw[1], kernel[0], kernel[1], out_hw[0], out_hw[1], stride[0], stride[1],
            pads[0][0], pads[1][0], dilation[0], dilation[1])  # fmt: skip


def _is_pointwise(kernel: Pair, pads: Pads) -> bool:
    return kernel == (1, 1) and pads == ((0, 0), (0, 0))


def _to_channel_major(g: cp.ndarray, groups: int) -> cp.ndarray:
    """(N, OC, OH, OW) -> (G, OC/G, N*OH*OW)."""
    n, oc = g.shape[:2]
    return cp.ascontiguousarray(g.reshape(n, oc, -1).transpose(1, 0, 2)).reshape(groups, oc // groups, -1)


def im2col(x: cp.ndarray, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair, pad_value: float = 0.0) -> cp.ndarray:
    """Unfold ``x`` (N, C, H, W) into columns ``(C*KH*KW, N*OH*OW)`` (Caffe layout)."""
    n, c, h, w = x.shape
    oh, ow = _out_hw((h, w), kernel, stride, pads, dilation)
    col = cp.empty((c, kernel[0], kernel[1], n, oh, ow), dtype=x.dtype)
    geometry = _geometry(n, c, (h, w), kernel, (oh, ow), stride, pads, dilation)
    _im2col_kernel(cp.ascontiguousarray(x), *geometry, x.dtype.type(pad_value), col)
    return col.reshape(c * kernel[0] * kernel[1], n * oh * ow)


def col2im(
    col: cp.ndarray, x_shape: tuple[int, int, int, int], kernel: Pair, stride: Pair, pads: Pads, dilation: Pair
) -> cp.ndarray:
    """Fold columns ``(C*KH*KW, N*OH*OW)`` back into ``x_shape`` (N, C, H, W), summing overlaps (gather,
    deterministic)."""
    n, c, h, w = x_shape
    out_hw = _out_hw((h, w), kernel, stride, pads, dilation)
    img = cp.empty(x_shape, dtype=col.dtype)
    _col2im_kernel(cp.ascontiguousarray(col), *_geometry(n, c, (h, w), kernel, out_hw, stride, pads, dilation), img)
    return img


def conv2d(
    x: cp.ndarray,
    w: cp.ndarray,
    b: cp.ndarray | None,
    stride: Pair,
    pads: Pads,
    dilation: Pair,
    groups: int,
    keep_columns: bool = False,
) -> cp.ndarray | tuple[cp.ndarray, cp.ndarray | None]:
    """Cross-correlation ``x`` (N, C, H, W) with ``w`` (OC, C/groups, KH, KW) [+ ``b``] -> (N, OC, OH, OW).

    With ``keep_columns``, returns ``(y, columns)``: the im2col matrix ``(G, C/G*KH*KW, N*OH*OW)`` for
    :func:`conv2d_grad_weight` when it is at most ``_KEEP_COLUMNS_BYTES``, else None.
    """
    y = cudnn.conv2d(x, w, stride, pads, dilation, groups)
    if y is not None:
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return (y, None) if keep_columns else y
    n = x.shape[0]
    oc, cg, kh, kw = w.shape
    oh, ow = _out_hw(x.shape[2:], (kh, kw), stride, pads, dilation)
    w3 = w.reshape(groups, oc // groups, cg * kh * kw)
    columns = None
    if _is_pointwise((kh, kw), pads):
        xs = cp.ascontiguousarray(x[:, :, :: stride[0], :: stride[1]]).reshape(n, groups, cg, oh * ow)
        y = cp.matmul(w3, xs).reshape(n, oc, oh, ow)
    else:
        col = im2col(x, (kh, kw), stride, pads, dilation).reshape(groups, cg * kh * kw, n * oh * ow)
        y = cp.ascontiguousarray(cp.matmul(w3, col).reshape(oc, n, oh, ow).transpose(1, 0, 2, 3))
        if col.nbytes <= _KEEP_COLUMNS_BYTES:
            columns = col
    if b is not None:
        y += b.reshape(1, oc, 1, 1)
    return (y, columns) if keep_columns else y


def conv2d_grad_input(
    gy: cp.ndarray, w: cp.ndarray, in_hw: Pair, stride: Pair, pads: Pads, dilation: Pair, groups: int
) -> cp.ndarray:
    """Gradient of :func:`conv2d` w.r.t. its input: ``gy`` (N, OC, OH, OW) -> (N, C, H, W)."""
    gx = cudnn.conv2d_grad_input(gy, w, tuple(in_hw), stride, pads, dilation, groups)
    if gx is not None:
        return gx
    n, oc, oh, ow = gy.shape
    _, cg, kh, kw = w.shape
    c = cg * groups
    wt = w.reshape(groups, oc // groups, cg * kh * kw).transpose(0, 2, 1)
    if _is_pointwise((kh, kw), pads):
        g = cp.matmul(wt, gy.reshape(n, groups, oc // groups, oh * ow)).reshape(n, c, oh, ow)
        gx = cp.zeros((n, c, *in_hw), dtype=g.dtype)
        gx[:, :, : stride[0] * (oh - 1) + 1 : stride[0], : stride[1] * (ow - 1) + 1 : stride[1]] = g
        return gx
    gcol = cp.matmul(wt, _to_channel_major(gy, groups))
    return col2im(gcol.reshape(c * kh * kw, n * oh * ow), (n, c, *in_hw), (kh, kw), stride, pads, dilation)


def conv2d_grad_weight(
    x: cp.ndarray | None,
    gy: cp.ndarray,
    kernel: Pair,
    stride: Pair,
    pads: Pads,
    dilation: Pair,
    groups: int,
    columns: cp.ndarray | None = None,
) -> cp.ndarray:
    """Gradient of :func:`conv2d` w.r.t. its weight -> (OC, C/groups, KH, KW). ``columns``, when given, is
    what ``conv2d(..., keep_columns=True)`` returned for this ``x`` (``x`` may then be None)."""
    n, oc, oh, ow = gy.shape
    kh, kw = kernel
    if columns is None:
        gw = cudnn.conv2d_grad_weight(x, gy, (oc, x.shape[1] // groups, kh, kw), stride, pads, dilation, groups)
        if gw is not None:
            return gw
    g = _to_channel_major(gy, groups)
    if columns is not None:
        col = columns
    elif _is_pointwise(kernel, pads):
        xs = cp.ascontiguousarray(x[:, :, :: stride[0], :: stride[1]])
        col = _to_channel_major(xs, groups)
    else:
        cg = x.shape[1] // groups
        col = im2col(x, kernel, stride, pads, dilation).reshape(groups, cg * kh * kw, n * oh * ow)
    return cp.matmul(g, col.transpose(0, 2, 1)).reshape(oc, col.shape[1] // (kh * kw), kh, kw)


# ---------------------------------------------------------------- pooling


def _pool_geometry(hw, kernel, stride, padding, dilation, ceil_mode) -> tuple[Pair, Pads]:
    out, pads = [], []
    for size, k, s, p, d in zip(hw, kernel, stride, padding, dilation):
        o = pool_out_size(size, k, s, p, d, ceil_mode)
        out.append(o)
        pads.append((p, p + pool_extra_pad(size, o, k, s, p, d)))
    return (out[0], out[1]), (pads[0], pads[1])


def max_pool2d(
    x: cp.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, ceil_mode: bool, with_argmax: bool
) -> tuple[cp.ndarray, cp.ndarray | None]:
    """Max pooling ``x`` (N, C, H, W) -> ``(y, argmax)``; argmax is the winning ``ky*KW + kx`` (int32)."""
    n, c, h, w = x.shape
    out_hw, pads = _pool_geometry((h, w), kernel, stride, padding, dilation, ceil_mode)
    y = cp.empty((n, c, *out_hw), dtype=x.dtype)
    arg = cp.empty((n, c, *out_hw), dtype=cp.int32)
    geometry = _geometry(n, c, (h, w), kernel, out_hw, stride, pads, dilation)
    _max_pool_kernel(cp.ascontiguousarray(x), *geometry, x.dtype.type(-np.inf), y, arg)
    return y, (arg if with_argmax else None)


def max_pool2d_indices(
    argmax: cp.ndarray, in_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair
) -> cp.ndarray:
    """Kernel-position argmax -> PyTorch's flat int64 indices ``h*W + w`` into each input plane."""
    oh, ow = argmax.shape[2:]
    a = argmax.astype(cp.int64)
    ky, kx = a // kernel[1], a % kernel[1]
    rows = (cp.arange(oh) * stride[0] - padding[0]).reshape(oh, 1) + ky * dilation[0]
    cols = (cp.arange(ow) * stride[1] - padding[1]).reshape(1, ow) + kx * dilation[1]
    return rows * in_hw[1] + cols


def max_pool2d_backward(
    gy: cp.ndarray,
    argmax: cp.ndarray,
    in_hw: Pair,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    ceil_mode: bool,
) -> cp.ndarray:
    """Gradient of :func:`max_pool2d` -> (N, C, H, W); a gather over windows, no atomics."""
    n, c = gy.shape[:2]
    out_hw, pads = _pool_geometry(in_hw, kernel, stride, padding, dilation, ceil_mode)
    gx = cp.empty((n, c, *in_hw), dtype=gy.dtype)
    geometry = _geometry(n, c, in_hw, kernel, out_hw, stride, pads, dilation)
    _max_pool_backward_kernel(cp.ascontiguousarray(gy), cp.ascontiguousarray(argmax, dtype=cp.int32), *geometry, gx)
    return gx


def avg_pool2d(
    x: cp.ndarray,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None = None,
) -> cp.ndarray:
    """Average pooling ``x`` (N, C, H, W) -> (N, C, OH, OW), with PyTorch's divisor rules."""
    n, c, h, w = x.shape
    out_hw, pads = _pool_geometry((h, w), kernel, stride, padding, (1, 1), ceil_mode)
    y = cp.empty((n, c, *out_hw), dtype=x.dtype)
    geometry = _geometry(n, c, (h, w), kernel, out_hw, stride, pads, (1, 1))
    _avg_pool_kernel(cp.ascontiguousarray(x), *geometry, bool(count_include_pad), int(divisor_override or 0), y)
    return y


def avg_pool2d_backward(
    gy: cp.ndarray,
    in_hw: Pair,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None = None,
) -> cp.ndarray:
    """Gradient of :func:`avg_pool2d` -> (N, C, H, W)."""
    n, c = gy.shape[:2]
    out_hw, pads = _pool_geometry(in_hw, kernel, stride, padding, (1, 1), ceil_mode)
    gx = cp.empty((n, c, *in_hw), dtype=gy.dtype)
    geometry = _geometry(n, c, in_hw, kernel, out_hw, stride, pads, (1, 1))
    _avg_pool_backward_kernel(
        cp.ascontiguousarray(gy), *geometry, bool(count_include_pad), int(divisor_override or 0), gx
    )
    return gx


def adaptive_avg_pool2d(x: cp.ndarray, out_hw: Pair) -> cp.ndarray:
    """Adaptive average pooling ``x`` (N, C, H, W) -> (N, C, OH, OW)."""
    n, c, h, w = x.shape
    y = cp.empty((n, c, *out_hw), dtype=x.dtype)
    index = cp.empty((n, c, *out_hw), dtype=cp.int64)
    _adaptive_pool_kernel(cp.ascontiguousarray(x), h, w, out_hw[0], out_hw[1], False, y, index)
    return y


def adaptive_avg_pool2d_backward(gy: cp.ndarray, in_hw: Pair) -> cp.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d` -> (N, C, H, W)."""
    n, c, oh, ow = gy.shape
    gx = cp.empty((n, c, *in_hw), dtype=gy.dtype)
    unused = cp.empty(1, dtype=cp.int64)
    _adaptive_pool_backward_kernel(cp.ascontiguousarray(gy), unused, in_hw[0], in_hw[1], oh, ow, False, gx)
    return gx


def adaptive_max_pool2d(x: cp.ndarray, out_hw: Pair) -> tuple[cp.ndarray, cp.ndarray]:
    """Adaptive max pooling -> ``(y, indices)`` with PyTorch's flat int64 ``h*W + w`` indices."""
    n, c, h, w = x.shape
    y = cp.empty((n, c, *out_hw), dtype=x.dtype)
    index = cp.empty((n, c, *out_hw), dtype=cp.int64)
    _adaptive_pool_kernel(cp.ascontiguousarray(x), h, w, out_hw[0], out_hw[1], True, y, index)
    return y, index


def adaptive_max_pool2d_backward(gy: cp.ndarray, indices: cp.ndarray, in_hw: Pair) -> cp.ndarray:
    """Gradient of :func:`adaptive_max_pool2d` -> (N, C, H, W)."""
    n, c, oh, ow = gy.shape
    gx = cp.empty((n, c, *in_hw), dtype=gy.dtype)
    index = cp.ascontiguousarray(indices, dtype=cp.int64)
    _adaptive_pool_backward_kernel(cp.ascontiguousarray(gy), index, in_hw[0], in_hw[1], oh, ow, True, gx)
    return gx


# ---------------------------------------------------------------- interpolation
# Forward is a gather (take along each axis); backward multiplies by the transposed interpolation
# matrices on cuBLAS, which sums every contribution without atomics.


def _nearest_matrix(in_size: int, out_size: int, scale: float | None, dtype) -> cp.ndarray:
    m = np.zeros((out_size, in_size), dtype=dtype)
    m[np.arange(out_size), nearest_indices(in_size, out_size, scale)] = 1
    return cp.asarray(m)


def _linear_matrix(in_size: int, out_size: int, align_corners: bool, scale: float | None, dtype) -> cp.ndarray:
    i0, i1, w1 = linear_indices(in_size, out_size, align_corners, scale)
    m = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.arange(out_size)
    m[rows, i0] = 1 - w1
    m[rows, i1] += w1  # each (row, i1) pair occurs once, so fancy += is exact here
    return cp.asarray(m.astype(dtype))


def upsample_nearest2d(x: cp.ndarray, out_hw: Pair, scales: tuple[float | None, float | None]) -> cp.ndarray:
    """Nearest-neighbour resize ``x`` (N, C, H, W) -> (N, C, OH, OW)."""
    ih = cp.asarray(nearest_indices(x.shape[2], out_hw[0], scales[0]))
    iw = cp.asarray(nearest_indices(x.shape[3], out_hw[1], scales[1]))
    return cp.ascontiguousarray(x.take(ih, axis=2).take(iw, axis=3))


def upsample_nearest2d_backward(gy: cp.ndarray, in_hw: Pair, scales: tuple[float | None, float | None]) -> cp.ndarray:
    """Gradient of :func:`upsample_nearest2d` -> (N, C, H, W)."""
    mh = _nearest_matrix(in_hw[0], gy.shape[2], scales[0], gy.dtype)
    mw = _nearest_matrix(in_hw[1], gy.shape[3], scales[1], gy.dtype)
    return cp.matmul(cp.matmul(mh.T, gy), mw)


def upsample_bilinear2d(
    x: cp.ndarray, out_hw: Pair, align_corners: bool, scales: tuple[float | None, float | None]
) -> cp.ndarray:
    """Bilinear resize ``x`` (N, C, H, W) -> (N, C, OH, OW)."""
    mh = _linear_matrix(x.shape[2], out_hw[0], align_corners, scales[0], x.dtype)
    mw = _linear_matrix(x.shape[3], out_hw[1], align_corners, scales[1], x.dtype)
    return cp.matmul(cp.matmul(mh, x), mw.T)


def upsample_bilinear2d_backward(
    gy: cp.ndarray, in_hw: Pair, align_corners: bool, scales: tuple[float | None, float | None]
) -> cp.ndarray:
    """Gradient of :func:`upsample_bilinear2d` -> (N, C, H, W)."""
    mh = _linear_matrix(in_hw[0], gy.shape[2], align_corners, scales[0], gy.dtype)
    mw = _linear_matrix(in_hw[1], gy.shape[3], align_corners, scales[1], gy.dtype)
    return cp.matmul(cp.matmul(mh.T, gy), mw)


# ---------------------------------------------------------------- batch norm and optimizer updates
# Fused versions of ``generic.py``'s functions: a training BatchNorm is two reductions and two
# elementwise launches each way instead of about fifteen, and an optimizer step is one launch per
# parameter. float32/float64 only (with matching statistics/parameter dtypes); anything else takes the
# generic path.

_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Per-channel sums over (N, *spatial) of an NCHW array, in one launch of C x split blocks: block (c, s) sums
# channel c of images s, s + split, ... (each plane read contiguously), and writes one partial per block
# into ``partial`` (2, C, split); the small kernels below finish the sums. cupy's reductions over axes
# (0, 2, 3) were 10-100x slower (one block per channel, or worse with a broadcast operand). Modes: 0 sums
# a; 1 sums (a - shift[c])^2; 2 sums a and a * b. Fixed order: the results are deterministic.
_CHANNEL_SUMS_SOURCE = r"""
extern "C" __global__ void hubkit_channel_sums_TYPE(
        const TYPE* __restrict__ a, const TYPE* __restrict__ b, const TYPE* __restrict__ shift,
        TYPE* __restrict__ partial, long long n, long long hw, int channels, int split, int mode) {
    const int ch = blockIdx.x, s = blockIdx.y;
    const TYPE m = mode == 1 ? shift[ch] : (TYPE)0;
    TYPE acc1 = 0, acc2 = 0;
    for (long long img = s; img < n; img += split) {
        const long long base = (img * channels + ch) * hw;
        for (long long p = threadIdx.x; p < hw; p += blockDim.x) {
            const TYPE v = a[base + p];
            if (mode == 0) {
                acc1 += v;
            } else if (mode == 1) {
                const TYPE d = v - m;
                acc1 += d * d;
            } else {
                acc1 += v;
                acc2 += v * b[base + p];
            }
        }
    }
    __shared__ TYPE sum1[256];
    __shared__ TYPE sum2[256];
    sum1[threadIdx.x] = acc1;
    sum2[threadIdx.x] = acc2;
    __syncthreads();
    for (int step = blockDim.x / 2; step > 0; step >>= 1) {
        if (threadIdx.x < step) {
            sum1[threadIdx.x] += sum1[threadIdx.x + step];
            sum2[threadIdx.x] += sum2[threadIdx.x + step];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        partial[ch * split + s] = sum1[0];
        if (mode == 2) partial[(long long)channels * split + ch * split + s] = sum2[0];
    }
}
"""
_CHANNEL_SUMS_BLOCK = 256
_channel_sums_kernels: dict[str, cp.RawKernel] = {}
_multiprocessors: dict[int, int] = {}


def _channel_sums(a: cp.ndarray, mode: int, b: cp.ndarray | None = None, shift: cp.ndarray | None = None):
    """``(partial, split)`` for contiguous ``a`` (N, C, *spatial); see ``_CHANNEL_SUMS_SOURCE``."""
    ctype = "double" if a.dtype == np.float64 else "float"
    kernel = _channel_sums_kernels.get(ctype)
    if kernel is None:
        source = _CHANNEL_SUMS_SOURCE.replace("TYPE", ctype)
        kernel = _channel_sums_kernels[ctype] = cp.RawKernel(source, f"hubkit_channel_sums_{ctype}")
    device = cp.cuda.Device().id
    sms = _multiprocessors.get(device)
    if sms is None:
        sms = _multiprocessors[device] = cp.cuda.runtime.getDeviceProperties(device)["multiProcessorCount"]
    n, c = a.shape[:2]
    hw = a.size // max(n * c, 1)
    split = max(1, min(n, -(-4 * sms // c)))
    partial = cp.empty((2 if mode == 2 else 1, c, split), dtype=a.dtype)
    kernel((c, split), (_CHANNEL_SUMS_BLOCK,), (a, a if b is None else b, a if shift is None else shift, partial,
                                                np.int64(n), np.int64(hw), np.int32(c), np.int32(split),
                                                np.int32(mode)))  # fmt: skip
    return partial, split


# BatchNorm1d-like inputs (a few values per image and channel) keep cupy's reductions: one plane per block
# would leave most of a block idle
_PLANE_KERNEL_MIN = 32
_sq_dev_sum = cp.ReductionKernel("T x, T m", "T y", "(x - m) * (x - m)", "a + b", "y = a", "0", "hubkit_sq_dev_sum")
_dot_sum = cp.ReductionKernel("T a, T b", "T y", "a * b", "a + b", "y = a", "0", "hubkit_dot_sum")


def _channel_mean_and_sq_dev(x: cp.ndarray) -> tuple[cp.ndarray, cp.ndarray, int]:
    """Per-channel mean and the partial sums of squared deviations from it, ``(mean, partial, split)``."""
    c = x.shape[1]
    t = x.dtype.type
    count = x.size // c
    if x.size // max(x.shape[0] * c, 1) < _PLANE_KERNEL_MIN:
        axes = generic.channel_axes(x)
        mean = x.mean(axis=axes)
        return mean, _sq_dev_sum(x, mean.reshape(generic.channel_shape(x)), axis=axes).reshape(c, 1), 1
    partial, split = _channel_sums(x, 0)
    mean = cp.empty(c, dtype=x.dtype)
    _finish_mean_kernel(partial, np.int32(split), t(1 / count), mean)
    partial, split = _channel_sums(x, 1, shift=mean)
    return mean, partial, split


def _channel_grad_sums(gy: cp.ndarray, xhat: cp.ndarray | None) -> tuple[cp.ndarray, cp.ndarray | None]:
    """Per-channel ``sum(gy)`` and ``sum(gy * xhat)`` (None without ``xhat``)."""
    c = gy.shape[1]
    if gy.size // max(gy.shape[0] * c, 1) < _PLANE_KERNEL_MIN:
        axes = generic.channel_axes(gy)
        return gy.sum(axis=axes), (None if xhat is None else _dot_sum(gy, xhat, axis=axes))
    gb = cp.empty(c, dtype=gy.dtype)
    if xhat is None:
        partial, split = _channel_sums(gy, 0)
        _finish_mean_kernel(partial, np.int32(split), gy.dtype.type(1), gb)
        return gb, None
    partial, split = _channel_sums(gy, 2, b=cp.ascontiguousarray(xhat))
    gw = cp.empty(c, dtype=gy.dtype)
    _finish_grads_kernel(partial, np.int32(split), np.int32(c), gb, gw)
    return gb, gw


_finish_mean_kernel = cp.ElementwiseKernel(
    "raw T partial, int32 split, T inv_count",
    "T mean",
    "T acc = 0; for (int s = 0; s < split; ++s) acc += partial[i * split + s]; mean = acc * inv_count;",
    "hubkit_bn_finish_mean",
)

_finish_grads_kernel = cp.ElementwiseKernel(
    "raw T partial, int32 split, int32 channels",
    "T gb, T gw",
    """
    T sum_gy = 0, sum_gy_xhat = 0;
    for (int s = 0; s < split; ++s) {
        sum_gy += partial[i * split + s];
        sum_gy_xhat += partial[(ptrdiff_t)channels * split + i * split + s];
    }
    gb = sum_gy;
    gw = sum_gy_xhat;
    """,
    "hubkit_bn_finish_grads",
)

_bn_statistics_kernel = cp.ElementwiseKernel(
    "T mean, raw T partial, int32 split, T inv_count, T eps, T momentum, T unbias, bool update",
    "T inv_std, T running_mean, T running_var",
    """
    T sq_sum = 0;
    for (int s = 0; s < split; ++s) sq_sum += partial[i * split + s];
    const T var = sq_sum * inv_count;
    inv_std = (T)1 / sqrt(var + eps);
    if (update) {
        running_mean = running_mean * ((T)1 - momentum) + momentum * mean;
        running_var = running_var * ((T)1 - momentum) + momentum * (var * unbias);
    }
    """,
    "hubkit_bn_statistics",
)

_bn_apply_kernel = cp.ElementwiseKernel(
    "T x, T mean, T inv_std, T w, T b",
    "T xhat, T y",
    "xhat = (x - mean) * inv_std; y = xhat * w + b;",
    "hubkit_bn_apply",
)

_inv_std_kernel = cp.ElementwiseKernel("T var, T eps", "T inv_std", "inv_std = (T)1 / sqrt(var + eps)",
                                       "hubkit_bn_inv_std")  # fmt: skip

_bn_apply_only_kernel = cp.ElementwiseKernel(
    "T x, T mean, T inv_std, T w, T b", "T y", "y = (x - mean) * inv_std * w + b;", "hubkit_bn_apply_only"
)

_bn_backward_kernel = cp.ElementwiseKernel(
    "T gy, T xhat, T scale, T gb, T gw, T inv_count",
    "T gx",
    "gx = scale * (gy - gb * inv_count - xhat * (gw * inv_count));",
    "hubkit_bn_backward",
)


def _fusable(dtype: np.dtype, *arrays: cp.ndarray | None) -> bool:
    return dtype in _FUSED_DTYPES and all(a is None or a.dtype == dtype for a in arrays)


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps, keep_xhat):
    """:func:`hubkit.kernels.generic.batch_norm_forward`: one cuDNN call for 4-d float inputs where cuDNN is
    used (``saved`` is then a :class:`cudnn.SavedBatchNorm`), else five launches (training) or one (eval): two
    passes over ``x`` for the statistics (the mean, then squared deviations from it) and one to apply them."""
    if not _fusable(x.dtype, weight, bias, running_mean, running_var):
        return generic.batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps,
                                          keep_xhat)  # fmt: skip
    x = cp.ascontiguousarray(x)
    if training:
        got = cudnn.batch_norm_training(x, weight, bias, running_mean, running_var, momentum, eps)
        if got is not None:
            y, saved, inv_std = got
            return y, (saved if keep_xhat else None), inv_std
    elif not keep_xhat:
        y = cudnn.batch_norm_inference(x, weight, bias, running_mean, running_var, eps)
        if y is not None:
            return y, None, None
    c = x.shape[1]
    shape = generic.channel_shape(x)
    t = x.dtype.type
    if training:
        count = x.size // c
        mean, partial, split = _channel_mean_and_sq_dev(x)
        update = running_mean is not None
        inv_std = cp.empty(c, dtype=x.dtype)
        rm = running_mean if update else cp.empty(c, dtype=x.dtype)
        rv = running_var if update else cp.empty(c, dtype=x.dtype)
        _bn_statistics_kernel(mean, partial, np.int32(split), t(1 / count), t(eps), t(momentum),
                              t(count / max(count - 1, 1)), update, inv_std, rm, rv)  # fmt: skip
    else:
        mean = running_mean
        inv_std = _inv_std_kernel(running_var, t(eps))
    w = t(1) if weight is None else weight.reshape(shape)
    b = t(0) if bias is None else bias.reshape(shape)
    if not keep_xhat:
        return _bn_apply_only_kernel(x, mean.reshape(shape), inv_std.reshape(shape), w, b), None, inv_std
    xhat, y = _bn_apply_kernel(x, mean.reshape(shape), inv_std.reshape(shape), w, b)
    return y, xhat, inv_std


def batch_norm_backward(gy, xhat, inv_std, weight, training, need_x, need_w, need_b):
    """:func:`hubkit.kernels.generic.batch_norm_backward` in at most three launches (one pass for both sums), or
    one cuDNN call when the forward ran on cuDNN (``xhat`` is then its :class:`cudnn.SavedBatchNorm`)."""
    if isinstance(xhat, cudnn.SavedBatchNorm):
        got = cudnn.batch_norm_backward(gy, xhat, inv_std, weight)
        if got is not None:
            gx, gw, gb = got
            return (gx if need_x else None), (gw if need_w else None), (gb if need_b else None)
        shape = generic.channel_shape(xhat.x)
        xhat = (xhat.x - xhat.mean.reshape(shape)) * inv_std.reshape(shape)
    if not _fusable(gy.dtype, xhat, inv_std, weight):
        return generic.batch_norm_backward(gy, xhat, inv_std, weight, training, need_x, need_w, need_b)
    gy = cp.ascontiguousarray(gy)
    shape = generic.channel_shape(gy)
    gb = gw = gx = None
    need_gw = need_w or (need_x and training)
    if need_gw or need_b:
        gb, gw = _channel_grad_sums(gy, xhat if need_gw else None)
    if need_x:
        scale = inv_std if weight is None else inv_std * weight
        if training:
            t = gy.dtype.type
            gx = _bn_backward_kernel(gy, xhat, scale.reshape(shape), gb.reshape(shape), gw.reshape(shape),
                                     t(gy.shape[1] / gy.size))  # fmt: skip
        else:
            gx = gy * scale.reshape(shape)
    return gx, (gw if need_w else None), (gb if need_b else None)


# ReLU's gradient from its output in one launch (``gy * (y > 0)`` was two and a bool temporary); torch's
# threshold_backward rule: zero where y <= 0, else gy (a NaN output passes its gradient through)
relu_backward = cp.ElementwiseKernel("T gy, T y", "T gx", "gx = y <= (T)0 ? (T)0 : gy", "hubkit_relu_backward")


_sgd_kernel = cp.ElementwiseKernel(
    "T g_in, T lr, T momentum, T dampening, T weight_decay, bool nesterov, bool maximize, bool first",
    "T p, T buf",
    """
    T g = maximize ? -g_in : g_in;
    if (weight_decay != (T)0) g = g + weight_decay * p;
    buf = first ? g : buf * momentum + ((T)1 - dampening) * g;
    p = p - lr * (nesterov ? g + momentum * buf : buf);
    """,
    "hubkit_sgd_momentum",
)

_sgd_plain_kernel = cp.ElementwiseKernel(
    "T g_in, T lr, T weight_decay, bool maximize",
    "T p",
    """
    T g = maximize ? -g_in : g_in;
    if (weight_decay != (T)0) g = g + weight_decay * p;
    p = p - lr * g;
    """,
    "hubkit_sgd",
)


def sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """:func:`hubkit.kernels.generic.sgd_update` in one launch."""
    if not (_fusable(p.dtype, g, buf) and p.flags.c_contiguous):
        return generic.sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize)
    t = p.dtype.type
    if momentum == 0:
        _sgd_plain_kernel(g, t(lr), t(weight_decay), bool(maximize), p)
        return None
    first = buf is None
    if first:
        buf = cp.empty_like(p)
    _sgd_kernel(g, t(lr), t(momentum), t(dampening), t(weight_decay), bool(nesterov), bool(maximize), first, p, buf)
    return buf


# SGD over a whole parameter group in one launch (torch's foreach path): thread i finds its tensor by a binary
# search of the running element counts in ``ends``, then applies the per-tensor kernel's arithmetic above, in
# the same order. ``table`` holds (p, g, buf) device pointers per tensor, then ``ends``.
_SGD_MANY_SOURCE = r"""
extern "C" __global__ void hubkit_sgd_many_TYPE(
        const long long* __restrict__ table, int n, long long total, TYPE lr, TYPE momentum, TYPE dampening,
        TYPE weight_decay, bool nesterov, bool maximize, bool first, bool with_momentum) {
    const long long* ends = table + 3 * n;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        int lo = 0, hi = n - 1;
        while (lo < hi) {
            const int mid = (lo + hi) >> 1;
            if (ends[mid] > i) hi = mid; else lo = mid + 1;
        }
        const long long j = i - (lo ? ends[lo - 1] : 0);
        TYPE* p = (TYPE*)table[3 * lo];
        const TYPE* grad = (const TYPE*)table[3 * lo + 1];
        TYPE* buf = (TYPE*)table[3 * lo + 2];
        TYPE g = maximize ? -grad[j] : grad[j];
        if (weight_decay != (TYPE)0) g = g + weight_decay * p[j];
        if (with_momentum) {
            const TYPE b = first ? g : buf[j] * momentum + ((TYPE)1 - dampening) * g;
            buf[j] = b;
            g = nesterov ? g + momentum * b : b;
        }
        p[j] = p[j] - lr * g;
    }
}
"""
_sgd_many_kernels: dict[str, cp.RawKernel] = {}
_sgd_tables: OrderedDict[tuple, cp.ndarray] = OrderedDict()  # device copies of recent pointer tables
_SGD_TABLES_KEPT = 8


def _sgd_table(device: int, table: list[int]) -> cp.ndarray:
    """The pointer table on the device: a steady training loop sees the same pointers every step (cupy's pool
    hands them out again), so the host-to-device copy happens once."""
    key = (device, *table)
    found = _sgd_tables.get(key)
    if found is None:
        found = _sgd_tables[key] = cp.asarray(np.array(table, dtype=np.int64))
        while len(_sgd_tables) > _SGD_TABLES_KEPT:
            _sgd_tables.popitem(last=False)
    return found


def sgd_update_many(ps, gs, bufs, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """:func:`sgd_update` for every (p, g, buf) of a parameter group in one or two launches (two when some
    parameters start their momentum this step); returns the buffers to keep. Parameters of another dtype, a
    non-contiguous layout or another device than the first take the per-parameter path."""
    dtype, device = ps[0].dtype, ps[0].data.device_id
    with_momentum = momentum != 0
    bufs = list(bufs) if with_momentum else [None] * len(ps)
    rows: dict[bool, list[int]] = {False: [], True: []}  # first step of the momentum -> (p, g, buf) pointers
    ends: dict[bool, list[int]] = {False: [], True: []}
    for i, (p, g) in enumerate(zip(ps, gs)):
        buf = bufs[i]
        if not isinstance(p, cp.ndarray) or not isinstance(g, cp.ndarray):
            bufs[i] = generic.sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize)
            continue
        if not (p.dtype == dtype and g.dtype == dtype and p.flags.c_contiguous and g.flags.c_contiguous
                and p.data.device_id == device and g.data.device_id == device and g.size == p.size
                and dtype in _FUSED_DTYPES
                and (buf is None or (buf.dtype == dtype and buf.flags.c_contiguous and buf.size == p.size))):
            bufs[i] = sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize)
            continue
        first = with_momentum and buf is None
        if first:
            buf = bufs[i] = cp.empty_like(p)
        rows[first] += (p.data.ptr, g.data.ptr, p.data.ptr if buf is None else buf.data.ptr)
        ends[first].append((ends[first][-1] if ends[first] else 0) + p.size)
    if not (rows[False] or rows[True]):
        return bufs
    ctype = "double" if dtype == np.float64 else "float"
    kernel = _sgd_many_kernels.get(ctype)
    if kernel is None:
        kernel = _sgd_many_kernels[ctype] = cp.RawKernel(_SGD_MANY_SOURCE.replace("TYPE", ctype),
                                                         f"hubkit_sgd_many_{ctype}")  # fmt: skip
    t = dtype.type
    with cp.cuda.Device(device):
        for first in (False, True):
            total = ends[first][-1] if ends[first] else 0
            if not total:
                continue
            table = _sgd_table(device, rows[first] + ends[first])
            blocks = min(-(-total // 256), 4096)
            kernel((blocks,), (256,), (table, np.int32(len(ends[first])), np.int64(total), t(lr), t(momentum),
                                       t(dampening), t(weight_decay), np.bool_(nesterov), np.bool_(maximize),
                                       np.bool_(first), np.bool_(with_momentum)))  # fmt: skip
    return bufs


_adam_kernel = cp.ElementwiseKernel(
    "T g_in, T lr, T beta1, T beta2, T eps, T weight_decay, T step_size, T bias2_sqrt, bool decoupled, "
    "bool maximize",
    "T p, T exp_avg, T exp_avg_sq",
    """
    T g = maximize ? -g_in : g_in;
    if (weight_decay != (T)0) {
        if (decoupled) p = p * ((T)1 - lr * weight_decay);
        else g = g + weight_decay * p;
    }
    exp_avg = exp_avg * beta1 + ((T)1 - beta1) * g;
    exp_avg_sq = exp_avg_sq * beta2 + ((T)1 - beta2) * (g * g);
    const T denom = sqrt(exp_avg_sq) / bias2_sqrt + eps;
    p = p - (exp_avg / denom) * step_size;
    """,
    "hubkit_adam",
)


def adam_update(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, decoupled,
                maximize):  # fmt: skip
    """:func:`hubkit.kernels.generic.adam_update` in one launch (amsgrad takes the generic path)."""
    if max_exp_avg_sq is not None or not (_fusable(p.dtype, g, exp_avg, exp_avg_sq) and p.flags.c_contiguous):
        return generic.adam_update(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                                   weight_decay, decoupled, maximize)  # fmt: skip
    t = p.dtype.type
    _adam_kernel(g, t(lr), t(beta1), t(beta2), t(eps), t(weight_decay), t(lr / (1 - beta1**step)),
                 t(math.sqrt(1 - beta2**step)), bool(decoupled), bool(maximize), p, exp_avg, exp_avg_sq)  # fmt: skip
    return None


def attention_forward(q, k, v, scale, mask, keep, dropout_keep, dropout_p):
    """:func:`hubkit.kernels.generic.attention_forward` as one block (cuBLAS batches the products)."""
    return generic.attention_forward(q, k, v, scale, mask, keep, dropout_keep, dropout_p)


def attention_backward(gy, q, k, v, scale, attn, dropped, dropout_keep, dropout_p, needs):
    """:func:`hubkit.kernels.generic.attention_backward` as one block."""
    return generic.attention_backward(gy, q, k, v, scale, attn, dropped, dropout_keep, dropout_p, needs)
