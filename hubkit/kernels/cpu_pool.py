"""CPU pooling kernels: max (with the winning kernel position for backward), average and adaptive pooling.

Loops over kernel positions with strided in-place ufuncs (``np.maximum(..., out=)``, ``+=``); max pooling
tracks which position won only when a gradient will be needed; the common 2x2, stride-2 window reduces the
four strided views pairwise (three ``np.maximum``) and finds the first maximum with three comparisons, and
splits its batch over hubkit's thread pool.
"""

from __future__ import annotations

import numpy as np

from hubkit.kernels import _jit
from hubkit.kernels._cpu_util import Pads, Pair, _lowest, _numba_min_items, _over_images, _pad, _scratch, _tap
from hubkit.kernels.shapes import adaptive_bounds, avg_pool_divisors, pool_extra_pad, pool_out_size

# ---------------------------------------------------------------- max pooling


def _pool_geometry(
    hw: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, ceil_mode: bool
) -> tuple[Pair, Pads]:
    """Output size and the (possibly asymmetric, ceil-mode) padding a pooling op applies."""
    out, pads = [], []
    for size, k, s, p, d in zip(hw, kernel, stride, padding, dilation):
        o = pool_out_size(size, k, s, p, d, ceil_mode)
        out.append(o)
        pads.append((p, p + pool_extra_pad(size, o, k, s, p, d)))
    return (out[0], out[1]), (pads[0], pads[1])


def _argmax_dtype(kernel: Pair) -> type:
    return np.uint8 if kernel[0] * kernel[1] <= 256 else np.int32


def _is_pairwise_pool(kernel: Pair, stride: Pair, pads: Pads, dilation: Pair) -> bool:
    """Non-overlapping 2x2 windows, stride 2, no padding (ceil-mode overhang included) and no dilation."""
    return kernel == (2, 2) and stride == (2, 2) and pads == ((0, 0), (0, 0)) and dilation == (1, 1)


def _quads(a: np.ndarray, out_hw: Pair) -> np.ndarray:
    """View ``(N, C, OH, 2, OW, 2)`` of the pixels of 2x2/stride-2 windows (an odd last row/column is
    left out)."""
    oh, ow = out_hw
    n, c = a.shape[:2]
    return a[:, :, : 2 * oh, : 2 * ow].reshape(n, c, oh, 2, ow, 2)


def _max_pool_2x2(x: np.ndarray, out_hw: Pair, with_argmax: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`max_pool2d` for 2x2 windows with stride 2: a pairwise reduction of the four strided views.

    The winner is the first maximum in ``(0,0), (0,1), (1,0), (1,1)`` order, as in the general loop: the
    right pixel of a row beats the left one only when greater, the bottom row beats the top only when
    its maximum is greater.
    """
    n, c = x.shape[:2]
    y = np.empty((n, c, *out_hw), dtype=x.dtype)
    arg = np.empty(y.shape, dtype=np.uint8) if with_argmax else None

    def pool_images(n0: int, n1: int) -> None:
        q = _quads(x[n0:n1], out_hw)
        shape = (n1 - n0, c, *out_hw)
        top = _scratch("pool_top", shape, x.dtype)
        bottom = _scratch("pool_bottom", shape, x.dtype)
        np.maximum(q[:, :, :, 0, :, 0], q[:, :, :, 0, :, 1], out=top)
        np.maximum(q[:, :, :, 1, :, 0], q[:, :, :, 1, :, 1], out=bottom)
        np.maximum(top, bottom, out=y[n0:n1])
        if arg is None:
            return
        np.greater(q[:, :, :, 0, :, 1], q[:, :, :, 0, :, 0], out=arg[n0:n1].view(bool))
        bottom_arg = _scratch("pool_arg", shape, np.uint8)
        np.greater(q[:, :, :, 1, :, 1], q[:, :, :, 1, :, 0], out=bottom_arg.view(bool))
        bottom_arg += 2
        bottom_won = _scratch("pool_mask", shape, np.bool_)
        np.greater(bottom, top, out=bottom_won)
        np.copyto(arg[n0:n1], bottom_arg, where=bottom_won)

    _over_images(n, c * x.shape[2] * x.shape[3] * x.itemsize, pool_images)
    return y, arg


def max_pool2d(
    x: np.ndarray,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    ceil_mode: bool,
    with_argmax: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max pooling ``x`` (N, C, H, W) -> ``(y, argmax)`` with ``y`` (N, C, OH, OW).

    ``argmax`` (N, C, OH, OW) holds the winning kernel position ``ky*KW + kx`` (the first one on ties),
    or is None when ``with_argmax`` is false. Padding never wins (it is -inf).
    """
    out_hw, pads = _pool_geometry(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    jit = _jit.compiled(x.size) if x.dtype in (np.float32, np.float64) else None
    if jit is not None:
        # padding never wins, so it is never read; each plane is one "image" of the split, so a batch of
        # one image is split over the threads too
        n, c = x.shape[:2]
        y = np.empty((n, c, *out_hw), dtype=x.dtype)
        arg = np.empty(y.shape, dtype=_argmax_dtype(kernel)) if with_argmax else np.empty((1, 1, 1, 1), np.uint8)
        xc = np.ascontiguousarray(x).reshape(n * c, 1, *x.shape[2:])
        y4 = y.reshape(n * c, 1, *out_hw)
        arg4 = arg.reshape(n * c, 1, *out_hw) if with_argmax else arg

        pairwise = _is_pairwise_pool(kernel, stride, pads, dilation)
        min_items = _numba_min_items(x.shape[2] * x.shape[3] * x.itemsize)
        chunks = _jit.parallel_chunks(n * c, min_items, x.nbytes + 2 * y.nbytes) if pairwise else 0
        if chunks:
            jit.max_pool_2x2_parallel(xc, y4, arg4, with_argmax, chunks)
            return y, (arg if with_argmax else None)
        if pairwise:

            def pool_images(n0: int, n1: int) -> None:
                jit.max_pool_2x2(xc, y4, arg4, n0, n1, with_argmax)
        else:

            def pool_images(n0: int, n1: int) -> None:
                jit.max_pool(xc, y4, arg4, n0, n1, *kernel, *stride, pads[0][0], pads[1][0], *dilation, with_argmax)

        _over_images(n * c, x.shape[2] * x.shape[3] * x.itemsize, pool_images)
        return y, (arg if with_argmax else None)
    if _is_pairwise_pool(kernel, stride, pads, dilation):
        return _max_pool_2x2(x, out_hw, with_argmax)
    xp = _pad(x, pads, _lowest(x.dtype))
    y = _tap(xp, 0, 0, stride, dilation, out_hw).copy()
    arg = np.zeros(y.shape, dtype=_argmax_dtype(kernel)) if with_argmax else None
    mask = np.empty(y.shape, dtype=bool) if with_argmax else None
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            if ky == 0 and kx == 0:
                continue
            tap = _tap(xp, ky, kx, stride, dilation, out_hw)
            if arg is None:
                np.maximum(y, tap, out=y)
            else:
                np.greater(tap, y, out=mask)
                np.copyto(y, tap, where=mask)
                np.copyto(arg, ky * kernel[1] + kx, where=mask, casting="unsafe")
    return y, arg


def max_pool2d_indices(
    argmax: np.ndarray, in_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair
) -> np.ndarray:
    """Kernel-position argmax (N, C, OH, OW) -> PyTorch's flat indices ``h*W + w`` into each input plane
    (int64), as ``max_pool2d(..., return_indices=True)`` returns them."""
    oh, ow = argmax.shape[2:]
    a = argmax.astype(np.int64)
    ky, kx = np.divmod(a, kernel[1])
    rows = (np.arange(oh) * stride[0] - padding[0]).reshape(oh, 1) + ky * dilation[0]
    cols = (np.arange(ow) * stride[1] - padding[1]).reshape(1, ow) + kx * dilation[1]
    return rows * in_hw[1] + cols


def max_pool2d_backward(
    gy: np.ndarray,
    argmax: np.ndarray,
    in_hw: Pair,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    ceil_mode: bool,
) -> np.ndarray:
    """Gradient of :func:`max_pool2d`: ``gy`` (N, C, OH, OW) routed to each window's winner
    -> (N, C, H, W)."""
    (h, w) = in_hw
    out_hw, ((pt, pb), (pl, pr)) = _pool_geometry(in_hw, kernel, stride, padding, dilation, ceil_mode)
    n, c = gy.shape[:2]
    jit = _jit.compiled(n * c * h * w) if gy.dtype in (np.float32, np.float64) else None
    if jit is not None:
        planes = (n * c, 1)
        gyc = np.ascontiguousarray(gy).reshape(*planes, *gy.shape[2:])
        argc = np.ascontiguousarray(argmax).reshape(gyc.shape)
        pairwise = _is_pairwise_pool(kernel, stride, ((pt, pb), (pl, pr)), dilation)
        gx = (np.empty if pairwise else np.zeros)((n, c, h, w), dtype=gy.dtype)
        gx4 = gx.reshape(*planes, h, w)
        chunks = _jit.parallel_chunks(n * c, _numba_min_items(h * w * gy.itemsize), 4 * gy.nbytes) if pairwise else 0
        if chunks:
            jit.max_pool_2x2_backward_parallel(gyc, argc, gx4, chunks)
            return gx
        if pairwise:

            def route_images(n0: int, n1: int) -> None:
                jit.max_pool_2x2_backward(gyc, argc, gx4, n0, n1)
        else:

            def route_images(n0: int, n1: int) -> None:
                jit.max_pool_backward(gyc, argc, gx4, n0, n1, kernel[1], *stride, pt, pl, *dilation)

        _over_images(n * c, h * w * gy.itemsize, route_images)
        return gx
    if _is_pairwise_pool(kernel, stride, ((pt, pb), (pl, pr)), dilation):
        # windows do not overlap: each pixel is written once, as gy where it won and 0 elsewhere
        gx = np.empty((n, c, h, w), dtype=gy.dtype)

        def route_images(n0: int, n1: int) -> None:
            part = gx[n0:n1]
            part[:, :, 2 * out_hw[0] :] = 0
            part[:, :, :, 2 * out_hw[1] :] = 0
            q = _quads(part, out_hw)
            won = _scratch("pool_mask", (n1 - n0, c, *out_hw), np.bool_)
            for position in range(4):
                np.equal(argmax[n0:n1], position, out=won)
                np.multiply(gy[n0:n1], won, out=q[:, :, :, position // 2, :, position % 2])

        _over_images(n, c * h * w * gy.itemsize, route_images)
        return gx
    gxp = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=gy.dtype)
    mask = np.empty(gy.shape, dtype=bool)
    routed = np.empty_like(gy)
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            np.equal(argmax, ky * kernel[1] + kx, out=mask)
            np.multiply(gy, mask, out=routed)
            _tap(gxp, ky, kx, stride, dilation, out_hw)[...] += routed
    return np.ascontiguousarray(gxp[:, :, pt : pt + h, pl : pl + w])


# ---------------------------------------------------------------- average pooling


def _avg_divisor(
    in_hw: Pair,
    out_hw: Pair,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    count_include_pad: bool,
    divisor_override: int | None,
    dtype: np.dtype,
) -> np.ndarray | float:
    if divisor_override:
        return float(divisor_override)
    dh = avg_pool_divisors(in_hw[0], out_hw[0], kernel[0], stride[0], padding[0], count_include_pad)
    dw = avg_pool_divisors(in_hw[1], out_hw[1], kernel[1], stride[1], padding[1], count_include_pad)
    return np.outer(dh, dw).astype(dtype)


def avg_pool2d(
    x: np.ndarray,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Average pooling ``x`` (N, C, H, W) -> (N, C, OH, OW), with PyTorch's divisor rules."""
    in_hw = x.shape[2:]
    out_hw, pads = _pool_geometry(in_hw, kernel, stride, padding, (1, 1), ceil_mode)
    xp = _pad(x, pads)
    y = _tap(xp, 0, 0, stride, (1, 1), out_hw).copy()
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            if ky or kx:
                y += _tap(xp, ky, kx, stride, (1, 1), out_hw)
    y /= _avg_divisor(in_hw, out_hw, kernel, stride, padding, count_include_pad, divisor_override, y.dtype)
    return y


def avg_pool2d_backward(
    gy: np.ndarray,
    in_hw: Pair,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d`: ``gy`` (N, C, OH, OW) -> (N, C, H, W)."""
    h, w = in_hw
    out_hw, ((pt, pb), (pl, pr)) = _pool_geometry(in_hw, kernel, stride, padding, (1, 1), ceil_mode)
    g = gy / _avg_divisor(in_hw, out_hw, kernel, stride, padding, count_include_pad, divisor_override, gy.dtype)
    gxp = np.zeros((gy.shape[0], gy.shape[1], h + pt + pb, w + pl + pr), dtype=gy.dtype)
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            _tap(gxp, ky, kx, stride, (1, 1), out_hw)[...] += g
    return np.ascontiguousarray(gxp[:, :, pt : pt + h, pl : pl + w])


# ---------------------------------------------------------------- adaptive pooling


def _uniform_windows(in_hw: Pair, out_hw: Pair) -> bool:
    return in_hw[0] % out_hw[0] == 0 and in_hw[1] % out_hw[1] == 0


def adaptive_avg_pool2d(x: np.ndarray, out_hw: Pair) -> np.ndarray:
    """Adaptive average pooling ``x`` (N, C, H, W) -> (N, C, OH, OW); window ``i`` along an axis covers
    ``floor(i*H/OH)`` to ``ceil((i+1)*H/OH)``."""
    n, c, h, w = x.shape
    oh, ow = out_hw
    if _uniform_windows((h, w), out_hw):
        return x.reshape(n, c, oh, h // oh, ow, w // ow).mean(axis=(3, 5), dtype=x.dtype)
    # Averaging over a rectangle is separable: rows first, then columns.
    hs, he = adaptive_bounds(h, oh)
    rows = np.stack([x[:, :, s:e].mean(axis=2, dtype=x.dtype) for s, e in zip(hs, he)], axis=2)
    ws, we = adaptive_bounds(w, ow)
    return np.stack([rows[..., s:e].mean(axis=3, dtype=x.dtype) for s, e in zip(ws, we)], axis=3)


def adaptive_avg_pool2d_backward(gy: np.ndarray, in_hw: Pair) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d`: ``gy`` (N, C, OH, OW) -> (N, C, H, W)."""
    n, c, oh, ow = gy.shape
    h, w = in_hw
    ws, we = adaptive_bounds(w, ow)
    cols = np.zeros((n, c, oh, w), dtype=gy.dtype)
    for j, (s, e) in enumerate(zip(ws, we)):
        cols[..., s:e] += gy[..., j : j + 1] / gy.dtype.type(e - s)
    hs, he = adaptive_bounds(h, oh)
    gx = np.zeros((n, c, h, w), dtype=gy.dtype)
    for i, (s, e) in enumerate(zip(hs, he)):
        gx[:, :, s:e] += cols[:, :, i : i + 1] / gy.dtype.type(e - s)
    return gx


def adaptive_max_pool2d(x: np.ndarray, out_hw: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive max pooling ``x`` (N, C, H, W) -> ``(y, indices)``, both (N, C, OH, OW); ``indices``
    are PyTorch's flat int64 positions ``h*W + w`` in each input plane (first maximum on ties)."""
    n, c, h, w = x.shape
    oh, ow = out_hw
    if _uniform_windows((h, w), out_hw):
        k = (h // oh, w // ow)
        y, arg = max_pool2d(x, k, k, (0, 0), (1, 1), False, True)
        return y, max_pool2d_indices(arg, (h, w), k, k, (0, 0), (1, 1))
    hs, he = adaptive_bounds(h, oh)
    ws, we = adaptive_bounds(w, ow)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    idx = np.empty((n, c, oh, ow), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            win = x[:, :, hs[i] : he[i], ws[j] : we[j]].reshape(n, c, -1)
            a = win.argmax(axis=2)
            y[:, :, i, j] = np.take_along_axis(win, a[..., None], axis=2)[..., 0]
            width = we[j] - ws[j]
            idx[:, :, i, j] = (hs[i] + a // width) * w + ws[j] + a % width
    return y, idx


def adaptive_max_pool2d_backward(gy: np.ndarray, indices: np.ndarray, in_hw: Pair) -> np.ndarray:
    """Gradient of :func:`adaptive_max_pool2d`: ``gy`` summed into the flat ``indices`` -> (N, C, H, W)."""
    n, c = gy.shape[:2]
    plane = in_hw[0] * in_hw[1]
    flat = indices.reshape(n * c, -1) + (np.arange(n * c) * plane)[:, None]
    # bincount is a deterministic scatter-add that handles overlapping windows, unlike fancy `+=`.
    gx = np.bincount(flat.ravel(), weights=gy.ravel(), minlength=n * c * plane)
    return gx.astype(gy.dtype, copy=False).reshape(n, c, *in_hw)
