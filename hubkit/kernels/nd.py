"""N-d window and resampling kernels, written once for numpy and cupy (``xp = get_array_module(x)``).

``cpu.py`` and ``cuda.py`` hold tuned 2-d kernels; the layers without one (3-d convolution and pooling,
adaptive 3-d pooling, and the separable resampling behind ``interpolate``'s nearest-exact, linear,
bicubic, trilinear, lanczos and antialiased modes) run here on whichever array module owns the input.
The work is whole-array ops per kernel position ("tap"), never a Python loop over pixels, and every
backward is either strided ``+=`` into disjoint elements or a gather, so results are deterministic on
both devices (no scatter-add with atomics).

Layouts: images are (N, C, *spatial); ``kernel``, ``stride``, ``dilation`` are per-spatial-axis tuples;
convolution padding ``pads`` is ``((before, after), ...)`` per axis, pooling padding one int per axis.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from hubkit._backend import get_array_module
from hubkit.kernels.shapes import (
    adaptive_bounds,
    avg_pool_divisors,
    conv_out_size,
    linear_indices,
    nearest_indices,
    pool_extra_pad,
    pool_out_size,
)

Sizes = tuple[int, ...]
Pads = tuple[tuple[int, int], ...]

# Convolutions build their columns a few images at a time so that a 3-d layer's im2col (kernel-volume
# times the input, e.g. 27x for 3x3x3) never holds more than about this much at once.
_COL_CHUNK_BYTES = 32 << 20

_ALL = (slice(None), slice(None))  # the batch and channel axes


# ---------------------------------------------------------------- geometry


def pad(x: Any, pads: Pads, value: float = 0.0) -> Any:
    """Pad the spatial axes of ``x`` (N, C, *spatial) by ``pads`` with ``value``; ``x`` itself if no padding."""
    if not any(b or a for b, a in pads):
        return x
    xp = get_array_module(x)
    spatial = x.shape[2:]
    out = xp.full(x.shape[:2] + tuple(n + b + a for n, (b, a) in zip(spatial, pads)), value, dtype=x.dtype)
    out[_ALL + tuple(slice(b, b + n) for n, (b, _) in zip(spatial, pads))] = x
    return out


def _crop(x: Any, pads: Pads, size: Sizes) -> Any:
    if not any(b or a for b, a in pads):
        return x
    xp = get_array_module(x)
    return xp.ascontiguousarray(x[_ALL + tuple(slice(b, b + n) for n, (b, _) in zip(size, pads))])


def _windows(kernel: Sizes, stride: Sizes, dilation: Sizes, out: Sizes) -> list[tuple[Sizes, tuple[slice, ...]]]:
    """For each kernel position ``k`` (row-major), the strided slices of the padded input it sees."""
    taps = []
    for k in itertools.product(*(range(n) for n in kernel)):
        slices = tuple(slice(i * d, i * d + s * (o - 1) + 1, s) for i, d, s, o in zip(k, dilation, stride, out))
        taps.append((k, _ALL + slices))
    return taps


def _image_chunks(n: int, bytes_per_image: int) -> list[tuple[int, int]]:
    step = max(1, _COL_CHUNK_BYTES // max(bytes_per_image, 1))
    return [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]


def _along(values: Any, axis: int, ndim: int) -> Any:
    """Reshape a 1-d array so it broadcasts along ``axis`` of an ``ndim``-d array."""
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


# ---------------------------------------------------------------- convolution


def im2col(x: Any, kernel: Sizes, stride: Sizes, pads: Pads, dilation: Sizes, out: Sizes) -> Any:
    """Columns of ``x`` (N, C, *S) -> (N, C*prod(kernel), prod(out)), rows ordered ``(c, *k)``."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    padded = pad(x, pads)
    col = xp.empty((n, c) + tuple(kernel) + tuple(out), dtype=x.dtype)
    for k, window in _windows(kernel, stride, dilation, out):
        col[_ALL + k] = padded[window]
    return col.reshape(n, c * math.prod(kernel), math.prod(out))


def col2im(col: Any, x_shape: Sizes, kernel: Sizes, stride: Sizes, pads: Pads, dilation: Sizes, out: Sizes) -> Any:
    """Adjoint of :func:`im2col`: sum columns (N, C*prod(kernel), prod(out)) back into ``x_shape``."""
    xp = get_array_module(col)
    n, c = x_shape[:2]
    size = tuple(x_shape[2:])
    padded = xp.zeros((n, c) + tuple(s + b + a for s, (b, a) in zip(size, pads)), dtype=col.dtype)
    col = col.reshape((n, c) + tuple(kernel) + tuple(out))
    for k, window in _windows(kernel, stride, dilation, out):
        padded[window] += col[_ALL + k]
    return _crop(padded, pads, size)


def conv(x: Any, w: Any, b: Any, stride: Sizes, pads: Pads, dilation: Sizes, groups: int) -> Any:
    """Cross-correlation ``x`` (N, C, *S) with ``w`` (OC, C/groups, *K) [+ ``b`` (OC,)] -> (N, OC, *O)."""
    xp = get_array_module(x)
    n = x.shape[0]
    oc, cg = w.shape[:2]
    kernel = tuple(w.shape[2:])
    out = tuple(conv_out_size(s, k, st, *p, d) for s, k, st, p, d in zip(x.shape[2:], kernel, stride, pads, dilation))
    rows, length = cg * math.prod(kernel), math.prod(out)
    w3 = w.reshape(groups, oc // groups, rows)
    y = xp.empty((n, oc) + out, dtype=xp.result_type(x, w))
    for n0, n1 in _image_chunks(n, groups * rows * length * x.itemsize):
        col = im2col(x[n0:n1], kernel, stride, pads, dilation, out).reshape(n1 - n0, groups, rows, length)
        y[n0:n1] = xp.matmul(w3, col).reshape((n1 - n0, oc) + out)
    if b is not None:
        y += _along(b, 1, y.ndim)
    return y


def conv_grad_input(gy: Any, w: Any, in_size: Sizes, stride: Sizes, pads: Pads, dilation: Sizes, groups: int) -> Any:
    """Gradient of :func:`conv` w.r.t. its input: ``gy`` (N, OC, *O) -> (N, C, *in_size). Also the forward
    of a transposed convolution (``in_size`` is then its output size)."""
    xp = get_array_module(gy)
    n, oc = gy.shape[:2]
    out = tuple(gy.shape[2:])
    cg = w.shape[1]
    kernel = tuple(w.shape[2:])
    c, rows, length = cg * groups, cg * math.prod(kernel), math.prod(out)
    wt = w.reshape(groups, oc // groups, rows).transpose(0, 2, 1)
    gx = xp.empty((n, c) + tuple(in_size), dtype=xp.result_type(gy, w))
    for n0, n1 in _image_chunks(n, groups * rows * length * gy.itemsize):
        m = n1 - n0
        gcol = xp.matmul(wt, gy[n0:n1].reshape(m, groups, oc // groups, length))
        gx[n0:n1] = col2im(gcol, (m, c) + tuple(in_size), kernel, stride, pads, dilation, out)
    return gx


def conv_grad_weight(x: Any, gy: Any, kernel: Sizes, stride: Sizes, pads: Pads, dilation: Sizes, groups: int) -> Any:
    """Gradient of :func:`conv` w.r.t. its weight: ``x`` (N, C, *S), ``gy`` (N, OC, *O) -> (OC, C/groups, *K).

    The windows are those of ``gy``'s size, so this also serves transposed convolutions whose input
    (here ``gy``) is one step short of what ``x`` would give."""
    xp = get_array_module(gy)
    n, oc = gy.shape[:2]
    out = tuple(gy.shape[2:])
    cg = x.shape[1] // groups
    rows, length = cg * math.prod(kernel), math.prod(out)
    gw = xp.zeros((groups, oc // groups, rows), dtype=xp.result_type(x, gy))
    for n0, n1 in _image_chunks(n, groups * rows * length * x.itemsize):
        m = n1 - n0
        col = im2col(x[n0:n1], kernel, stride, pads, dilation, out).reshape(m, groups, rows, length)
        g = gy[n0:n1].reshape(m, groups, oc // groups, length)
        gw += xp.matmul(g, col.transpose(0, 1, 3, 2)).sum(axis=0)
    return gw.reshape((oc, cg) + tuple(kernel))


# ---------------------------------------------------------------- max and average pooling


def pool_geometry(size: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes,
                  ceil_mode: bool) -> tuple[Sizes, Pads]:  # fmt: skip
    """Output size and the padding (asymmetric where ceil mode overhangs) a pooling op applies."""
    out, pads = [], []
    for n, k, s, p, d in zip(size, kernel, stride, padding, dilation):
        o = pool_out_size(n, k, s, p, d, ceil_mode)
        out.append(o)
        pads.append((p, p + pool_extra_pad(n, o, k, s, p, d)))
    return tuple(out), tuple(pads)


def _lowest(dtype: Any) -> float | int:
    return -math.inf if np.dtype(dtype).kind == "f" else int(np.iinfo(dtype).min)


def max_pool(x: Any, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, ceil_mode: bool,
             with_argmax: bool) -> tuple[Any, Any]:  # fmt: skip
    """Max pooling ``x`` (N, C, *S) -> ``(y, argmax)``, ``y`` (N, C, *O); ``argmax`` (int32) is the winning
    row-major kernel position, the first on ties and the last NaN (PyTorch's rule), or None."""
    xp = get_array_module(x)
    out, pads = pool_geometry(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    padded = pad(x, pads, _lowest(x.dtype))
    windows = _windows(kernel, stride, dilation, out)
    y = padded[windows[0][1]].copy()
    arg = xp.zeros(y.shape, dtype=xp.int32) if with_argmax else None
    for t, (_, window) in enumerate(windows[1:], 1):
        tap = padded[window]
        if arg is None:
            xp.maximum(y, tap, out=y)
        else:
            won = (tap > y) | xp.isnan(tap) if x.dtype.kind == "f" else tap > y
            y = xp.where(won, tap, y)
            arg[won] = t
    return y, arg


def max_pool_indices(argmax: Any, in_size: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes,
                     dilation: Sizes) -> Any:  # fmt: skip
    """Kernel-position argmax (N, C, *O) -> PyTorch's flat int64 indices into each input plane
    (``d*H*W + h*W + w`` in 3-d)."""
    xp = get_array_module(argmax)
    rest = argmax.astype(xp.int64)
    flat = xp.zeros(argmax.shape, dtype=xp.int64)
    dims = len(kernel)
    for a in reversed(range(dims)):
        k = rest % kernel[a]
        rest //= kernel[a]
        start = _along(xp.arange(argmax.shape[2 + a], dtype=xp.int64) * stride[a] - padding[a], 2 + a, argmax.ndim)
        flat += (start + k * dilation[a]) * math.prod(in_size[a + 1 :])
    return flat


def max_pool_backward(gy: Any, argmax: Any, in_size: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes,
                      dilation: Sizes, ceil_mode: bool) -> Any:  # fmt: skip
    """Gradient of :func:`max_pool`: ``gy`` (N, C, *O) routed to each window's winner -> (N, C, *in_size)."""
    xp = get_array_module(gy)
    out, pads = pool_geometry(in_size, kernel, stride, padding, dilation, ceil_mode)
    padded = xp.zeros(gy.shape[:2] + tuple(n + b + a for n, (b, a) in zip(in_size, pads)), dtype=gy.dtype)
    zero = gy.dtype.type(0)
    for t, (_, window) in enumerate(_windows(kernel, stride, dilation, out)):
        padded[window] += xp.where(argmax == t, gy, zero)
    return _crop(padded, pads, in_size)


def _avg_divisor(xp: Any, in_size: Sizes, out: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes,
                 count_include_pad: bool, divisor_override: int | None, dtype: Any) -> Any:  # fmt: skip
    if divisor_override:
        return dtype.type(divisor_override)
    div = np.ones((), dtype=np.float64)
    for n, o, k, s, p in zip(in_size, out, kernel, stride, padding):
        div = np.multiply.outer(div, avg_pool_divisors(n, o, k, s, p, count_include_pad))
    return xp.asarray(div.astype(dtype))


def avg_pool(x: Any, kernel: Sizes, stride: Sizes, padding: Sizes, ceil_mode: bool, count_include_pad: bool,
             divisor_override: int | None = None) -> Any:  # fmt: skip
    """Average pooling ``x`` (N, C, *S) -> (N, C, *O) with PyTorch's divisor rules."""
    xp = get_array_module(x)
    ones = (1,) * len(kernel)
    out, pads = pool_geometry(x.shape[2:], kernel, stride, padding, ones, ceil_mode)
    padded = pad(x, pads)
    windows = _windows(kernel, stride, ones, out)
    y = padded[windows[0][1]].copy()
    for _, window in windows[1:]:
        y += padded[window]
    y /= _avg_divisor(xp, x.shape[2:], out, kernel, stride, padding, count_include_pad, divisor_override, y.dtype)
    return y


def avg_pool_backward(gy: Any, in_size: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, ceil_mode: bool,
                      count_include_pad: bool, divisor_override: int | None = None) -> Any:  # fmt: skip
    """Gradient of :func:`avg_pool`: ``gy`` (N, C, *O) -> (N, C, *in_size)."""
    xp = get_array_module(gy)
    ones = (1,) * len(kernel)
    out, pads = pool_geometry(in_size, kernel, stride, padding, ones, ceil_mode)
    g = gy / _avg_divisor(xp, in_size, out, kernel, stride, padding, count_include_pad, divisor_override, gy.dtype)
    padded = xp.zeros(gy.shape[:2] + tuple(n + b + a for n, (b, a) in zip(in_size, pads)), dtype=gy.dtype)
    for _, window in _windows(kernel, stride, ones, out):
        padded[window] += g
    return _crop(padded, pads, in_size)


# ---------------------------------------------------------------- adaptive max pooling


def _window_table(size: int, out: int) -> np.ndarray:
    """(K, out) input positions of each adaptive window, padded by repeating its last position."""
    starts, ends = adaptive_bounds(size, out)
    lengths = np.array(ends) - np.array(starts)
    k = np.arange(lengths.max())[:, None]
    return np.array(starts)[None, :] + np.minimum(k, lengths[None, :] - 1)


def adaptive_max_pool(x: Any, out: Sizes) -> tuple[Any, Any]:
    """Adaptive max pooling ``x`` (N, C, *S) -> ``(y, indices)``, both (N, C, *out); ``indices`` are flat
    int64 positions in each input plane, the first maximum in row-major order on ties.

    A max over a box is a max over each axis in turn. Reducing the innermost axis first and keeping the
    first maximum at each step picks the row-major first maximum of the box."""
    xp = get_array_module(x)
    spatial = x.shape[2:]
    flat = xp.zeros(spatial, dtype=xp.int64)
    for a, n in enumerate(spatial):
        flat = flat + _along(xp.arange(n, dtype=xp.int64) * math.prod(spatial[a + 1 :]), a, len(spatial))
    y, idx = x, xp.broadcast_to(flat, x.shape)
    for a in reversed(range(len(spatial))):
        axis = 2 + a
        table = _window_table(spatial[a], out[a])
        k = table.shape[0]
        take = xp.asarray(table.reshape(-1))
        shape = y.shape[:axis] + (k, out[a]) + y.shape[axis + 1 :]
        values = y.take(take, axis=axis).reshape(shape)
        positions = idx.take(take, axis=axis).reshape(shape)
        best = xp.expand_dims(values.argmax(axis=axis), axis)
        y = xp.take_along_axis(values, best, axis=axis).squeeze(axis)
        idx = xp.take_along_axis(positions, best, axis=axis).squeeze(axis)
    return xp.ascontiguousarray(y), xp.ascontiguousarray(idx)


def _cover_table(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """For each input position, the adaptive windows covering it (consecutive ones): ``(R, size)`` window
    ids and a validity mask."""
    starts, ends = adaptive_bounds(size, out)
    positions = np.arange(size)
    first = np.searchsorted(np.array(ends), positions, side="right")
    last = np.searchsorted(np.array(starts), positions, side="right") - 1
    r = np.arange((last - first).max() + 1)[:, None]
    return np.minimum(first[None, :] + r, last[None, :]), r <= (last - first)[None, :]


def adaptive_max_pool_backward(gy: Any, indices: Any, in_size: Sizes) -> Any:
    """Gradient of :func:`adaptive_max_pool` -> (N, C, *in_size), as a gather: each input position sums
    the gradients of the covering windows whose winner it is."""
    xp = get_array_module(gy)
    dims = len(in_size)
    out = gy.shape[2:]
    flat = xp.zeros(in_size, dtype=xp.int64)
    for a, n in enumerate(in_size):
        flat = flat + _along(xp.arange(n, dtype=xp.int64) * math.prod(in_size[a + 1 :]), a, dims)
    covers = [_cover_table(n, o) for n, o in zip(in_size, out)]
    gx = xp.zeros(gy.shape[:2] + tuple(in_size), dtype=gy.dtype)
    zero = gy.dtype.type(0)
    for combo in itertools.product(*(range(table.shape[0]) for table, _ in covers)):
        g, idx = gy, indices
        mine = flat
        for a, (r, (table, valid)) in enumerate(zip(combo, covers)):
            which = xp.asarray(table[r])
            g, idx = g.take(which, axis=2 + a), idx.take(which, axis=2 + a)
            # an invalid (padding) cover must never match: point it at an impossible position
            mine = xp.where(_along(xp.asarray(valid[r]), a, dims), mine, -1)
        gx += xp.where(idx == mine, g, zero)
    return gx


# ---------------------------------------------------------------- max unpooling


def max_unpool(x: Any, indices: Any, out: Sizes) -> Any:
    """Place ``x`` (N, C, *I) at the flat ``indices`` of zero planes (N, C, *out)."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    y = xp.zeros((n * c, math.prod(out)), dtype=x.dtype)
    rows = xp.arange(n * c)[:, None]
    y[rows, indices.reshape(n * c, -1)] = x.reshape(n * c, -1)
    return y.reshape((n, c) + tuple(out))


def max_unpool_backward(gy: Any, indices: Any) -> Any:
    """Gradient of :func:`max_unpool`: ``gy`` gathered at ``indices`` -> the shape of ``indices``."""
    xp = get_array_module(gy)
    n, c = gy.shape[:2]
    flat = xp.take_along_axis(gy.reshape(n * c, -1), indices.reshape(n * c, -1), axis=1)
    return flat.reshape(indices.shape)


# ---------------------------------------------------------------- separable resampling


class Taps(NamedTuple):
    """One axis of a separable linear resampling: ``out[j] = sum_t weight[t, j] * in[index[t, j]]``.

    ``index`` and ``weight`` are host arrays of shape (T, out); ``weight`` None means all ones (nearest).
    """

    index: np.ndarray
    weight: np.ndarray | None
    in_size: int


def transpose_taps(taps: Taps) -> Taps:
    """The adjoint of ``taps`` as taps over the input positions (R, in): backward becomes a gather too."""
    t, out = taps.index.shape
    outputs = np.broadcast_to(np.arange(out), (t, out)).reshape(-1)
    inputs = taps.index.reshape(-1)
    weights = np.ones(t * out) if taps.weight is None else taps.weight.reshape(-1)
    keep = weights != 0
    outputs, inputs, weights = outputs[keep], inputs[keep], weights[keep]
    order = np.lexsort((outputs, inputs))
    outputs, inputs, weights = outputs[order], inputs[order], weights[order]
    counts = np.bincount(inputs, minlength=taps.in_size)
    rank = np.arange(inputs.size) - (np.cumsum(counts) - counts)[inputs]
    r = max(int(counts.max()) if counts.size else 0, 1)
    index = np.zeros((r, taps.in_size), dtype=np.int64)
    weight = np.zeros((r, taps.in_size), dtype=np.float64)
    index[rank, inputs] = outputs
    weight[rank, inputs] = weights
    return Taps(index, weight, out)


def _apply_taps(x: Any, taps: Taps, axis: int) -> Any:
    xp = get_array_module(x)
    t, out = taps.index.shape
    gathered = x.take(xp.asarray(taps.index.reshape(-1)), axis=axis)
    if taps.weight is None and t == 1:
        return gathered
    gathered = gathered.reshape(x.shape[:axis] + (t, out) + x.shape[axis + 1 :])
    weight = xp.asarray(taps.weight.astype(x.dtype)).reshape((t, out) + (1,) * (x.ndim - axis - 1))
    return (gathered * weight).sum(axis=axis)


def resample(x: Any, tables: tuple[Taps | None, ...]) -> Any:
    """Apply one :class:`Taps` per spatial axis of ``x`` (N, C, *S) (None leaves an axis as it is)."""
    y = x
    for a, taps in enumerate(tables):
        if taps is not None:
            y = _apply_taps(y, taps, 2 + a)
    return y.copy() if y is x else y


def resample_backward(gy: Any, tables: tuple[Taps | None, ...]) -> Any:
    """Gradient of :func:`resample`: the transposed taps, axis by axis."""
    return resample(gy, tuple(None if taps is None else transpose_taps(taps) for taps in tables))


def _area_scale(in_size: int, out_size: int, align_corners: bool, scale_factor: float | None) -> float:
    """PyTorch's ``area_pixel_compute_scale``: input step per output step."""
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    if scale_factor is not None and scale_factor > 0:
        return 1.0 / scale_factor
    return in_size / out_size


def nearest_taps(in_size: int, out_size: int, scale_factor: float | None) -> Taps:
    """``mode="nearest"``: source ``min(floor(j * scale), in - 1)``."""
    return Taps(nearest_indices(in_size, out_size, scale_factor)[None, :], None, in_size)


def nearest_exact_taps(in_size: int, out_size: int, scale_factor: float | None) -> Taps:
    """``mode="nearest-exact"``: source ``min(floor((j + 0.5) * scale), in - 1)``, in float32 as PyTorch."""
    scale = np.float32(_area_scale(in_size, out_size, False, scale_factor))
    half = np.float32(0.5)
    src = np.maximum((np.arange(out_size, dtype=np.float32) + half) * scale - half, np.float32(0)) + half
    index = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    return Taps(index[None, :], None, in_size)


def linear_taps(in_size: int, out_size: int, align_corners: bool, scale_factor: float | None) -> Taps | None:
    """``mode="linear"`` along one axis (None where the size is unchanged: PyTorch copies it)."""
    if in_size == out_size:
        return None
    i0, i1, w1 = linear_indices(in_size, out_size, align_corners, scale_factor)
    return Taps(np.stack([i0, i1]), np.stack([1 - w1, w1]), in_size)


def _cubic1(x: np.ndarray, a: float) -> np.ndarray:
    return ((a + 2) * x - (a + 3)) * x * x + 1


def _cubic2(x: np.ndarray, a: float) -> np.ndarray:
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a


def cubic_taps(in_size: int, out_size: int, align_corners: bool, scale_factor: float | None) -> Taps:
    """``mode="bicubic"`` along one axis: Keys' cubic convolution with ``a = -0.75`` over four neighbours,
    reads past the border clamped to the edge pixel (PyTorch's and OpenCV's rule)."""
    a = -0.75
    scale = _area_scale(in_size, out_size, align_corners, scale_factor)
    dst = np.arange(out_size, dtype=np.float64)
    src = dst * scale if align_corners else (dst + 0.5) * scale - 0.5
    base = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    t = np.clip(src - base, 0.0, 1.0)
    weight = np.stack([_cubic2(t + 1, a), _cubic1(t, a), _cubic1(1 - t, a), _cubic2(2 - t, a)])
    index = np.clip(base[None, :] + np.arange(-1, 3)[:, None], 0, in_size - 1)
    return Taps(index, weight, in_size)


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.maximum(1 - np.abs(x), 0.0)


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    # antialiased bicubic uses a = -0.5, as PIL does (plain bicubic uses OpenCV's -0.75)
    x = np.abs(x)
    return np.where(x < 1, _cubic1(x, -0.5), np.where(x < 2, _cubic2(x, -0.5), 0.0))


def _lanczos3(x: np.ndarray) -> np.ndarray:
    return np.where((x >= -3) & (x < 3), np.sinc(x) * np.sinc(x / 3), 0.0)


# filter, support in input pixels at scale 1 (PyTorch's interp_size)
AA_FILTERS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], int]] = {
    "bilinear": (_triangle, 2),
    "bicubic": (_keys_cubic, 4),
    "lanczos": (_lanczos3, 6),
}


def antialias_taps(in_size: int, out_size: int, align_corners: bool, scale_factor: float | None,
                   mode: str) -> Taps | None:  # fmt: skip
    """``antialias=True`` along one axis (PIL's resampling): when shrinking, the filter is stretched by the
    scale so every input pixel contributes; each output's weights are normalised to sum to 1 and read only
    inside the image. None where the size is unchanged (PyTorch copies that axis)."""
    if in_size == out_size:
        return None
    filter_fn, interp_size = AA_FILTERS[mode]
    scale = _area_scale(in_size, out_size, align_corners, scale_factor)
    support = interp_size / 2 * scale if scale >= 1 else interp_size / 2
    width = math.ceil(support) * 2 + 1
    inv_scale = 1 / scale if scale >= 1 else 1.0
    center = scale * (np.arange(out_size, dtype=np.float64) + 0.5)
    start = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    count = np.clip(np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - start, 0, width)
    j = np.arange(width)[:, None]
    weight = np.where(j < count[None, :], filter_fn((j + start[None, :] - center[None, :] + 0.5) * inv_scale), 0.0)
    total = weight.sum(axis=0)
    weight = np.where(total != 0, weight / np.where(total != 0, total, 1), weight)
    return Taps(np.minimum(start[None, :] + j, in_size - 1), weight, in_size)


def area_taps(in_size: int, out_size: int) -> Taps:
    """Adaptive average pooling along one axis: output ``j`` is the mean of ``floor(j*in/out)`` to
    ``ceil((j+1)*in/out)``."""
    index = _window_table(in_size, out_size)
    starts, ends = adaptive_bounds(in_size, out_size)
    lengths = np.array(ends) - np.array(starts)
    k = np.arange(index.shape[0])[:, None]
    return Taps(index, np.where(k < lengths[None, :], 1.0 / lengths[None, :], 0.0), in_size)
