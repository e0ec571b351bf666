"""CPU convolution kernels: im2col/col2im, the chunked, wide and pointwise conv paths and their gradients.

How they are fast (measured in bench/engine.py; see bench/RESULTS.md):

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
- the input gradient of a larger stride-1 convolution builds wide columns too, a few images at a time, so
  its col2im is KH*KW contiguous additions per image instead of strided ``+=`` over 4-d views (1.1-1.5x
  faster on ResNet's 56x56 to 14x14 layers); elsewhere col2im loops over the KH*KW kernel positions with
  strided in-place ``+=``; ``np.add.at`` is never used;
- small layers with few output channels (LeNet-5's) skip im2col altogether when numba is installed: the
  direct convolution of ``cpu_wide.py`` multiplies the wide layout's runs in place, forward and backward;
- 1x1 convolutions without padding skip im2col: they are one (batched) matmul on the image itself, and the
  weight gradient over small maps is one GEMM over the batch;
- depthwise convolutions have kernels of their own (``cpu_depthwise.py``);
- :func:`conv2d_backward` computes both gradients and shares the widened output gradient between them;
- outside a batch split (batch 1) the GEMMs themselves are split over the threads (``_threads.matmul``):
  hubkit owns the cores and numpy's BLAS runs one thread;
- convolutions split their batch over hubkit's thread pool (``_threads.py``, ``hubkit.set_num_threads``)
  when each thread gets at least ``_PARALLEL_MIN_BYTES`` of work: each thread writes its own images of an
  output allocated before the split, and weight gradients are summed over images (or im2col chunks) after
  it in a fixed order, so results are bit-identical for any thread count. Per-image work is written as
  few, long numpy calls (e.g. stride-1 wide im2col is one copy of an overlapping strided view), because
  every call hands the GIL back and forth between the threads.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from hubkit.kernels import cpu_depthwise, cpu_wide, cpu_winograd
from hubkit.kernels._cpu_util import (
    Pads,
    Pair,
    _over_images,
    _pad,
    _parallel_min_items,
    _scratch,
    _tap,
    _windows,
)
from hubkit.kernels._threads import matmul, parallel_for
from hubkit.kernels.shapes import conv_out_size

# Size of one im2col chunk: small enough that the freshly written columns are still in cache when the
# GEMM reads them, but never fewer than _GEMM_MIN_COLUMNS output positions per GEMM, below which
# OpenBLAS loses efficiency (deep layers with 14x14 or 7x7 maps then take several images per chunk).
# Both chosen by measurement on ResNet-shaped layers (bench/engine.py); with two threads streaming columns
# at once, 1,568 columns beat 3,136 by 5-15% on the 28x28 and 14x14 layers (two images' columns of a 28x28
# layer are 7 MB per thread instead of 14).
_COL_CHUNK_BYTES = 4 << 20
# One image whose columns would take more than this is convolved in tiles of one group and a range of output
# positions instead (``_conv_in_tiles``), each tile's columns still in cache when its GEMM reads them: wav2vec2's
# positional convolution (768 channels in 16 groups, 128 taps, 499 frames) has 196 MB of columns per image.
_TILE_MIN_BYTES = 16 << 20
_GEMM_MIN_COLUMNS = 1568
# Wide columns (see the module docstring) are used when a column has at most _WIDE_MAX_ROWS rows and the
# columns of the whole batch take at most _WIDE_MAX_BYTES; beyond that the GEMM is compute-bound and the
# wasted PW - OW columns cost more than the long copies save. Chosen by measurement (bench/engine.py).
_WIDE_MAX_ROWS = 256
_WIDE_MAX_BYTES = 16 << 20
# A 1x1 weight gradient over maps of at most this many pixels is one GEMM over the batch (see
# conv2d_grad_weight); chosen by measurement on MobileNet-V2's layers.
_POINTWISE_ONE_GEMM_MAX_PIXELS = 64
# Input gradients of large stride-1 convs take wide columns too (see _use_wide_col2im): 64->64 at 56x56
# went 35-38 -> 25 ms, 128 at 28x28 32 -> 29 ms, 256 at 14x14 28 -> 26 ms (batch 16, one thread); at 7x7 the
# wasted columns (9 for 7) cost more, and strided layers gained nothing.
_WIDE_COL2IM = True
_WIDE_COL2IM_MIN_WIDTH = 14


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
        np.copyto(part, _windows(_pad(x[n0 : n0 + m], pads, scratch="padded"), kernel, stride, dilation, out_hw))
        yield n0, m, part.reshape(rows, m * oh * ow)


def _gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` (numpy broadcasting); outside a batch split (batch 1, or fewer images than threads) the
    product itself is split over hubkit's threads (``_threads.matmul``): numpy's BLAS runs one thread."""
    if b.ndim == a.ndim + 1 and b.shape[0] == 1 and (out is None or out.shape[0] == 1):
        res = matmul(a, b[0], None if out is None else out[0])
        return res[None] if out is None else out
    return matmul(a, b, out)


def _is_pointwise(kernel: Pair, pads: Pads) -> bool:
    return kernel == (1, 1) and pads == ((0, 0), (0, 0))


def _to_channel_major(g: np.ndarray, groups: int) -> np.ndarray:
    """(m, OC, OH, OW) -> (G, OC/G, m*OH*OW), one copy: the GEMM operand layout of an output chunk."""
    m, oc = g.shape[:2]
    return g.reshape(m, oc, -1).transpose(1, 0, 2).reshape(groups, oc // groups, -1)


# ---------------------------------------------------------------- wide columns


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
    (ph, pw), taps = cpu_wide.geometry((h, w), kernel, stride, pads, dilation, out_hw)
    planes = cpu_wide.planes(x, kernel, stride, pads, dilation, out_hw)
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
    (ph, pw), taps = cpu_wide.geometry((h, w), kernel, stride, pads, dilation, out_hw)
    planes = _scratch("planes", (stride[0] * stride[1], n, c, ph * pw), gcol.dtype, zero=True)
    gcol = gcol.reshape(n, c, len(taps), -1)
    run = gcol.shape[3]
    for t, (phase, offset) in enumerate(taps):
        planes[phase, :, :, offset : offset + run] += gcol[:, :, t]
    cpu_wide.merge(planes, out, stride, pads)


def _use_wide_col2im(rows: int, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair, pw: int, groups: int
                     ) -> bool:  # fmt: skip
    """Whether a large conv's input gradient takes wide columns too: its col2im is then KH*KW contiguous
    additions per image instead of strided ones over 4-d views, at the price of ``PW - OW`` wasted GEMM
    columns per row. Stride 1 and maps at least ``_WIDE_COL2IM_MIN_WIDTH`` wide (measured on ResNet's
    layers)."""
    return (
        _WIDE_COL2IM
        and stride == (1, 1)
        and kernel != (1, 1)
        and out_hw[1] >= _WIDE_COL2IM_MIN_WIDTH
        and groups == 1
    )


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
    (_, pw), _ = cpu_wide.geometry((h, wd), (kh, kw), stride, pads, dilation, (oh, ow))
    rows = cg * groups * kh * kw
    use_wide = _use_wide(n, rows, (kh, kw), pads, (oh, ow), pw, x.itemsize)
    depthwise = cpu_depthwise.is_depthwise(cg, oc, groups)
    y = cpu_depthwise.compiled_forward(x, w, stride, pads, dilation, (oh, ow)) if depthwise else None
    if y is None and cpu_depthwise.taps_apply(cg, oc, groups, stride, dilation) and not (keep_columns and use_wide):
        y = cpu_depthwise.stride1(x, w, pads)
    if y is not None:
        if bias is not None:
            y += bias
        return (y, None) if keep_columns else y
    jit = None if depthwise else cpu_wide.direct_applies((x.dtype, w.dtype), cg * kh * kw, oc, groups, (kh, kw), pads,
                                                         x.size)  # fmt: skip
    if jit is not None:
        y = cpu_wide.conv2d(jit, x, w, b, stride, pads, dilation, (oh, ow), groups)
        return (y, None) if keep_columns else y
    # Winograd where wide columns are not used (those are kept for the weight gradient; the others are rebuilt)
    jit = None if use_wide else cpu_winograd.applies(x, w, stride, pads, dilation, groups)
    if jit is not None:
        y = cpu_winograd.conv2d(jit, x, w, b, pads, (oh, ow))
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
            _gemm(w3, col.reshape(m, groups, cg * kh * kw, oh * pw), out=wide)
            wide = wide.reshape(m, oc, oh, pw)[..., :ow]
            if bias is None:
                np.copyto(y[n0:n1], wide)
            else:
                np.add(wide, bias, out=y[n0:n1])

        _over_images(n, rows * oh * pw * x.itemsize, forward_images)
        return (y, columns) if keep_columns else y
    y = np.empty((n, oc, oh, ow), dtype=np.result_type(x, w))
    if not _is_pointwise((kh, kw), pads) and rows * oh * ow * x.itemsize > _TILE_MIN_BYTES:
        _conv_in_tiles(x, w3, y, groups, (kh, kw), stride, pads, dilation, (oh, ow))
    elif _is_pointwise((kh, kw), pads):

        def pointwise_images(n0: int, n1: int) -> None:
            xs = x[n0:n1] if stride == (1, 1) else x[n0:n1, :, :: stride[0], :: stride[1]]
            xs = np.ascontiguousarray(xs).reshape(n1 - n0, groups, cg, oh * ow)
            _gemm(w3, xs, out=y[n0:n1].reshape(n1 - n0, groups, oc // groups, oh * ow))

        _over_images(n, x[0].nbytes + y[0].nbytes, pointwise_images)
    else:

        def chunked_images(n0: int, n1: int) -> None:
            for c0, m, col in _col_chunks(x[n0:n1], (kh, kw), stride, pads, dilation, (oh, ow)):
                out = _scratch("gemm", (groups, oc // groups, m * oh * ow), y.dtype)
                _gemm(w3, col.reshape(groups, -1, m * oh * ow), out=out)
                y[n0 + c0 : n0 + c0 + m] = out.reshape(oc, m, oh, ow).transpose(1, 0, 2, 3)

        _over_images(n, rows * oh * ow * x.itemsize, chunked_images)
    if bias is not None:
        y += bias
    return (y, columns) if keep_columns else y


def _conv_in_tiles(x: np.ndarray, w3: np.ndarray, y: np.ndarray, groups: int, kernel: Pair, stride: Pair, pads: Pads,
                   dilation: Pair, out_hw: Pair) -> None:  # fmt: skip
    """``y`` (N, OC, OH, OW) = the convolution of ``x`` with ``w3`` (G, OC/G, C/G*KH*KW), its columns built and
    multiplied in tiles (see ``_TILE_MIN_BYTES``): one image, one group, and a range of output columns (a 1-d
    convolution: OH = 1) or rows that fits ``_COL_CHUNK_BYTES``. The tiles run on hubkit's threads, each writing
    its own part of ``y``."""
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = kernel, out_hw
    cg, ocg = c // groups, y.shape[1] // groups
    rows = cg * kh * kw
    along_w = oh == 1
    span = ow if along_w else oh
    step = max(1, min(span, _COL_CHUNK_BYTES // max(rows * (1 if along_w else ow) * x.itemsize, 1)))
    tiles = [(i, g, s0, min(span, s0 + step)) for i in range(n) for g in range(groups) for s0 in range(0, span, step)]
    padded = _pad(x, pads)

    def run(t0: int, t1: int) -> None:
        for i, g, s0, s1 in tiles[t0:t1]:
            view = _windows(padded[i : i + 1, g * cg : (g + 1) * cg], kernel, stride, dilation, out_hw)
            view = view[..., s0:s1] if along_w else view[..., s0:s1, :]
            cols = _scratch("columns", view.shape, x.dtype)
            np.copyto(cols, view)
            cols = cols.reshape(rows, -1)
            prod = _scratch("gemm", (ocg, cols.shape[1]), y.dtype)
            matmul(w3[g], cols, prod)
            target = y[i, g * ocg : (g + 1) * ocg]
            target = target[:, :, s0:s1] if along_w else target[:, s0:s1]
            np.copyto(target, prod.reshape(target.shape))

    parallel_for(len(tiles), run)


def _winograd_grad_input(gy: np.ndarray, w: np.ndarray, in_hw: Pair, stride: Pair, pads: Pads, dilation: Pair,
                         groups: int) -> np.ndarray | None:  # fmt: skip
    """The input gradient of a 3x3 stride-1 layer as the forward Winograd convolution of ``gy`` with the
    flipped, transposed kernel and padding ``2 - pad`` (the full correlation), where ``cpu_winograd.applies``
    to that convolution; else None."""
    back = cpu_wide.transposed_pads(stride, dilation, w.shape[2:], pads)
    if back is None or w.shape[2:] != (3, 3) or groups != 1:
        return None
    flipped = cpu_wide.flipped_kernel(w, 1)
    jit = cpu_winograd.applies(gy, flipped, (1, 1), back, (1, 1), 1)
    return None if jit is None else cpu_winograd.conv2d(jit, gy, flipped, None, back, in_hw)


def conv2d_grad_input(
    gy: np.ndarray,
    w: np.ndarray,
    in_hw: Pair,
    stride: Pair,
    pads: Pads,
    dilation: Pair,
    groups: int,
    widened: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of :func:`conv2d` w.r.t. its input: ``gy`` (N, OC, OH, OW) -> (N, C, H, W).

    Also the forward of a transposed convolution (``in_hw`` is then its output size). ``widened`` is
    ``gy`` already in the wide layout (see :func:`conv2d_backward`), used when the wide path runs.
    """
    n, oc, oh, ow = gy.shape
    _, cg, kh, kw = w.shape
    h, wd = in_hw
    c = cg * groups
    if cpu_depthwise.is_depthwise(cg, oc, groups):
        gx = cpu_depthwise.compiled_grad_input(gy, w, in_hw, stride, pads, dilation)
        if gx is not None:
            return gx
    else:
        jit = cpu_wide.direct_applies((gy.dtype, w.dtype), cg * kh * kw, oc, groups, (kh, kw), pads, gy.size)
        if jit is not None:
            return cpu_wide.conv2d_backward(jit, None, gy, w, w.shape, in_hw, stride, pads, dilation, groups, True,
                                            False)[0]  # fmt: skip
        gx = _winograd_grad_input(gy, w, in_hw, stride, pads, dilation, groups)
        if gx is not None:
            return gx
    if cpu_depthwise.taps_apply(cg, oc, groups, (1, 1), dilation):
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
            return cpu_depthwise.stride1(spread, w[:, :, ::-1, ::-1], back)
    wt = w.reshape(groups, oc // groups, cg * kh * kw).transpose(0, 2, 1)
    (_, pw), _ = cpu_wide.geometry(in_hw, (kh, kw), stride, pads, dilation, (oh, ow))
    wide = _use_wide(n, c * kh * kw, (kh, kw), pads, (oh, ow), pw, gy.itemsize)
    if wide or _use_wide_col2im(c * kh * kw, (kh, kw), stride, dilation, (oh, ow), pw, groups):
        gx = np.empty((n, c, h, wd), dtype=np.result_type(gy, w))
        # small convs: all of a thread's images in one product; large ones: a few images at a time, so the
        # columns are still in cache when col2im adds them up
        step = None if wide else _images_per_chunk(n, c * kh * kw, oh * pw, gy.itemsize)

        def grad_images(i0: int, i1: int) -> None:
            for n0 in range(i0, i1, step or i1 - i0):
                n1 = min(i1, n0 + (step or i1 - i0))
                m = n1 - n0
                gcol = _scratch("gemm", (m, groups, cg * kh * kw, oh * pw), gx.dtype)
                g = cpu_wide.widen(gy[n0:n1], pw) if widened is None else widened[n0:n1]
                _gemm(wt, g.reshape(m, groups, oc // groups, oh * pw), out=gcol)
                _wide_col2im(gcol, gx[n0:n1], (kh, kw), stride, pads, dilation, (oh, ow))

        _over_images(n, c * kh * kw * oh * pw * gy.itemsize, grad_images)
        return gx
    if _is_pointwise((kh, kw), pads):
        dense = stride == (1, 1) and (oh, ow) == (h, wd)
        g = np.empty((n, c, oh, ow), dtype=np.result_type(gy, w))
        gx = g if dense else np.zeros((n, c, h, wd), dtype=g.dtype)

        def pointwise_grad_images(n0: int, n1: int) -> None:
            m = n1 - n0
            _gemm(
                wt,
                gy[n0:n1].reshape(m, groups, oc // groups, oh * ow),
                out=g[n0:n1].reshape(m, groups, c // groups, oh * ow),
            )
            if not dense:
                gx[n0:n1, :, : stride[0] * (oh - 1) + 1 : stride[0], : stride[1] * (ow - 1) + 1 : stride[1]] = g[n0:n1]

        _over_images(n, gy[0].nbytes + gx[0].nbytes, pointwise_grad_images)
        return gx
    (pt, pb), (pl, pr) = pads
    dtype = np.result_type(gy, w)
    gxp = np.zeros((n, c, h + pt + pb, wd + pl + pr), dtype=dtype)

    def grad_chunked_images(i0: int, i1: int) -> None:
        nb = _images_per_chunk(i1 - i0, c * kh * kw, oh * ow, gy.itemsize)
        for n0 in range(i0, i1, nb):
            m = min(nb, i1 - n0)
            gcol = _gemm(wt, _to_channel_major(gy[n0 : n0 + m], groups))
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
    widened: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of :func:`conv2d` w.r.t. its weight: ``x`` (N, C, H, W), ``gy`` (N, OC, OH, OW)
    -> (OC, C/groups, KH, KW).

    ``columns``, when given, is what ``conv2d(..., keep_columns=True)`` returned for this ``x`` (``x`` may
    then be None). ``widened`` is ``gy`` already in the wide layout (see :func:`conv2d_backward`).
    """
    n, oc, oh, ow = gy.shape
    kh, kw = kernel
    if columns is None and cpu_depthwise.is_depthwise(1 if x.shape[1] == groups else 0, oc, groups):
        gw = cpu_depthwise.compiled_grad_weight(x, gy, kernel, stride, pads, dilation)
        if gw is not None:
            return gw
        if dilation == (1, 1):
            return cpu_depthwise.stride1_grad_weight(x, gy, kernel, pads, stride)
    if columns is None:
        cg = x.shape[1] // groups
        jit = cpu_wide.direct_applies((gy.dtype, x.dtype), cg * kh * kw, oc, groups, kernel, pads, gy.size)
        if jit is not None:
            return cpu_wide.conv2d_backward(jit, x, gy, None, (oc, cg, kh, kw), x.shape[2:], stride, pads, dilation,
                                            groups, False, True)[1]  # fmt: skip
    if columns is not None:
        rows = columns.shape[1]
        pw = columns.shape[2] // oh
    else:
        rows = x.shape[1] * kh * kw
        (_, pw), _ = cpu_wide.geometry(x.shape[2:], kernel, stride, pads, dilation, (oh, ow))
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
            g = cpu_wide.widen(gy[n0:n1], pw) if widened is None else widened[n0:n1]
            g = g.reshape(m, groups, oc // groups, oh * pw).transpose(0, 1, 3, 2)
            np.matmul(col.reshape(m, groups, rows // groups, oh * pw), g, out=products[n0:n1])

        _over_images(n, rows * oh * pw * gy.itemsize, products_of_images)
        gw_t = products.sum(axis=0)
        return np.ascontiguousarray(gw_t.transpose(0, 2, 1)).reshape(oc, cg, kh, kw)
    if _is_pointwise(kernel, pads) and oh * ow <= _POINTWISE_ONE_GEMM_MAX_PIXELS:
        # small maps: per-image products would have K = OH*OW (16-64): one GEMM over the whole batch in
        # channel-major order instead (2-2.6x faster on MobileNet's 4x4 and 7x7 layers)
        xs = x if stride == (1, 1) else x[:, :, :: stride[0], :: stride[1]]
        xs = _to_channel_major(np.ascontiguousarray(xs), groups)
        g = _to_channel_major(gy, groups)
        return _gemm(g, xs.transpose(0, 2, 1)).reshape(oc, cg, 1, 1)
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
    # afterwards, so the sum is the same for any thread count. Each product is columns @ gy^T, transposed
    # once at the end: OpenBLAS runs that orientation 10-40% faster than gy @ columns^T on ResNet's layers.
    nb = _images_per_chunk(n, rows, oh * ow, x.itemsize)

    def products_of_chunks(k0: int, k1: int) -> list[np.ndarray]:
        images = x[k0 * nb : min(k1 * nb, n)]
        products = []
        for n0, m, col in _col_chunks(images, kernel, stride, pads, dilation, (oh, ow), nb):
            g = _to_channel_major(gy[k0 * nb + n0 : k0 * nb + n0 + m], groups)
            products.append(_gemm(col.reshape(groups, cg * kh * kw, m * oh * ow), g.transpose(0, 2, 1)))
        return products

    chunks = -(-n // nb)
    gw_t = np.zeros((groups, cg * kh * kw, oc // groups), dtype=np.result_type(x, gy))
    for products in parallel_for(chunks, products_of_chunks, _parallel_min_items(nb * rows * oh * ow * x.itemsize)):
        for product in products:
            gw_t += product
    return np.ascontiguousarray(gw_t.transpose(0, 2, 1)).reshape(oc, cg, kh, kw)


def conv2d_backward(
    x: np.ndarray | None,
    gy: np.ndarray,
    w: np.ndarray | None,
    w_shape: tuple[int, int, int, int],
    in_hw: Pair,
    stride: Pair,
    pads: Pads,
    dilation: Pair,
    groups: int,
    columns: np.ndarray | None,
    need_x: bool,
    need_w: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Both gradients of :func:`conv2d` -> ``(gx or None, gw or None)``, as :func:`conv2d_grad_input` and
    :func:`conv2d_grad_weight` give them (``w`` may be None when ``need_x`` is false; ``w_shape`` is its
    shape). When both take the wide path, ``gy`` is widened once for the two (the widening was a fifth of
    a LeNet-5 step's kernel time)."""
    n, oc, oh, ow = gy.shape
    _, cg, kh, kw = w_shape
    if columns is None and not cpu_depthwise.is_depthwise(cg, oc, groups):
        dtypes = (gy.dtype,) + ((w.dtype,) if need_x else ()) + ((x.dtype,) if need_w else ())
        jit = cpu_wide.direct_applies(dtypes, cg * kh * kw, oc, groups, (kh, kw), pads, gy.size)
        if jit is not None:
            return cpu_wide.conv2d_backward(jit, x, gy, w, w_shape, in_hw, stride, pads, dilation, groups, need_x,
                                            need_w)  # fmt: skip
    widened = None
    if need_x and need_w:
        (_, pw), _ = cpu_wide.geometry(in_hw, (kh, kw), stride, pads, dilation, (oh, ow))
        rows = cg * groups * kh * kw
        wide_input = not cpu_depthwise.is_depthwise(cg, oc, groups) and _use_wide(
            n, rows, (kh, kw), pads, (oh, ow), pw, gy.itemsize
        )
        wide_weight = columns is not None or _use_wide(n, rows, (kh, kw), pads, (oh, ow), pw, gy.itemsize)
        if wide_input and wide_weight and (columns is None or columns.shape[2] == oh * pw):
            widened = np.empty((n, oc, oh * pw), dtype=gy.dtype)
            _over_images(n, oc * oh * pw * gy.itemsize,
                         lambda n0, n1: np.copyto(widened[n0:n1], cpu_wide.widen(gy[n0:n1], pw)))  # fmt: skip
    args = (stride, pads, dilation, groups)
    gx = conv2d_grad_input(gy, w, in_hw, *args, widened=widened) if need_x else None
    gw = conv2d_grad_weight(x, gy, (kh, kw), *args, columns=columns, widened=widened) if need_w else None
    return gx, gw
