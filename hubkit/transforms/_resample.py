"""Resampling one image axis at a time: the filter taps of torchvision's ``resize``, the reference
arithmetic (any dtype) and the fast path for uint8 images.

The reference path (``resize_reference``) gathers every tap of every output pixel in the image's
float dtype: exact, general and slow (each tap is a full pass over the image; a 1080p uint8 image
resized to 224 took 32-115 ms). The uint8 path (``resize_uint8_hwc`` / ``resize_uint8_planes``)
computes the same sums as small dense GEMMs: the resampling matrix of one axis is sparse (each
output pixel reads ``K`` neighbouring inputs), so its rows are cut into blocks of ``B`` outputs
whose inputs form one window of ``span`` rows, and each block is one float32 GEMM of
``(B, span)`` weights with that window. Only the window being multiplied is converted from uint8
to float32, so the converted rows stay in cache. Results are rounded half to even and clipped, as
the reference does; the two agree to within one uint8 level (float32 sums in another order).
"""

from __future__ import annotations

import functools

import numpy as np


def cast_back(result: np.ndarray, dtype: np.dtype, rounding: bool) -> np.ndarray:
    """Float result -> ``dtype``: integer images are rounded half to even (or truncated) and clipped."""
    if dtype.kind == "f":
        return result.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    if rounding:
        result = np.rint(result)
    return np.clip(result, info.min, info.max).astype(dtype)


def work_dtype(dtype: np.dtype) -> np.dtype:
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    """The cubic convolution kernel (Keys), ``a = -0.5`` (PIL, antialiased) or ``-0.75`` (plain bicubic)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def _taps(in_size: int, out_size: int, mode: str, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Source indices ``(out_size, K)`` and weights ``(out_size, K)`` that resample one axis.

    Antialiased bilinear/bicubic is the separable filter of PIL and PyTorch's ``antialias=True``:
    the filter is stretched by the scale when shrinking, and the weights of each output pixel are
    normalised to sum to one. Without antialiasing the taps are PyTorch's ``interpolate`` ones with
    ``align_corners=False`` (edge indices clamped).
    """
    scale = in_size / out_size
    i = np.arange(out_size, dtype=np.float64)
    if mode == "nearest":
        # PyTorch's "nearest": floor(i * scale) computed in float32, as its kernel does
        idx = np.floor(i.astype(np.float32) * np.float32(in_size / out_size)).astype(np.int64)
        return np.minimum(idx, in_size - 1)[:, None], np.ones((out_size, 1))
    if antialias:
        half = 1.0 if mode == "bilinear" else 2.0
        support = half * scale if scale >= 1.0 else half
        inv = 1.0 / scale if scale >= 1.0 else 1.0
        center = scale * (i + 0.5)
        xmin = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)
        xmax = np.minimum(np.trunc(center + support + 0.5), in_size).astype(np.int64)
        k = int((xmax - xmin).max())
        j = np.arange(k)
        x = (j[None, :] + xmin[:, None] - center[:, None] + 0.5) * inv
        w = np.maximum(0.0, 1.0 - np.abs(x)) if mode == "bilinear" else _cubic(x, -0.5)
        w = np.where(j[None, :] < (xmax - xmin)[:, None], w, 0.0)
        total = w.sum(axis=1, keepdims=True)
        w = np.divide(w, total, out=np.zeros_like(w), where=total != 0)
        return np.minimum(xmin[:, None] + j[None, :], in_size - 1), w
    src = scale * (i + 0.5) - 0.5
    if mode == "bilinear":
        src = np.maximum(src, 0.0)
        i0 = np.floor(src).astype(np.int64)
        frac = src - i0
        i1 = np.minimum(i0 + 1, in_size - 1)
        return np.stack([i0, i1], axis=1), np.stack([1.0 - frac, frac], axis=1)
    i0 = np.floor(src).astype(np.int64)
    t = src - i0
    offsets = np.arange(-1, 3)
    idx = np.clip(i0[:, None] + offsets[None, :], 0, in_size - 1)
    return idx, _cubic(t[:, None] - offsets[None, :], -0.75)


def _resample(arr: np.ndarray, axis: int, out_size: int, mode: str, antialias: bool) -> np.ndarray:
    in_size = arr.shape[axis]
    if in_size == out_size and mode == "nearest":
        return arr
    idx, w = _taps(in_size, out_size, mode, antialias)
    shape = [1] * arr.ndim
    shape[axis] = out_size
    out = None
    for k in range(idx.shape[1]):
        term = np.take(arr, idx[:, k], axis=axis)
        if mode != "nearest":
            term *= w[:, k].astype(arr.dtype).reshape(shape)
        out = term if out is None else np.add(out, term, out=out)
    return out


def resize_reference(chw: np.ndarray, size: list[int], mode: str, antialias: bool) -> np.ndarray:
    """``(..., C, H, W) -> (..., C, size[0], size[1])`` in the image's float dtype (float32 for integers)."""
    dtype = chw.dtype
    if mode == "nearest":
        out = _resample(_resample(chw, -1, size[1], mode, False), -2, size[0], mode, False)
        return np.ascontiguousarray(out)
    work = chw.astype(work_dtype(dtype), copy=False)
    out = _resample(_resample(work, -1, size[1], mode, antialias), -2, size[0], mode, antialias)
    return cast_back(out, dtype, rounding=True)  # clips bicubic's overshoot for integer images



# ---------------------------------------------------------------- uint8 fast path

# The block size B of a pass minimises a cost model fitted on a 2-core x86 machine (1080p -> 224,
# 500x375 -> 256, 28 -> 224): each GEMM call costs ~2 us of numpy overhead, converting and reading a
# window costs per element, and the GEMM per multiply-add. Small B means many calls; large B means
# long windows that are mostly zeros.
_SECONDS_PER_CALL = 2e-6
_SECONDS_PER_ELEMENT = 1e-10
_SECONDS_PER_MAC = 8e-12
# OpenBLAS runs a GEMM on two or more threads once M*N*K reaches twice its threading threshold
# (65536 * GEMM_MULTITHREAD_THRESHOLD, 4 by default). On a busy machine those threads wait for a free
# core: a (4, 25) @ (25, 11000) product took 10 ms instead of 15 us. Every GEMM here stays below
# 2 * 65536 * 4 (longer ones are cut into chunks), so it runs on the calling thread; the chunks also
# keep each converted window in the L2 cache.
_GEMM_MAX_MACS = 2 * 65536 * 4 - 1


class _Bands:
    """One axis's resampling matrix cut into blocks of ``block`` outputs.

    ``starts[b]`` is the first input of block ``b``'s window and ``weights[b]`` its
    ``(block * channels, span * channels)`` float32 matrix (every window has the same ``span``; rows
    past the last output are zero). With ``channels > 1`` the matrix acts on interleaved pixels
    (``(W, C)`` flattened), each channel on its own: ``kron(weights, eye(channels))``.
    """

    __slots__ = ("block", "starts", "span", "weights")

    def __init__(self, block: int, starts: list[int], span: int, weights: np.ndarray) -> None:
        self.block, self.starts, self.span, self.weights = block, starts, span, weights


def _windows(first: np.ndarray, last: np.ndarray, in_size: int, block: int) -> tuple[np.ndarray, int]:
    """Window starts and the common span of blocks of ``block`` outputs reading ``first..last``."""
    bounds = np.arange(0, len(first), block)
    lo = np.minimum.reduceat(first, bounds)
    span = max(int((np.maximum.reduceat(last, bounds) + 1 - lo).max()), 1)
    return np.maximum(np.minimum(lo, in_size - span), 0), span


def _chunk(length: int, macs_per_item: int) -> int:
    """How many of ``length`` items one GEMM takes, each costing ``macs_per_item`` (even chunks)."""
    chunks = max(1, -(-length * macs_per_item // _GEMM_MAX_MACS))
    return max(1, -(-length // chunks))


# A fixed Resize hits the cache on every image after the first; RandomResizedCrop rarely repeats a
# size, and a miss costs ~0.1 ms. An entry can reach ~1 MB (interleaved weights for a 4000-pixel side).
@functools.lru_cache(maxsize=64)
def _bands(in_size: int, out_size: int, mode: str, antialias: bool, channels: int, other: int) -> _Bands:
    """The blocks of one pass; ``other`` is the GEMMs' other dimension (the lines the pass does not
    resample, rounded to a power of two), which sets the best block size."""
    idx, w = _taps(in_size, out_size, mode, antialias)
    used = w != 0
    first = np.where(used, idx, in_size).min(axis=1)  # taps past the filter's end carry zero weight
    last = np.where(used, idx, -1).max(axis=1)
    best = None
    block = 1
    while True:
        lo, span = _windows(first, last, in_size, block)
        macs = block * span * channels * channels
        calls = len(lo) * -(-other // _chunk(other, macs))
        cost = calls * _SECONDS_PER_CALL + len(lo) * span * channels * other * (
            _SECONDS_PER_ELEMENT + block * channels * _SECONDS_PER_MAC)
        if best is None or cost < best[0]:
            best = (cost, block, lo, span)
        if block >= out_size:
            break
        block *= 2
    _, block, lo, span = best
    rows = np.arange(out_size)
    cols = idx - lo[rows // block][:, None]
    flat = (rows[:, None] * span + cols)[used]  # duplicate (edge-clamped) taps add up
    weights = np.bincount(flat, weights=w[used], minlength=len(lo) * block * span)
    weights = weights.astype(np.float32).reshape(len(lo), block, span)
    if channels > 1:
        kron = np.zeros((len(lo), block, channels, span, channels), np.float32)
        for c in range(channels):
            kron[:, :, c, :, c] = weights
        weights = kron.reshape(len(lo), block * channels, span * channels)
    return _Bands(block, lo.tolist(), span, weights)


def _pass_bands(in_size: int, out_size: int, mode: str, antialias: bool, channels: int, other: int) -> _Bands | None:
    if in_size == out_size:
        return None  # every filter here is the identity at scale 1
    return _bands(in_size, out_size, mode, antialias, channels, 1 << max(other - 1, 0).bit_length())


def _rows_pass(src: np.ndarray, bands: _Bands, out: np.ndarray, transposed: bool = False) -> None:
    """Resample axis 0: ``src (in, n)`` uint8 or float32 -> ``out (out_size, n)`` float32, or
    ``out (n, out_size)`` when ``transposed``. A uint8 ``src (in, a, n)`` (``a`` strided planes read
    side by side) is resampled into ``out (out_size, a * n)`` in one GEMM per block."""
    block, span, n = bands.block, bands.span, src.shape[-1]
    out_size = out.shape[1] if transposed else out.shape[0]
    chunk = _chunk(n, block * span) if src.ndim == 2 else n
    # uint8 windows are converted one at a time: the float32 copy stays in cache, and the whole
    # image is never held in float32 (a 1080p RGB image would be 25 MB)
    window = np.empty((span,) + src.shape[1:-1] + (chunk,), np.float32) if src.dtype != np.float32 else None
    for b, start in enumerate(bands.starts):
        o0 = b * block
        rows = min(block, out_size - o0)
        for c0 in range(0, n, chunk):
            c1 = min(n, c0 + chunk)
            if window is None:
                lines = src[start : start + span, c0:c1]
            else:
                lines = window[..., : c1 - c0]
                np.copyto(lines, src[start : start + span, ..., c0:c1], casting="unsafe")
                lines = lines.reshape(span, -1)
            columns = slice(c0, c1) if src.ndim == 2 else slice(None)  # a 3-d src is read in one chunk
            if transposed:
                np.matmul(lines.T, bands.weights[b, :rows].T, out=out[columns, o0 : o0 + rows])
            else:
                np.matmul(bands.weights[b, :rows], lines, out=out[o0 : o0 + rows, columns])


def _cols_pass(src: np.ndarray, bands: _Bands, channels: int, out: np.ndarray) -> None:
    """Resample along each line: float32 ``src (m, in * channels) -> out (m, out_size * channels)``."""
    block, span, (m, width) = bands.block * channels, bands.span * channels, out.shape
    chunk = _chunk(m, block * span)
    for r0 in range(0, m, chunk):
        r1 = min(m, r0 + chunk)
        for b, start in enumerate(bands.starts):
            o0 = b * block
            cols = min(block, width - o0)
            lines = src[r0:r1, start * channels : start * channels + span]
            np.matmul(lines, bands.weights[b, :cols].T, out=out[r0:r1, o0 : o0 + cols])


def _round_to_uint8(x: np.ndarray, mode: str) -> np.ndarray:
    np.rint(x, out=x)  # half to even, as the reference path and torch's float path
    if mode != "bilinear":
        np.clip(x, 0, 255, out=x)  # bicubic overshoots; bilinear weights are convex
    return x.astype(np.uint8, order="C")


def _resize_uint8(planes: np.ndarray, channels: int, size: list[int], mode: str, antialias: bool) -> np.ndarray:
    """``planes (P, H, W * channels)`` uint8 -> ``(P, h, w * channels)`` uint8, ``size = [h, w]``.

    A plane is one channel (``channels = 1``) or a whole image with interleaved channels.
    """
    p, h, line = planes.shape
    width, (oh, ow) = line // channels, size
    rows = _pass_bands(h, oh, mode, antialias, 1, line)
    if rows is None and width == ow:
        return planes.copy()
    # The first pass reads every input pixel and costs the most; rows go first (contiguous windows,
    # long GEMMs) unless going across first leaves much less work for the second pass.
    rows_first = rows is not None and not (ow < width and oh * width > 2 * h * ow)
    if rows_first and channels > 1 and width >= 2 * ow:
        return _shrink_interleaved(planes[0], channels, size, rows, mode, antialias)[None]
    x, planes_first = planes, True  # x: (P, rows, line), or (rows, P, line) once the planes were merged
    if rows_first:
        if p > 1 and _chunk(p * line, rows.block * rows.span) == p * line:
            # every plane in one GEMM per block: P times fewer numpy calls, which small images are bound by
            # (640x480 -> 224 in 0.48 ms instead of 0.62)
            x, planes_first = np.empty((oh, p, line), np.float32), False
            _rows_pass(planes.transpose(1, 0, 2), rows, x.reshape(oh, p * line))
        else:
            x = np.empty((p, oh, line), np.float32)
            for i in range(p):
                _rows_pass(planes[i], rows, x[i])
    if width != ow:
        cols = _pass_bands(width, ow, mode, antialias, channels, x.size // line)
        lines = x.reshape(-1, line)
        y = np.empty((lines.shape[0], ow * channels), np.float32)
        _cols_pass(lines if lines.dtype == np.float32 else lines.astype(np.float32), cols, channels, y)
        x = y.reshape(x.shape[:2] + (ow * channels,))
    if rows is not None and not rows_first:
        y = np.empty((p, oh, x.shape[2]), np.float32)
        for i in range(p):
            _rows_pass(x[i], rows, y[i])
        x = y
    return _round_to_uint8(x if planes_first else x.transpose(1, 0, 2), mode)


def _shrink_interleaved(img: np.ndarray, channels: int, size: list[int], rows: _Bands, mode: str,
                        antialias: bool) -> np.ndarray:
    """``img (H, W * C)`` -> ``(h, w * C)`` for interleaved images at least twice as wide as the result.

    The row pass writes its result transposed, ``(W, C, h)``, so the column pass becomes a row pass
    over one long GEMM dimension instead of C-times-larger Kronecker weights; the price is one
    transposition of the (small) result: 1080p -> 224 took 2.1 ms instead of 2.4, 500x375 -> 256
    (1.5x narrower) was slower this way.
    """
    h, line = img.shape
    width, (oh, ow) = line // channels, size
    columns = np.empty((line, oh), np.float32)
    _rows_pass(img, rows, columns, transposed=True)
    across = _pass_bands(width, ow, mode, antialias, 1, channels * oh)
    y = np.empty((ow, channels * oh), np.float32)
    _rows_pass(columns.reshape(width, channels * oh), across, y)
    out = np.empty((oh, ow, channels), np.uint8)
    np.copyto(out, _round_to_uint8(y, mode).reshape(ow, channels, oh).transpose(2, 0, 1))
    return out.reshape(oh, ow * channels)


def resize_uint8_hwc(img: np.ndarray, size: list[int], mode: str, antialias: bool) -> np.ndarray:
    """``(H, W, C)`` or ``(H, W)`` uint8 -> ``(h, w, C)`` / ``(h, w)`` uint8, ``size = [h, w]``."""
    h, w = img.shape[:2]
    channels = img.shape[2] if img.ndim == 3 else 1
    out = _resize_uint8(img.reshape(1, h, w * channels), channels, size, mode, antialias)
    return out.reshape((size[0], size[1]) + img.shape[2:])


def resize_uint8_planes(chw: np.ndarray, size: list[int], mode: str, antialias: bool) -> np.ndarray:
    """``(..., C, H, W)`` uint8 -> ``(..., C, h, w)`` uint8, ``size = [h, w]``."""
    out = _resize_uint8(chw.reshape((-1,) + chw.shape[-2:]), 1, size, mode, antialias)
    return out.reshape(chw.shape[:-2] + tuple(size))
