"""Shared pieces of the CPU kernels: per-thread scratch buffers, padding, strided tap views and the batch
split over hubkit's thread pool (see ``cpu.py`` for the conventions)."""

from __future__ import annotations

import math
import threading

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hubkit.kernels._threads import parallel_for

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]

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
# The same for numba's parallel drivers (``_jit.parallel_chunks``): measured on LeNet-5's pooling layers.
_NUMBA_PARALLEL_MIN_BYTES = 32 << 10


# ---------------------------------------------------------------- helpers


def _scratch(role: str, shape: tuple[int, ...], dtype: np.dtype, zero: bool = False) -> np.ndarray:
    """A contiguous ``shape`` array for a temporary of kind ``role`` (see ``_SCRATCH_MAX_BYTES``).

    Its contents are garbage unless ``zero``; it is overwritten by the next call that asks for ``role``
    on this thread, so it must not be returned or kept, and two live temporaries need two roles.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
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


def _numba_min_items(bytes_per_item: int) -> int:
    """As :func:`_parallel_min_items` for numba's parallel drivers, whose fork and join costs microseconds
    instead of the pool's tenth of a millisecond (``_NUMBA_PARALLEL_MIN_BYTES``)."""
    return -(-_NUMBA_PARALLEL_MIN_BYTES // max(bytes_per_item, 1))


def _over_images(n: int, bytes_per_image: int, body) -> None:
    """Run ``body(n0, n1)`` over contiguous chunks of the ``n`` images, on the thread pool when each
    chunk gets at least ``_PARALLEL_MIN_BYTES`` of work. Each chunk must write only its own images."""
    parallel_for(n, body, _parallel_min_items(bytes_per_image))


def _lowest(dtype: np.dtype) -> float | int:
    """The padding value that never wins a max: -inf for floats, the minimum for integers."""
    if np.issubdtype(dtype, np.floating):
        return -np.inf
    return np.iinfo(dtype).min


def _pad(x: np.ndarray, pads: Pads, value: float = 0.0, scratch: str | None = None) -> np.ndarray:
    """Pad the two trailing axes of ``x`` (N, C, H, W); returns ``x`` itself when no padding is needed.

    With ``scratch``, the result lives in that scratch buffer (see :func:`_scratch`): a temporary that must
    not be kept past the next use of the role."""
    (pt, pb), (pl, pr) = pads
    if not (pt or pb or pl or pr):
        return x
    n, c, h, w = x.shape
    shape = (n, c, h + pt + pb, w + pl + pr)
    out = np.empty(shape, dtype=x.dtype) if scratch is None else _scratch(scratch, shape, x.dtype)
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

