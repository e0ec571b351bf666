"""CPU interpolation kernels: nearest and bilinear resizing (PyTorch's index rules) and their gradients."""

from __future__ import annotations

import numpy as np

from hubkit.kernels._cpu_util import Pair
from hubkit.kernels.shapes import linear_indices, nearest_indices

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
