"""CPU kernels on numpy arrays: im2col/col2im, convolution, pooling and interpolation.

Conventions shared with ``cuda.py`` (same names, same signatures, same results):

- images are NCHW; ``kernel``, ``stride``, ``dilation`` are ``(y, x)`` pairs;
- convolution padding is ``pads = ((top, bottom), (left, right))`` so ``padding="same"`` with an even
  kernel (asymmetric) needs no special case; pooling padding is symmetric ``(py, px)``;
- the column matrix is in Caffe layout ``(C*KH*KW, N*OH*OW)``: rows ordered ``(c, ky, kx)``, so the rows
  of group ``g`` are one contiguous block, and the innermost axis (OW) stays contiguous with the image.

How the CPU path is fast (measured in bench/engine.py; see bench/RESULTS.md):

- a convolution builds its columns a few images at a time into one reused buffer of about
  ``_COL_CHUNK_BYTES``, so the GEMM reads them from cache right after they were written, instead of
  one col for the whole batch that is several times larger than the input and streamed through DRAM
  twice;
- a convolution with few column rows (``C/groups*KH*KW``, e.g. LeNet's 1->6 and 6->16 5x5) whose columns
  for the whole batch are small builds *wide* columns instead: per image ``(C*KH*KW, OH*PW)``, where
  each output row runs over the full padded width ``PW`` (the last ``PW - OW`` entries are discarded).
  Every kernel position then sees one contiguous run of ``OH*PW`` pixels of the (stride-phase split)
  padded image, so im2col is ``KH*KW`` long copies instead of ``KH*KW*OH`` short ones, and the GEMM
  output lands in NCHW order (``W @ col`` per image, one batched matmul). These columns are kept for
  the weight gradient (``keep_columns``);
- 1x1 convolutions without padding skip im2col: they are one (batched) matmul on the image itself;
- col2im and pooling loop over the KH*KW kernel positions with strided in-place ufuncs (``+=``,
  ``np.maximum(..., out=)``); ``np.add.at`` is never used (5-14x slower);
- max pooling tracks which kernel position won only when a gradient will be needed; the common 2x2,
  stride-2 window reduces the four strided views pairwise (three ``np.maximum``) and finds the first
  maximum with three comparisons;
- convolutions and the 2x2 max pool split their batch over hubkit's thread pool (``_threads.py``,
  ``hubkit.set_num_threads``) when each thread gets at least ``_PARALLEL_MIN_BYTES`` of work: each thread
  writes its own images of an output allocated before the split, and weight gradients are summed over
  images (or im2col chunks) after it in a fixed order, so results are bit-identical for any thread
  count. Per-image work is written as few, long numpy calls (e.g. stride-1 wide im2col is one copy of
  an overlapping strided view), because every call hands the GIL back and forth between the threads.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from hubkit.kernels._threads import parallel_for
from hubkit.kernels.generic import adam_update, batch_norm_backward, batch_norm_forward, sgd_update  # noqa: F401
from hubkit.kernels.shapes import (
    adaptive_bounds,
    avg_pool_divisors,
    conv_out_size,
    linear_indices,
    nearest_indices,
    pool_extra_pad,
    pool_out_size,
)

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]

# Size of one im2col chunk: small enough that the freshly written columns are still in cache when the
# GEMM reads them, but never fewer than _GEMM_MIN_COLUMNS output positions per GEMM, below which
# OpenBLAS loses efficiency (deep layers with 14x14 or 7x7 maps then take several images per chunk).
# Both chosen by measurement on ResNet-shaped layers (bench/engine.py).
_COL_CHUNK_BYTES = 4 << 20
_GEMM_MIN_COLUMNS = 3136
# Wide columns (see the module docstring) are used when a column has at most _WIDE_MAX_ROWS rows and the
# columns of the whole batch take at most _WIDE_MAX_BYTES; beyond that the GEMM is compute-bound and the
# wasted PW - OW columns cost more than the long copies save. Chosen by measurement (bench/engine.py).
_WIDE_MAX_ROWS = 256
_WIDE_MAX_BYTES = 16 << 20
# Temporaries that never leave a kernel call live in per-thread scratch buffers, one per role, reused from
# call to call: a fresh multi-megabyte array costs a page fault per 4 KiB page every time (glibc hands
# large freed blocks back to the OS), which measured as about half of a LeNet-5 training step. Arrays
# larger than _SCRATCH_MAX_BYTES are allocated normally, so a thread holds at most a few of these.
_SCRATCH_MAX_BYTES = 64 << 20
_scratch_buffers = threading.local()
# Kernels that split their batch over hubkit's thread pool (hubkit.set_num_threads) give each thread at
# least this many bytes of per-image work: below it the hand-off costs more than the second core gains.
# Chosen by measurement on LeNet-5's layers (bench/engine.py).
_PARALLEL_MIN_BYTES = 256 << 10


# ---------------------------------------------------------------- helpers


def _scratch(role: str, shape: tuple[int, ...], dtype: np.dtype, zero: bool = False) -> np.ndarray:
    """A contiguous ``shape`` array for a temporary of kind ``role`` (see ``_SCRATCH_MAX_BYTES``).

    Its contents are garbage unless ``zero``; it is overwritten by the next call that asks for ``role``
    on this thread, so it must not be returned or kept, and two live temporaries need two roles.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if nbytes > _SCRATCH_MAX_BYTES:
        return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
    buffers = _scratch_buffers.__dict__
    buf = buffers.get(role)
    if buf is None or buf.nbytes < nbytes:
        buf = buffers[role] = np.empty(nbytes, dtype=np.uint8)
    out = buf[:nbytes].view(dtype).reshape(shape)
    if zero:
        out.fill(0)
    return out


def _parallel_min_items(bytes_per_item: int) -> int:
    return -(-_PARALLEL_MIN_BYTES // max(bytes_per_item, 1))


def _over_images(n: int, bytes_per_image: int, body) -> None:
    """Run ``body(n0, n1)`` over contiguous chunks of the ``n`` images, on the thread pool when each
    chunk gets at least ``_PARALLEL_MIN_BYTES`` of work. Each chunk must write only its own images."""
    parallel_for(n, body, _parallel_min_items(bytes_per_image))


def _lowest(dtype: np.dtype) -> float | int:
    """The padding value that never wins a max: -inf for floats, the minimum for integers."""
    if np.issubdtype(dtype, np.floating):
        return -np.inf
    return np.iinfo(dtype).min


def _pad(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """Pad the two trailing axes of ``x`` (N, C, H, W); returns ``x`` itself when no padding is needed."""
    (pt, pb), (pl, pr) = pads
    if not (pt or pb or pl or pr):
        return x
    n, c, h, w = x.shape
    out = np.empty((n, c, h + pt + pb, w + pl + pr), dtype=x.dtype)
    out[:, :, :pt] = value
    out[:, :, pt + h :] = value
    out[:, :, pt : pt + h, :pl] = value
    out[:, :, pt : pt + h, pl + w :] = value
    out[:, :, pt : pt + h, pl : pl + w] = x
    return out


def _tap(a: np.ndarray, ky: int, kx: int, stride: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """The strided view of padded ``a`` that kernel position ``(ky, kx)`` sees: ``(..., OH, OW)``."""
    (sy, sx), (dy, dx), (oh, ow) = stride, dilation, out_hw
    y0, x0 = ky * dy, kx * dx
    return a[..., y0 : y0 + sy * (oh - 1) + 1 : sy, x0 : x0 + sx * (ow - 1) + 1 : sx]


def _windows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Zero-copy view ``(C, KH, KW, N, OH, OW)`` of padded ``xp`` (N, C, Hp, Wp)."""
    (kh, kw), (sy, sx), (dy, dx), (oh, ow) = kernel, stride, dilation, out_hw
    v = sliding_window_view(xp, (dy * (kh - 1) + 1, dx * (kw - 1) + 1), axis=(2, 3))
    v = v[:, :, : sy * (oh - 1) + 1 : sy, : sx * (ow - 1) + 1 : sx, ::dy, ::dx]
    return v.transpose(1, 4, 5, 0, 2, 3)


def _images_per_chunk(n: int, rows: int, positions: int, itemsize: int) -> int:
    """How many images one im2col chunk holds (see ``_COL_CHUNK_BYTES``)."""
    by_bytes = _COL_CHUNK_BYTES // max(rows * positions * itemsize, 1)
    by_columns = -(-_GEMM_MIN_COLUMNS // max(positions, 1))
    return int(max(1, min(n, max(by_bytes, by_columns))))


def _col_chunks(
    x: np.ndarray, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair, out_hw: Pair, nb: int | None = None
):  # fmt: skip
    """Yield ``(n0, m, col)`` with ``col`` the Caffe-layout columns ``(C*KH*KW, m*OH*OW)`` of images
    ``n0:n0+m``, ``nb`` images per chunk (default: :func:`_images_per_chunk`). ``col`` lives in a buffer
    reused by the next chunk: use it before advancing."""
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = kernel, out_hw
    rows = c * kh * kw
    nb = nb or _images_per_chunk(n, rows, oh * ow, x.itemsize)
    buf = _scratch("columns", (c, kh, kw, nb, oh, ow), x.dtype)
    for n0 in range(0, n, nb):
        m = min(nb, n - n0)
        part = buf if m == nb else np.empty((c, kh, kw, m, oh, ow), dtype=x.dtype)
        np.copyto(part, _windows(_pad(x[n0 : n0 + m], pads), kernel, stride, dilation, out_hw))
        yield n0, m, part.reshape(rows, m * oh * ow)


def _is_pointwise(kernel: Pair, pads: Pads) -> bool:
    return kernel == (1, 1) and pads == ((0, 0), (0, 0))


def _to_channel_major(g: np.ndarray, groups: int) -> np.ndarray:
    """(m, OC, OH, OW) -> (G, OC/G, m*OH*OW), one copy: the GEMM operand layout of an output chunk."""
    m, oc = g.shape[:2]
    return g.reshape(m, oc, -1).transpose(1, 0, 2).reshape(groups, oc // groups, -1)


# ---------------------------------------------------------------- wide columns


def _wide_geometry(
    hw: Pair, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair, out_hw: Pair
) -> tuple[Pair, list[tuple[int, int]]]:
    """Layout of wide columns: the stride-phase planes' size ``(PH, PW)`` and, for each kernel position
    ``(ky, kx)`` in row-major order, ``(phase, offset)``.

    The padded image is split into ``SY*SX`` phase planes, plane ``py*SX + px`` holding padded pixels
    ``(py::SY, px::SX)``. Output pixel ``(i, j)`` reads, at kernel position ``(ky, kx)``, padded pixel
    ``(i*SY + ky*DY, j*SX + kx*DX)``, which is element ``offset + i*PW + j`` of the flattened plane of
    phase ``((ky*DY) % SY, (kx*DX) % SX)`` with ``offset = (ky*DY // SY)*PW + kx*DX // SX``: one
    contiguous run of ``OH*PW`` elements per kernel position. Each plane has one spare row, so the run of
    the last kernel position (whose final ``PW - OW`` entries are never used) stays inside it.
    """
    (kh, kw), (sy, sx), (dy, dx) = kernel, stride, dilation
    hp, wp = hw[0] + sum(pads[0]), hw[1] + sum(pads[1])
    ph, pw = -(-hp // sy) + 1, -(-wp // sx)
    taps = []
    for ky in range(kh):
        ry, py = divmod(ky * dy, sy)
        for kx in range(kw):
            rx, px = divmod(kx * dx, sx)
            taps.append((py * sx + px, ry * pw + rx))
    return (ph, pw), taps


def _use_wide(n: int, rows: int, kernel: Pair, pads: Pads, out_hw: Pair, pw: int, itemsize: int) -> bool:
    """Whether wide columns ``(N, rows, OH*PW)`` are the faster choice (see ``_WIDE_MAX_ROWS``)."""
    if _is_pointwise(kernel, pads):
        return False
    return rows <= _WIDE_MAX_ROWS and n * rows * out_hw[0] * pw * itemsize <= _WIDE_MAX_BYTES


def _wide_columns(
    x: np.ndarray, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair, out_hw: Pair,
    out: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """Wide columns of ``x`` (N, C, H, W): ``(N, C*KH*KW, OH*PW)``, rows ordered ``(c, ky, kx)``; entry
    ``i*PW + j`` of a row is output pixel ``(i, j)`` for ``j < OW`` (the rest is discarded). Written into
    ``out`` (contiguous) when given, else into a scratch buffer."""
    n, c, h, w = x.shape
    (sy, sx), ((pt, _), (pl, _)) = stride, pads
    (ph, pw), taps = _wide_geometry((h, w), kernel, stride, pads, dilation, out_hw)
    padded = _scratch("padded", (n, c, ph * sy, pw * sx), x.dtype, zero=True)
    padded[:, :, pt : pt + h, pl : pl + w] = x
    # (N, C, PH, SY, PW, SX) -> (SY, SX, N, C, PH, PW): a no-op for stride 1, one copy otherwise
    planes = padded.reshape(n, c, ph, sy, pw, sx).transpose(3, 5, 0, 1, 2, 4)
    if stride != (1, 1):
        split = _scratch("planes", planes.shape, x.dtype)
        np.copyto(split, planes)
        planes = split
    planes = planes.reshape(sy * sx, n, c, ph * pw)
    run = out_hw[0] * pw
    shape = (n, c, len(taps), run)
    col = _scratch("columns", shape, x.dtype) if out is None else out.reshape(shape)
    if stride == (1, 1):
        # one phase: the kernel positions' runs start on a regular (ky*DY*PW + kx*DX) grid, so all of
        # them are one overlapping strided view and im2col is a single copy
        flat = planes[0]
        item = flat.itemsize
        runs = as_strided(
            flat, (n, c, kernel[0], kernel[1], run),
            (flat.strides[0], flat.strides[1], dilation[0] * pw * item, dilation[1] * item, item), writeable=False,
        )  # fmt: skip
        np.copyto(col.reshape(n, c, kernel[0], kernel[1], run), runs)
    else:
        for t, (phase, offset) in enumerate(taps):
            np.copyto(col[:, :, t], planes[phase, :, :, offset : offset + run])
    return col.reshape(n, c * len(taps), run)


def _wide_col2im(
    gcol: np.ndarray, out: np.ndarray, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair, out_hw: Pair
) -> None:
    """Adjoint of :func:`_wide_columns`: sum wide columns ``(N, C*KH*KW, OH*PW)`` into ``out``
    (N, C, H, W), overwriting it.

    The discarded wide entries must be zero (they land on real pixels)."""
    n, c, h, w = out.shape
    (sy, sx), ((pt, _), (pl, _)) = stride, pads
    (ph, pw), taps = _wide_geometry((h, w), kernel, stride, pads, dilation, out_hw)
    planes = _scratch("planes", (sy * sx, n, c, ph * pw), gcol.dtype, zero=True)
    gcol = gcol.reshape(n, c, len(taps), -1)
    run = gcol.shape[3]
    for t, (phase, offset) in enumerate(taps):
        planes[phase, :, :, offset : offset + run] += gcol[:, :, t]
    padded = planes.reshape(sy, sx, n, c, ph, pw).transpose(2, 3, 4, 0, 5, 1).reshape(n, c, ph * sy, pw * sx)
    np.copyto(out, padded[:, :, pt : pt + h, pl : pl + w])


def _widen(g: np.ndarray, pw: int) -> np.ndarray:
    """(N, OC, OH, OW) -> (N, OC, OH*PW) with zeros in the discarded wide columns ``OW:PW`` (scratch)."""
    n, oc, oh, ow = g.shape
    wide = _scratch("widened", (n, oc, oh, pw), g.dtype)
    wide[..., ow:] = 0
    wide[..., :ow] = g
    return wide.reshape(n, oc, oh * pw)


# ---------------------------------------------------------------- im2col / col2im


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair, pad_value: float = 0.0) -> np.ndarray:
    """Unfold ``x`` (N, C, H, W) into columns ``(C*KH*KW, N*OH*OW)`` (Caffe layout)."""
    n, c, h, w = x.shape
    oh = conv_out_size(h, kernel[0], stride[0], *pads[0], dilation[0])
    ow = conv_out_size(w, kernel[1], stride[1], *pads[1], dilation[1])
    view = _windows(_pad(x, pads, pad_value), kernel, stride, dilation, (oh, ow))
    return np.ascontiguousarray(view).reshape(c * kernel[0] * kernel[1], n * oh * ow)


def _col2im_into(gxp: np.ndarray, col: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> None:
    """Add columns ``(C, KH, KW, m, OH, OW)`` into padded images ``gxp`` (m, C, Hp, Wp) in place."""
    target = gxp.transpose(1, 0, 2, 3)
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            _tap(target, ky, kx, stride, dilation, out_hw)[...] += col[:, ky, kx]


def col2im(
    col: np.ndarray, x_shape: tuple[int, int, int, int], kernel: Pair, stride: Pair, pads: Pads, dilation: Pair
) -> np.ndarray:
    """Fold columns ``(C*KH*KW, N*OH*OW)`` back into an image ``x_shape`` (N, C, H, W), summing overlaps.

    The adjoint of :func:`im2col`.
    """
    n, c, h, w = x_shape
    (pt, pb), (pl, pr) = pads
    oh = conv_out_size(h, kernel[0], stride[0], pt, pb, dilation[0])
    ow = conv_out_size(w, kernel[1], stride[1], pl, pr, dilation[1])
    gxp = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=col.dtype)
    _col2im_into(gxp, col.reshape(c, kernel[0], kernel[1], n, oh, ow), kernel, stride, dilation, (oh, ow))
    return np.ascontiguousarray(gxp[:, :, pt : pt + h, pl : pl + w])


# ---------------------------------------------------------------- convolution


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Pair,
    pads: Pads,
    dilation: Pair,
    groups: int,
    keep_columns: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray | None]:
    """Cross-correlation ``x`` (N, C, H, W) with ``w`` (OC, C/groups, KH, KW) [+ ``b`` (OC,)]
    -> (N, OC, OH, OW).

    With ``keep_columns``, returns ``(y, columns)``: ``columns`` is an opaque value to hand to
    :func:`conv2d_grad_weight` (the wide columns when they were built, else None: it then rebuilds what it
    needs from ``x``).
    """
    n, _, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    oh = conv_out_size(h, kh, stride[0], *pads[0], dilation[0])
    ow = conv_out_size(wd, kw, stride[1], *pads[1], dilation[1])
    w3 = w.reshape(groups, oc // groups, cg * kh * kw)
    bias = None if b is None else b.reshape(1, oc, 1, 1)
    columns = None
    (_, pw), _ = _wide_geometry((h, wd), (kh, kw), stride, pads, dilation, (oh, ow))
    rows = cg * groups * kh * kw
    use_wide = _use_wide(n, rows, (kh, kw), pads, (oh, ow), pw, x.itemsize)
    if _depthwise_taps_apply(cg, oc, groups, stride, dilation) and not (keep_columns and use_wide):
        y = _depthwise_stride1(x, w, pads)
        if bias is not None:
            y += bias
        return (y, None) if keep_columns else y
    if use_wide:
        y = np.empty((n, oc, oh, ow), dtype=np.result_type(x, w))
        if keep_columns:
            columns = np.empty((n, rows, oh * pw), dtype=x.dtype)

        def forward_images(n0: int, n1: int) -> None:
            m = n1 - n0
            out = None if columns is None else columns[n0:n1]
            col = _wide_columns(x[n0:n1], (kh, kw), stride, pads, dilation, (oh, ow), out=out)
            wide = _scratch("gemm", (m, groups, oc // groups, oh * pw), y.dtype)
            np.matmul(w3, col.reshape(m, groups, cg * kh * kw, oh * pw), out=wide)
            wide = wide.reshape(m, oc, oh, pw)[..., :ow]
            if bias is None:
                np.copyto(y[n0:n1], wide)
            else:
                np.add(wide, bias, out=y[n0:n1])

        _over_images(n, rows * oh * pw * x.itemsize, forward_images)
        return (y, columns) if keep_columns else y
    y = np.empty((n, oc, oh, ow), dtype=np.result_type(x, w))
    if _is_pointwise((kh, kw), pads):

        def pointwise_images(n0: int, n1: int) -> None:
            xs = x[n0:n1] if stride == (1, 1) else x[n0:n1, :, :: stride[0], :: stride[1]]
            xs = np.ascontiguousarray(xs).reshape(n1 - n0, groups, cg, oh * ow)
            np.matmul(w3, xs, out=y[n0:n1].reshape(n1 - n0, groups, oc // groups, oh * ow))

        _over_images(n, x[0].nbytes + y[0].nbytes, pointwise_images)
    else:

        def chunked_images(n0: int, n1: int) -> None:
            for c0, m, col in _col_chunks(x[n0:n1], (kh, kw), stride, pads, dilation, (oh, ow)):
                out = _scratch("gemm", (groups, oc // groups, m * oh * ow), y.dtype)
                np.matmul(w3, col.reshape(groups, -1, m * oh * ow), out=out)
                y[n0 + c0 : n0 + c0 + m] = out.reshape(oc, m, oh, ow).transpose(1, 0, 2, 3)

        _over_images(n, rows * oh * ow * x.itemsize, chunked_images)
    if bias is not None:
        y += bias
    return (y, columns) if keep_columns else y


def _depthwise_taps_apply(cg: int, oc: int, groups: int, stride: Pair, dilation: Pair) -> bool:
    """Whether a conv is depthwise (one input channel and one filter per group), stride 1 and undilated: the
    forward :func:`_depthwise_stride1` handles. The two gradients take any stride (pass ``stride=(1, 1)``
    to ask about them): they run the stride-1 kernels on ``gy`` spread out by the stride."""
    return cg == 1 and oc == groups and stride == (1, 1) and dilation == (1, 1)


def _depthwise_stride1(x: np.ndarray, w: np.ndarray, pads: Pads) -> np.ndarray:
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


def _depthwise_stride1_grad_weight(
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


def conv2d_grad_input(
    gy: np.ndarray,
    w: np.ndarray,
    in_hw: Pair,
    stride: Pair,
    pads: Pads,
    dilation: Pair,
    groups: int,
) -> np.ndarray:
    """Gradient of :func:`conv2d` w.r.t. its input: ``gy`` (N, OC, OH, OW) -> (N, C, H, W).

    Also the forward of a transposed convolution (``in_hw`` is then its output size).
    """
    n, oc, oh, ow = gy.shape
    _, cg, kh, kw = w.shape
    h, wd = in_hw
    c = cg * groups
    if _depthwise_taps_apply(cg, oc, groups, (1, 1), dilation):
        # The input gradient is the full correlation of gy, spread out by the stride (zeros between), with the
        # flipped kernel; input rows/columns no window reached get zeros from extra bottom/right padding.
        (pt, pb), (pl, pr) = pads
        sy, sx = stride
        dh, dw = (oh - 1) * sy + 1, (ow - 1) * sx + 1
        extra_h, extra_w = h - (dh + kh - 1 - pt - pb), wd - (dw + kw - 1 - pl - pr)
        back = ((kh - 1 - pt, kh - 1 - pb + extra_h), (kw - 1 - pl, kw - 1 - pr + extra_w))
        if min(back[0] + back[1]) >= 0:
            spread = gy
            if stride != (1, 1):
                spread = np.zeros((n, oc, dh, dw), dtype=gy.dtype)
                spread[:, :, ::sy, ::sx] = gy
            return _depthwise_stride1(spread, w[:, :, ::-1, ::-1], back)
    wt = w.reshape(groups, oc // groups, cg * kh * kw).transpose(0, 2, 1)
    (_, pw), _ = _wide_geometry(in_hw, (kh, kw), stride, pads, dilation, (oh, ow))
    if _use_wide(n, c * kh * kw, (kh, kw), pads, (oh, ow), pw, gy.itemsize):
        gx = np.empty((n, c, h, wd), dtype=np.result_type(gy, w))

        def grad_images(n0: int, n1: int) -> None:
            m = n1 - n0
            gcol = _scratch("gemm", (m, groups, cg * kh * kw, oh * pw), gx.dtype)
            np.matmul(wt, _widen(gy[n0:n1], pw).reshape(m, groups, oc // groups, oh * pw), out=gcol)
            _wide_col2im(gcol, gx[n0:n1], (kh, kw), stride, pads, dilation, (oh, ow))

        _over_images(n, c * kh * kw * oh * pw * gy.itemsize, grad_images)
        return gx
    if _is_pointwise((kh, kw), pads):
        dense = stride == (1, 1) and (oh, ow) == (h, wd)
        g = np.empty((n, c, oh, ow), dtype=np.result_type(gy, w))
        gx = g if dense else np.zeros((n, c, h, wd), dtype=g.dtype)

        def pointwise_grad_images(n0: int, n1: int) -> None:
            m = n1 - n0
            np.matmul(
                wt,
                gy[n0:n1].reshape(m, groups, oc // groups, oh * ow),
                out=g[n0:n1].reshape(m, groups, c // groups, oh * ow),
            )
            if not dense:
                gx[n0:n1, :, : stride[0] * (oh - 1) + 1 : stride[0], : stride[1] * (ow - 1) + 1 : stride[1]] = g[n0:n1]

        _over_images(n, gy[0].nbytes + gx[0].nbytes, pointwise_grad_images)
        return gx
    (pt, pb), (pl, pr) = pads
    gxp = np.zeros((n, c, h + pt + pb, wd + pl + pr), dtype=np.result_type(gy, w))

    def grad_chunked_images(i0: int, i1: int) -> None:
        nb = _images_per_chunk(i1 - i0, c * kh * kw, oh * ow, gy.itemsize)
        for n0 in range(i0, i1, nb):
            m = min(nb, i1 - n0)
            gcol = np.matmul(wt, _to_channel_major(gy[n0 : n0 + m], groups))
            _col2im_into(gxp[n0 : n0 + m], gcol.reshape(c, kh, kw, m, oh, ow), (kh, kw), stride, dilation, (oh, ow))

    _over_images(n, c * kh * kw * oh * ow * gy.itemsize, grad_chunked_images)
    if (pt, pb, pl, pr) == (0, 0, 0, 0):
        return gxp
    return np.ascontiguousarray(gxp[:, :, pt : pt + h, pl : pl + wd])


def conv2d_grad_weight(
    x: np.ndarray,
    gy: np.ndarray,
    kernel: Pair,
    stride: Pair,
    pads: Pads,
    dilation: Pair,
    groups: int,
    columns: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of :func:`conv2d` w.r.t. its weight: ``x`` (N, C, H, W), ``gy`` (N, OC, OH, OW)
    -> (OC, C/groups, KH, KW).

    ``columns``, when given, is what ``conv2d(..., keep_columns=True)`` returned for this ``x`` (``x`` may
    then be None).
    """
    n, oc, oh, ow = gy.shape
    kh, kw = kernel
    if columns is None and _depthwise_taps_apply(1 if x.shape[1] == groups else 0, oc, groups, (1, 1), dilation):
        return _depthwise_stride1_grad_weight(x, gy, kernel, pads, stride)
    if columns is not None:
        rows = columns.shape[1]
        pw = columns.shape[2] // oh
    else:
        rows = x.shape[1] * kh * kw
        (_, pw), _ = _wide_geometry(x.shape[2:], kernel, stride, pads, dilation, (oh, ow))
    cg = rows // (kh * kw * groups)
    if columns is not None or _use_wide(n, rows, kernel, pads, (oh, ow), pw, gy.itemsize):
        # Per image (G, rows/G, L) @ (G, L, OC/G), transposed at the end: OpenBLAS runs this orientation
        # about 2x faster than gy @ columns^T (measured on LeNet's layers). The images' products are
        # summed after the split, so the result does not depend on the thread count.
        dtype = np.result_type(gy, x if columns is None else columns)
        products = _scratch("products", (n, groups, rows // groups, oc // groups), dtype)

        def products_of_images(n0: int, n1: int) -> None:
            m = n1 - n0
            if columns is None:
                col = _wide_columns(x[n0:n1], kernel, stride, pads, dilation, (oh, ow))
            else:
                col = columns[n0:n1]
            g = _widen(gy[n0:n1], pw).reshape(m, groups, oc // groups, oh * pw).transpose(0, 1, 3, 2)
            np.matmul(col.reshape(m, groups, rows // groups, oh * pw), g, out=products[n0:n1])

        _over_images(n, rows * oh * pw * gy.itemsize, products_of_images)
        gw_t = products.sum(axis=0)
        return np.ascontiguousarray(gw_t.transpose(0, 2, 1)).reshape(oc, cg, kh, kw)
    if _is_pointwise(kernel, pads):
        products = _scratch("products", (n, groups, oc // groups, cg), np.result_type(x, gy))

        def pointwise_products(n0: int, n1: int) -> None:
            m = n1 - n0
            xs = x[n0:n1] if stride == (1, 1) else x[n0:n1, :, :: stride[0], :: stride[1]]
            xs = np.ascontiguousarray(xs).reshape(m, groups, cg, oh * ow)
            g = gy[n0:n1].reshape(m, groups, oc // groups, oh * ow)
            np.matmul(g, xs.transpose(0, 1, 3, 2), out=products[n0:n1])

        _over_images(n, x[0].nbytes + gy[0].nbytes, pointwise_products)
        return products.sum(axis=0).reshape(oc, cg, 1, 1)
    # Threads take whole chunks of the serial chunking and the chunks' products are summed in order
    # afterwards, so the sum is the same for any thread count.
    nb = _images_per_chunk(n, rows, oh * ow, x.itemsize)

    def products_of_chunks(k0: int, k1: int) -> list[np.ndarray]:
        images = x[k0 * nb : min(k1 * nb, n)]
        products = []
        for n0, m, col in _col_chunks(images, kernel, stride, pads, dilation, (oh, ow), nb):
            g = _to_channel_major(gy[k0 * nb + n0 : k0 * nb + n0 + m], groups)
            products.append(np.matmul(g, col.reshape(groups, cg * kh * kw, m * oh * ow).transpose(0, 2, 1)))
        return products

    chunks = -(-n // nb)
    gw = np.zeros((groups, oc // groups, cg * kh * kw), dtype=np.result_type(x, gy))
    for products in parallel_for(chunks, products_of_chunks, _parallel_min_items(nb * rows * oh * ow * x.itemsize)):
        for product in products:
            gw += product
    return gw.reshape(oc, cg, kh, kw)


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


# ---------------------------------------------------------------- interpolation


def _sum_into(g: np.ndarray, idx: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Adjoint of ``g.take(idx, axis)`` for non-decreasing ``idx``: sums runs with ``reduceat``."""
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    sums = np.add.reduceat(g, starts, axis=axis)
    shape = list(g.shape)
    shape[axis] = size
    out = np.zeros(shape, dtype=g.dtype)
    sel = [slice(None)] * g.ndim
    sel[axis] = idx[starts]
    out[tuple(sel)] = sums
    return out


def upsample_nearest2d(x: np.ndarray, out_hw: Pair, scales: tuple[float | None, float | None]) -> np.ndarray:
    """Nearest-neighbour resize ``x`` (N, C, H, W) -> (N, C, OH, OW), PyTorch's ``mode="nearest"``."""
    ih = nearest_indices(x.shape[2], out_hw[0], scales[0])
    iw = nearest_indices(x.shape[3], out_hw[1], scales[1])
    return x.take(ih, axis=2).take(iw, axis=3)


def upsample_nearest2d_backward(gy: np.ndarray, in_hw: Pair, scales: tuple[float | None, float | None]) -> np.ndarray:
    """Gradient of :func:`upsample_nearest2d`: ``gy`` (N, C, OH, OW) -> (N, C, H, W)."""
    ih = nearest_indices(in_hw[0], gy.shape[2], scales[0])
    iw = nearest_indices(in_hw[1], gy.shape[3], scales[1])
    return _sum_into(_sum_into(gy, iw, in_hw[1], 3), ih, in_hw[0], 2)


def _lerp_axis(x: np.ndarray, i0: np.ndarray, i1: np.ndarray, w1: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * x.ndim
    shape[axis] = -1
    w1 = w1.astype(x.dtype).reshape(shape)
    a = x.take(i0, axis=axis)
    return a + (x.take(i1, axis=axis) - a) * w1


def upsample_bilinear2d(
    x: np.ndarray, out_hw: Pair, align_corners: bool, scales: tuple[float | None, float | None]
) -> np.ndarray:
    """Bilinear resize ``x`` (N, C, H, W) -> (N, C, OH, OW), PyTorch's ``mode="bilinear"``."""
    h0, h1, lh = linear_indices(x.shape[2], out_hw[0], align_corners, scales[0])
    w0, w1, lw = linear_indices(x.shape[3], out_hw[1], align_corners, scales[1])
    return _lerp_axis(_lerp_axis(x, h0, h1, lh, 2), w0, w1, lw, 3)


def _lerp_axis_backward(
    g: np.ndarray, i0: np.ndarray, i1: np.ndarray, w1: np.ndarray, size: int, axis: int
) -> np.ndarray:
    shape = [1] * g.ndim
    shape[axis] = -1
    w1 = w1.astype(g.dtype).reshape(shape)
    part1 = g * w1
    return _sum_into(g - part1, i0, size, axis) + _sum_into(part1, i1, size, axis)


def upsample_bilinear2d_backward(
    gy: np.ndarray, in_hw: Pair, align_corners: bool, scales: tuple[float | None, float | None]
) -> np.ndarray:
    """Gradient of :func:`upsample_bilinear2d`: ``gy`` (N, C, OH, OW) -> (N, C, H, W)."""
    h0, h1, lh = linear_indices(in_hw[0], gy.shape[2], align_corners, scales[0])
    w0, w1, lw = linear_indices(in_hw[1], gy.shape[3], align_corners, scales[1])
    g = _lerp_axis_backward(gy, w0, w1, lw, in_hw[1], 3)
    return _lerp_axis_backward(g, h0, h1, lh, in_hw[0], 2)
