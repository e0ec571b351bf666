"""CPU depthwise convolution (one input channel and one filter per group: MobileNet, EfficientNet, ConvNeXt).

There is no GEMM to hand these to: im2col plus one tiny GEMM per channel ran 9-33x torch's time. Two ways:

- with numba (``_jit_kernels.py``), any stride, padding and dilation: each (image, channel) plane is split
  by stride phase into flat zero-bordered planes, so every tap is one contiguous multiply-add over the whole
  output (the input gradient scatters the same way, the weight gradient is one dot product per tap and
  plane); maps of at most ``_CHANNELS_LAST_MAX_PIXELS`` output pixels go channels-last instead, where every
  tap is a multiply-add over the channels (per-plane setup would dominate there);
- without it, stride 1 and undilated (the gradients take any stride): tap accumulation on each image
  flattened per channel, where tap ``(ky, kx)`` is one contiguous slice shifted by ``ky * padded_width + kx``
  (the numpy reference).

Both split the batch over hubkit's threads by image; results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from hubkit.kernels import _jit
from hubkit.kernels._cpu_util import Pads, Pair, _numba_min_items, _over_images, _scratch


def is_depthwise(cg: int, oc: int, groups: int) -> bool:
    """One input channel and one filter per group (channel multiplier 1)."""
    return cg == 1 and oc == groups


def _compiled(*arrays: np.ndarray):
    if all(a.dtype in (np.float32, np.float64) for a in arrays) and len({a.dtype for a in arrays}) == 1:
        return _jit.compiled(arrays[0].size)
    return None


def _geometry(in_hw: Pair, out_hw: Pair, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair) -> tuple:
    """``(SY, SX, PT, PL, DY, DX, PHP, PWP)`` for the compiled kernels: the phase planes hold every padded row
    and column the windows read (and the input's own, so the input gradient can be gathered back)."""
    (sy, sx), (dy, dx) = stride, dilation
    reach_h = max((out_hw[0] - 1) * sy + dy * (kernel[0] - 1) + 1, in_hw[0] + pads[0][0])
    reach_w = max((out_hw[1] - 1) * sx + dx * (kernel[1] - 1) + 1, in_hw[1] + pads[1][0])
    return (sy, sx, pads[0][0], pads[1][0], dy, dx, -(-reach_h // sy) + 1, -(-reach_w // sx) + 1)


# Output maps of at most this many pixels use the channels-last kernels (measured on MobileNet-V2's layers:
# 3-8x faster at 14x14 and below, slower from 28x28 up, where the flat-plane kernels win).
_CHANNELS_LAST_MAX_PIXELS = 256


def _channels_last(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def _channels_first(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _small(out_hw: Pair) -> bool:
    return out_hw[0] * out_hw[1] <= _CHANNELS_LAST_MAX_PIXELS


def _images(n: int, bytes_per_image: int, serial, parallel) -> None:
    """Run a compiled pass over the ``n`` images: ``parallel(chunks)`` once on numba's threads when they are
    usable for the job (``_jit.parallel_chunks``), else ``serial(n0, n1)`` over chunks on hubkit's pool. Each
    image is computed whole by one thread either way: the same bits."""
    chunks = _jit.parallel_chunks(n, _numba_min_items(bytes_per_image), n * bytes_per_image)
    if chunks:
        parallel(chunks)
    else:
        _over_images(n, bytes_per_image, serial)


def _taps_last(w: np.ndarray) -> np.ndarray:
    """(C, 1, KH, KW) -> (KH*KW, C)."""
    return np.ascontiguousarray(w.reshape(w.shape[0], -1).T)


def compiled_forward(x: np.ndarray, w: np.ndarray, stride: Pair, pads: Pads, dilation: Pair, out_hw: Pair):
    """Depthwise cross-correlation ``x`` (N, C, H, W) with ``w`` (C, 1, KH, KW) -> (N, C, OH, OW), or None when
    the compiled kernels do not apply (no numba, other dtypes)."""
    jit = _compiled(x, w)
    if jit is None:
        return None
    n, c = x.shape[:2]
    kernel = tuple(w.shape[2:])
    if _small(out_hw):
        xt, wt = _channels_last(x), _taps_last(w)
        yt = np.empty((n, *out_hw, c), dtype=x.dtype)
        args = (*stride, pads[0][0], pads[1][0], *dilation)
        _images(n, x[0].nbytes, lambda n0, n1: jit.depthwise_forward_cl(xt, wt, *kernel, yt, n0, n1, *args),
                lambda chunks: jit.depthwise_forward_cl_parallel(xt, wt, *kernel, yt, *args, chunks))  # fmt: skip
        return _channels_first(yt)
    w2 = np.ascontiguousarray(w.reshape(c, -1))
    xc = np.ascontiguousarray(x)
    y = np.empty((n, c, *out_hw), dtype=x.dtype)
    geo = _geometry(x.shape[2:], out_hw, kernel, stride, pads, dilation)
    _images(n, x[0].nbytes, lambda n0, n1: jit.depthwise_forward(xc, w2, kernel[1], y, n0, n1, geo),
            lambda chunks: jit.depthwise_forward_parallel(xc, w2, kernel[1], y, geo, chunks))  # fmt: skip
    return y


def compiled_grad_input(gy: np.ndarray, w: np.ndarray, in_hw: Pair, stride: Pair, pads: Pads, dilation: Pair):
    """Input gradient of :func:`compiled_forward`: ``gy`` (N, C, OH, OW) -> (N, C, H, W), or None."""
    jit = _compiled(gy, w)
    if jit is None:
        return None
    n, c = gy.shape[:2]
    kernel = tuple(w.shape[2:])
    if _small(gy.shape[2:]):
        gyt, wt = _channels_last(gy), _taps_last(w)
        gxt = np.empty((n, *in_hw, c), dtype=gy.dtype)
        args = (*stride, pads[0][0], pads[1][0], *dilation)
        _images(n, gxt[0].nbytes, lambda n0, n1: jit.depthwise_input_grad_cl(gyt, wt, *kernel, gxt, n0, n1, *args),
                lambda chunks: jit.depthwise_input_grad_cl_parallel(gyt, wt, *kernel, gxt, *args, chunks))  # fmt: skip
        return _channels_first(gxt)
    w2 = np.ascontiguousarray(w.reshape(c, -1))
    gyc = np.ascontiguousarray(gy)
    gx = np.empty((n, c, *in_hw), dtype=gy.dtype)
    geo = _geometry(in_hw, gy.shape[2:], kernel, stride, pads, dilation)
    _images(n, gx[0].nbytes, lambda n0, n1: jit.depthwise_input_grad(gyc, w2, kernel[1], gx, n0, n1, geo),
            lambda chunks: jit.depthwise_input_grad_parallel(gyc, w2, kernel[1], gx, geo, chunks))  # fmt: skip
    return gx


def compiled_grad_weight(x: np.ndarray, gy: np.ndarray, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair):
    """Weight gradient of :func:`compiled_forward` -> (C, 1, KH, KW), or None; per-image partial sums (float64)
    are added in image order."""
    jit = _compiled(x, gy)
    if jit is None:
        return None
    n, c = x.shape[:2]
    if _small(gy.shape[2:]):
        xt, gyt = _channels_last(x), _channels_last(gy)
        parts = np.empty((n, kernel[0] * kernel[1], c), dtype=x.dtype)
        args = (*stride, pads[0][0], pads[1][0], *dilation)
        _images(n, x[0].nbytes, lambda n0, n1: jit.depthwise_weight_grad_cl(xt, gyt, *kernel, parts, n0, n1, *args),
                lambda k: jit.depthwise_weight_grad_cl_parallel(xt, gyt, *kernel, parts, *args, k))  # fmt: skip
        return parts.sum(axis=0, dtype=np.float64).T.astype(x.dtype).reshape(c, 1, *kernel)
    xc, gyc = np.ascontiguousarray(x), np.ascontiguousarray(gy)
    partial = np.empty((n, c, kernel[0] * kernel[1]))
    geo = _geometry(x.shape[2:], gy.shape[2:], kernel, stride, pads, dilation)
    _images(n, x[0].nbytes, lambda n0, n1: jit.depthwise_weight_grad(xc, gyc, kernel[1], partial, n0, n1, geo),
            lambda chunks: jit.depthwise_weight_grad_parallel(xc, gyc, kernel[1], partial, geo, chunks))  # fmt: skip
    return partial.sum(axis=0).astype(x.dtype).reshape(c, 1, *kernel)


# ---------------------------------------------------------------- numpy reference (stride 1 forward)


def taps_apply(cg: int, oc: int, groups: int, stride: Pair, dilation: Pair) -> bool:
    """Whether a conv is depthwise (one input channel and one filter per group), stride 1 and undilated: the
    forward :func:`stride1` handles. The two gradients take any stride (pass ``stride=(1, 1)``
    to ask about them): they run the stride-1 kernels on ``gy`` spread out by the stride."""
    return cg == 1 and oc == groups and stride == (1, 1) and dilation == (1, 1)


def stride1(x: np.ndarray, w: np.ndarray, pads: Pads) -> np.ndarray:
    """Depthwise (one filter per channel), stride-1, undilated cross-correlation by tap accumulation.

    Each image is zero-padded and flattened per channel, so tap ``(ky, kx)`` is one contiguous slice shifted by
    ``ky * padded_width + kx``: ``y += w[c, ky, kx] * slice`` runs as long vectorised passes with no im2col
    (1.5-2.7x faster than columns + per-channel GEMMs on MobileNet/ConvNeXt shapes). Outputs are computed on
    the padded width and the extra columns cut off at the end.
    """
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    (pt, pb), (pl, pr) = pads
    ph, pw = h + pt + pb, wd + pl + pr
    oh, ow = ph - kh + 1, pw - kw + 1
    length = oh * pw
    dtype = np.result_type(x, w)
    taps = w.reshape(c, kh * kw).astype(dtype, copy=False)
    y = np.empty((n, c, oh, ow), dtype=dtype)

    def images(n0: int, n1: int) -> None:
        # kw - 1 spare zeros: the last row's rightmost taps read past the padded image
        flat = _scratch("depthwise_in", (c, ph * pw + kw - 1), dtype, zero=True)
        wide = _scratch("depthwise_out", (c, length), dtype)
        term = _scratch("depthwise_tmp", (c, length), dtype)
        image = flat[:, : ph * pw].reshape(c, ph, pw)
        for i in range(n0, n1):
            image[:, pt : pt + h, pl : pl + wd] = x[i]
            for t in range(kh * kw):
                ky, kx = divmod(t, kw)
                tap = flat[:, ky * pw + kx : ky * pw + kx + length]
                if t == 0:
                    np.multiply(tap, taps[:, :1], out=wide)
                else:
                    np.multiply(tap, taps[:, t : t + 1], out=term)
                    wide += term
            y[i] = wide.reshape(c, oh, pw)[:, :, :ow]

    _over_images(n, 3 * c * length * np.dtype(dtype).itemsize, images)
    return y


def stride1_grad_weight(
    x: np.ndarray, gy: np.ndarray, kernel: Pair, pads: Pads, stride: Pair = (1, 1)
) -> np.ndarray:
    """Weight gradient of an undilated depthwise conv -> (C, 1, KH, KW): per tap, the per-channel dot product of
    ``gy`` (placed on the stride-1 output grid over the padded width, every ``stride``-th position, zeros
    elsewhere) with that tap's shifted slice of the flattened padded input. Per-image partial sums are added
    in image order, so the result does not depend on the thread count."""
    n, c, h, wd = x.shape
    kh, kw = kernel
    (pt, pb), (pl, pr) = pads
    sy, sx = stride
    ph, pw = h + pt + pb, wd + pl + pr
    oh = ph - kh + 1
    gh, gw_ = gy.shape[2:]
    length = oh * pw
    dtype = np.result_type(x, gy)
    partial = np.empty((n, c, kh * kw), dtype=dtype)

    def images(n0: int, n1: int) -> None:
        flat = _scratch("depthwise_in", (c, ph * pw + kw - 1), dtype, zero=True)
        wide = _scratch("depthwise_out", (c, length), dtype, zero=True)
        image = flat[:, : ph * pw].reshape(c, ph, pw)
        grad = wide.reshape(c, oh, pw)
        for i in range(n0, n1):
            image[:, pt : pt + h, pl : pl + wd] = x[i]
            grad[:, : (gh - 1) * sy + 1 : sy, : (gw_ - 1) * sx + 1 : sx] = gy[i]
            for t in range(kh * kw):
                ky, kx = divmod(t, kw)
                partial[i, :, t] = np.einsum("cl,cl->c", wide, flat[:, ky * pw + kx : ky * pw + kx + length])

    _over_images(n, 2 * c * length * np.dtype(dtype).itemsize, images)
    return partial.sum(axis=0).reshape(c, 1, kh, kw)
