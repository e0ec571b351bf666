"""The wide layout of small convolutions (``cpu_conv.py``) and the direct convolution on it.

The padded image is split into ``SY*SX`` stride-phase planes and each plane is flattened; output pixel
``(i, j)`` then reads kernel tap ``t`` at element ``offset[t] + i*PW + j`` of plane ``phase[t]`` (see
:func:`geometry`), so every tap sees one contiguous run of ``OH*PW`` pixels, the last ``PW - OW`` entries of
each output row being discarded. ``cpu_conv.py`` copies those runs into wide im2col columns for a GEMM.

The direct convolution (numba, ``_jit_kernels.direct_conv*``) reads the runs in place instead: each tap is a
multiply-add of one run into an output row of accumulators, with no columns at all (the forward holds a chunk
of 16 outputs of four channels in registers while every tap passes over it). On convolutions with
few output channels and short columns (LeNet-5's 1->6 and 6->16 5x5 layers, small CIFAR-style layers) that
is 1.15-1.5x faster than im2col + GEMM on one thread, forward and backward, and with two threads, where
the direct kernels run on numba's own threads (``_jit.parallel_threads``) and the GEMM path on hubkit's pool,
1.2-1.8x on layers of up to 64 output channels and 320 column rows; on wider layers the GEMM's register
blocking wins, so :func:`direct_applies` keeps them on it. The input gradient scatters the same
runs back into planes, the weight gradient is one dot product per (output channel, input channel, tap)
and image, summed over images after the thread split, so results do not depend on the thread count.
Without numba the numpy GEMM path runs: it is the reference the direct kernels are tested against.
"""

from __future__ import annotations

import functools

import numpy as np

from hubkit.kernels import _jit
from hubkit.kernels._cpu_util import Pads, Pair, _numba_min_items, _over_images, _scratch

# The direct convolution runs when a column has at most _DIRECT_MAX_ROWS rows (C/groups*KH*KW) and the
# layer has at most _DIRECT_MAX_OUT_CHANNELS output channels per group. Measured with two threads (numba's
# for the direct kernels, hubkit's pool for im2col + GEMM), forward and backward: 1.2-1.8x faster on
# LeNet-5's layers, CIFAR-style 16- and 32-channel 3x3 layers, the MNIST example's 1->32 and 32->64 and the
# 3->32/3->64 stems; even with the GEMM at 64->64 3x3 (576 rows) and slower from 128 channels up
# (bench/engine.py --only direct runs the small layers against torch; bench/RESULTS.md).
_DIRECT_MAX_ROWS = 320
_DIRECT_MAX_OUT_CHANNELS = 64
# On numba's threads the batch goes in runs of images whose wide output gradient (or padded planes) takes at
# most this many bytes: a 224x224 stem's whole batch widened at once added 53 MB to ResNet-18's peak memory.
_PARALLEL_RUN_BYTES = 8 << 20


def geometry(
    hw: Pair, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair, out_hw: Pair
) -> tuple[Pair, tuple[tuple[int, int], ...]]:
    """The stride-phase planes' size ``(PH, PW)`` and, for each kernel position ``(ky, kx)`` in row-major
    order, ``(phase, offset)``.

    The padded image is split into ``SY*SX`` phase planes, plane ``py*SX + px`` holding padded pixels
    ``(py::SY, px::SX)``. Output pixel ``(i, j)`` reads, at kernel position ``(ky, kx)``, padded pixel
    ``(i*SY + ky*DY, j*SX + kx*DX)``, which is element ``offset + i*PW + j`` of the flattened plane of
    phase ``((ky*DY) % SY, (kx*DX) % SX)`` with ``offset = (ky*DY // SY)*PW + kx*DX // SX``: one
    contiguous run of ``OH*PW`` elements per kernel position. Each plane has one spare row, so the run of
    the last kernel position (whose final ``PW - OW`` entries are never used) stays inside it.
    """
    return _geometry(tuple(hw), tuple(kernel), tuple(stride), (tuple(pads[0]), tuple(pads[1])), tuple(dilation))


@functools.lru_cache(maxsize=256)
def _geometry(hw: Pair, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair
              ) -> tuple[Pair, tuple[tuple[int, int], ...]]:  # fmt: skip
    """:func:`geometry`, cached per layer shape (a training step asks for the same few every time)."""
    (kh, kw), (sy, sx), (dy, dx) = kernel, stride, dilation
    hp, wp = hw[0] + sum(pads[0]), hw[1] + sum(pads[1])
    ph, pw = -(-hp // sy) + 1, -(-wp // sx)
    taps = []
    for ky in range(kh):
        ry, py = divmod(ky * dy, sy)
        for kx in range(kw):
            rx, px = divmod(kx * dx, sx)
            taps.append((py * sx + px, ry * pw + rx))
    return (ph, pw), tuple(taps)


def compiled_copies(a: np.ndarray):
    """The compiled kernels for the short-row copies of the wide layout (float32/float64), else None."""
    return _jit.compiled(a.size) if a.dtype in (np.float32, np.float64) else None


def planes(x: np.ndarray, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair, out_hw: Pair, jit=None
           ) -> np.ndarray:  # fmt: skip
    """The phase planes of ``x`` (N, C, H, W): ``(SY*SX, N, C, PH*PW)``, zero-padded, in a scratch buffer
    (roles ``padded`` and, for a stride, ``planes``). ``jit``: the compiled kernels to copy with (default:
    :func:`compiled_copies`, which leaves small jobs to numpy)."""
    n, c, h, w = x.shape
    (sy, sx), ((pt, _), (pl, _)) = stride, pads
    (ph, pw), _, _ = _tap_table((h, w), kernel, stride, pads, dilation, tuple(out_hw))
    jit = jit or compiled_copies(x)
    padded = _scratch("padded", (n, c, ph * sy, pw * sx), x.dtype, zero=jit is None)
    if jit is None:
        padded[:, :, pt : pt + h, pl : pl + w] = x
    else:
        rows = (np.ascontiguousarray(x).reshape(n * c, h, w), padded.reshape(n * c, ph * sy, pw * sx), pt, pl)
        chunks = _jit.parallel_chunks(n * c, _numba_min_items(ph * sy * pw * sx * x.itemsize), 2 * x.nbytes)
        if chunks:
            jit.pad_rows_parallel(*rows, chunks)
        else:
            jit.pad_rows(*rows)
    # (N, C, PH, SY, PW, SX) -> (SY, SX, N, C, PH, PW): a no-op for stride 1, one copy otherwise
    split = padded.reshape(n, c, ph, sy, pw, sx).transpose(3, 5, 0, 1, 2, 4)
    if stride != (1, 1):
        copy = _scratch("planes", split.shape, x.dtype)
        np.copyto(copy, split)
        split = copy
    return split.reshape(sy * sx, n, c, ph * pw)


def merge(gplanes: np.ndarray, out: np.ndarray, stride: Pair, pads: Pads) -> None:
    """Adjoint of :func:`planes`: ``out`` (N, C, H, W) = the image pixels of phase planes ``gplanes``
    (SY*SX, N, C, PH*PW), overwriting ``out``; ``gplanes`` may be a view of more channels."""
    n, c, h, w = out.shape
    (sy, sx), ((pt, _), (pl, _)) = stride, pads
    ph_pw = gplanes.shape[3]
    pw = -(-(w + sum(pads[1])) // sx)
    ph = ph_pw // pw
    padded = gplanes.reshape(sy, sx, n, c, ph, pw).transpose(2, 3, 4, 0, 5, 1).reshape(n, c, ph * sy, pw * sx)
    np.copyto(out, padded[:, :, pt : pt + h, pl : pl + w])


def widen(g: np.ndarray, pw: int, jit=None) -> np.ndarray:
    """(N, OC, OH, OW) -> (N, OC, OH*PW) with zeros in the discarded wide columns ``OW:PW`` (scratch
    ``widened``; ``jit`` as for :func:`planes`)."""
    n, oc, oh, ow = g.shape
    wide = _scratch("widened", (n, oc, oh, pw), g.dtype)
    jit = jit or compiled_copies(g)
    if jit is None:
        wide[..., ow:] = 0
        wide[..., :ow] = g
    else:
        rows = (np.ascontiguousarray(g).reshape(-1, ow), wide.reshape(-1, pw))
        chunks = _jit.parallel_chunks(n * oc * oh, _numba_min_items(pw * g.itemsize), 2 * g.nbytes)
        if chunks:
            jit.widen_rows_parallel(*rows, chunks)
        else:
            jit.widen_rows(*rows)
    return wide.reshape(n, oc, oh * pw)


# ---------------------------------------------------------------- direct convolution


def direct_applies(dtypes: tuple[np.dtype, ...], rows: int, oc: int, groups: int, kernel: Pair, pads: Pads,
                   work: int):  # fmt: skip
    """The compiled kernel module when the direct convolution should run, else None: the operands' ``dtypes``
    all float32 or all float64, numba available and enabled, not a 1x1 unpadded conv (that is one GEMM without
    im2col), and a small layer (see ``_DIRECT_MAX_ROWS``). ``rows`` = C/groups*KH*KW; ``work`` = elements of
    the job."""
    if len(set(dtypes)) != 1 or dtypes[0] not in (np.float32, np.float64):
        return None
    if kernel == (1, 1) and pads == ((0, 0), (0, 0)):
        return None
    if rows > _DIRECT_MAX_ROWS or oc // groups > _DIRECT_MAX_OUT_CHANNELS:
        return None
    return _jit.compiled(work)


def _runs(n: int, bytes_per_image: int) -> list[tuple[int, int]]:
    """Consecutive ``(n0, n1)`` runs of the ``n`` images of at most ``_PARALLEL_RUN_BYTES`` each (one image at
    least): the units the parallel drivers take at a time. Each image is computed whole either way."""
    step = max(1, _PARALLEL_RUN_BYTES // max(bytes_per_image, 1))
    return [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]


@functools.lru_cache(maxsize=256)
def _tap_table(hw: Pair, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair, out_hw: Pair
               ) -> tuple[Pair, np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`geometry` as the compiled kernels take it: ``((PH, PW), phase, offset)``, int64 arrays (read-only:
    cached per layer shape, since a training step asks for the same few)."""
    plane_hw, taps = geometry(hw, kernel, stride, pads, dilation, out_hw)
    table = np.asarray(taps, dtype=np.int64).reshape(-1, 2)
    phase, offset = np.ascontiguousarray(table[:, 0]), np.ascontiguousarray(table[:, 1])
    phase.flags.writeable = offset.flags.writeable = False
    return plane_hw, phase, offset


@functools.lru_cache(maxsize=256)
def _blocks(per_group: int, groups: int) -> np.ndarray:
    """(K, 2) int64: ``(first channel, count)`` of the blocks of at most four channels the compiled kernels
    take, none spanning two groups (read-only, cached)."""
    blocks = np.array([(g * per_group + i, min(4, per_group - i))
                       for g in range(groups) for i in range(0, per_group, 4)], dtype=np.int64).reshape(-1, 2)
    blocks.flags.writeable = False
    return blocks


def _by_fours(w4: np.ndarray) -> np.ndarray:
    """``w4`` (G, A, B, T) -> (G * ceil(A/4), B, T, 4): axis A in blocks of four (the last zero-padded), each
    block's four entries last."""
    g, a, b, t = w4.shape
    k = -(-a // 4)
    if a % 4:
        w4 = np.concatenate([w4, np.zeros((g, 4 * k - a, b, t), dtype=w4.dtype)], axis=1)
    return np.ascontiguousarray(w4.reshape(g, k, 4, b, t).transpose(0, 1, 3, 4, 2)).reshape(g * k, b, t, 4)


def _forward_weights(w3: np.ndarray, groups: int) -> np.ndarray:
    """``w3`` (OC, C/G, T) -> (K, C/G, T, 4) by the output-channel blocks of :func:`_blocks`, zero-padded (see
    ``direct_conv``)."""
    oc, cg, taps = w3.shape
    return _by_fours(w3.reshape(groups, oc // groups, cg, taps))


def _input_weights(w3: np.ndarray, groups: int) -> np.ndarray:
    """``w3`` (OC, C/G, T) -> (K, OC/G, T, 4) by the input-channel blocks of :func:`_blocks`, zero-padded (see
    ``direct_conv_grad_input``)."""
    oc, cg, taps = w3.shape
    return _by_fours(w3.reshape(groups, oc // groups, cg, taps).transpose(0, 2, 1, 3))


def conv2d(jit, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, pads: Pads, dilation: Pair,
           out_hw: Pair, groups: int) -> np.ndarray:  # fmt: skip
    """The direct convolution ``x`` (N, C, H, W) with ``w`` (OC, C/G, KH, KW) [+ ``b``] -> (N, OC, OH, OW),
    the batch split over numba's threads when they are usable (``_jit.parallel_threads``), else over
    hubkit's pool."""
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    (ph, pw), phase, offset = _tap_table((h, wd), (kh, kw), stride, pads, dilation, tuple(out_hw))
    blocks = _blocks(oc // groups, groups)
    wb = _forward_weights(w.reshape(oc, cg, kh * kw), groups)
    bias = np.zeros(oc, dtype=w.dtype) if b is None else np.ascontiguousarray(b, dtype=w.dtype)
    y = np.empty((n, oc) + tuple(out_hw), dtype=x.dtype)

    if _jit.parallel_threads(x.nbytes + y.nbytes) > 1:
        for n0, n1 in _runs(n, c * ph * pw * stride[0] * stride[1] * x.itemsize):
            xp = planes(x[n0:n1], (kh, kw), stride, pads, dilation, out_hw, jit)
            jit.direct_conv_parallel(xp, wb, bias, blocks, phase, offset, pw, y[n0:n1])
        return y

    def images(n0: int, n1: int) -> None:
        xp = planes(x[n0:n1], (kh, kw), stride, pads, dilation, out_hw, jit)
        jit.direct_conv(xp, wb, bias, blocks, phase, offset, pw, y[n0:n1])

    _over_images(n, cg * kh * kw * out_hw[0] * pw * x.itemsize, images)
    return y


def transposed_pads(stride: Pair, dilation: Pair, kernel: Pair, pads: Pads) -> Pads | None:
    """The padding of the forward convolution that gives a stride-1 layer's input gradient (``K - 1 - pad`` on
    each side, the full correlation with :func:`flipped_kernel`), or None when the layer is strided or dilated
    or pads by more than ``K - 1``. Used by the direct and the Winograd input gradients."""
    (kh, kw), ((pt, pb), (pl, pr)) = kernel, pads
    flipped = ((kh - 1 - pt, kh - 1 - pb), (kw - 1 - pl, kw - 1 - pr))
    if stride != (1, 1) or dilation != (1, 1) or min(flipped[0] + flipped[1]) < 0:
        return None
    return flipped


def flipped_kernel(w: np.ndarray, groups: int) -> np.ndarray:
    """``w`` (OC, C/G, KH, KW) -> (C, OC/G, KH, KW), rotated by 180 degrees: the kernel of the input gradient."""
    oc, cg, kh, kw = w.shape
    turned = w[:, :, ::-1, ::-1].reshape(groups, oc // groups, cg, kh, kw).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(turned).reshape(groups * cg, oc // groups, kh, kw)


def conv2d_backward(jit, x: np.ndarray | None, gy: np.ndarray, w: np.ndarray | None, w_shape: tuple[int, ...],
                    in_hw: Pair, stride: Pair, pads: Pads, dilation: Pair, groups: int, need_x: bool, need_w: bool
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:  # fmt: skip
    """Both gradients of the direct convolution (as ``cpu_conv.conv2d_backward`` gives them).

    With stride and dilation 1 (and no padding wider than the kernel less one) the input gradient is the direct
    forward of ``gy`` with the flipped, transposed kernel and padding ``K - 1 - pad``, whose outputs stay in
    registers: 0.8-0.9x the time of the scatter kernel on LeNet-5's 6->16 layer, 0.8x on 16- to 64-channel 3x3
    layers. Otherwise one pass over the batch scatters ``gy`` back over the taps, each thread widening its
    images' output gradient once for both gradients."""
    n, oc, oh, ow = gy.shape
    _, cg, kh, kw = w_shape
    gx = partial = None
    gx_pads = transposed_pads(stride, dilation, (kh, kw), pads) if need_x else None
    if gx_pads is not None:
        gx = conv2d(jit, gy, flipped_kernel(w, groups), None, (1, 1), gx_pads, (1, 1), tuple(in_hw), groups)
        need_x = False
        if not need_w:
            return gx, None
    (ph, pw), phase, offset = _tap_table(tuple(in_hw), (kh, kw), stride, pads, dilation, (oh, ow))
    if need_x:
        in_blocks = _blocks(cg, groups)
        wb = _input_weights(w.reshape(oc, cg, kh * kw), groups)
        gx = np.empty((n, cg * groups) + tuple(in_hw), dtype=gy.dtype)
    if need_w:
        out_blocks = _blocks(oc // groups, groups)
        partial = np.empty((n, oc, cg, kh * kw), dtype=gy.dtype)

    parallel = _jit.parallel_threads(gy.nbytes + (x.nbytes if need_w else 0) + (gx.nbytes if need_x else 0)) > 1

    def images(n0: int, n1: int) -> None:
        g = widen(gy[n0:n1], pw, jit)
        if need_x:
            # three spare channels per group for the unused rows of a partial block (see direct_conv_grad_input)
            gplanes = _scratch("gplanes", (stride[0] * stride[1], n1 - n0, gx.shape[1] + 3 * groups, ph * pw),
                               gy.dtype)  # fmt: skip
            kernel = jit.direct_conv_grad_input_parallel if parallel else jit.direct_conv_grad_input
            kernel(g, wb, in_blocks, phase, offset, gplanes)
            merge(gplanes[:, :, : gx.shape[1]], gx[n0:n1], stride, pads)
        if partial is not None:
            xp = planes(x[n0:n1], (kh, kw), stride, pads, dilation, (oh, ow), jit)
            kernel = jit.direct_conv_grad_weight_parallel if parallel else jit.direct_conv_grad_weight
            kernel(xp, g, out_blocks, phase, offset, partial[n0:n1])

    if parallel:
        for n0, n1 in _runs(n, oc * oh * pw * gy.itemsize):
            images(n0, n1)
    else:
        _over_images(n, cg * kh * kw * oh * pw * gy.itemsize, images)
    gw = partial.sum(axis=0).reshape(w_shape) if partial is not None else None
    return gx, gw
