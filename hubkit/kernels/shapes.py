"""Output-size and index arithmetic shared by the CPU and GPU kernels (pure Python and host numpy).

Every formula here is PyTorch's, so hubkit's output shapes and sampling positions match it exactly.
"""

from __future__ import annotations

import numpy as np


def conv_out_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilation: int) -> int:
    """Output length of a convolution (or floor-mode pooling) along one axis."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def pool_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """Output length of max/avg pooling along one axis, PyTorch's rule for ``ceil_mode``.

    In ceil mode the last window may hang over the right edge, but it must start inside the input or
    the left padding; otherwise it is dropped.
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = span // stride + 1
    return out


def pool_extra_pad(size: int, out: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Padding needed after ``size + 2*padding`` so that ``out`` windows fit (ceil mode overhang)."""
    need = (out - 1) * stride + dilation * (kernel - 1) + 1
    return max(0, need - (size + 2 * padding))


def conv_transpose_out_size(
    size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int
) -> int:
    """Output length of a transposed convolution along one axis."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def adaptive_bounds(size: int, out: int) -> tuple[list[int], list[int]]:
    """Start (inclusive) and end (exclusive) of each adaptive-pooling window: floor(i*size/out) and
    ceil((i+1)*size/out)."""
    starts = [(i * size) // out for i in range(out)]
    ends = [-(-((i + 1) * size) // out) for i in range(out)]
    return starts, ends


def avg_pool_divisors(
    size: int, out: int, kernel: int, stride: int, padding: int, count_include_pad: bool
) -> np.ndarray:
    """The per-output window size avg pooling divides by along one axis, float64 ``(out,)``.

    With ``count_include_pad`` the window is clipped to the padded input (not to the ceil-mode overhang);
    without it, to the real input.
    """
    div = np.empty(out, dtype=np.float64)
    for i in range(out):
        start = i * stride - padding
        end = min(start + kernel, size + padding)
        if count_include_pad:
            div[i] = end - start
        else:
            div[i] = min(end, size) - max(start, 0)
    return div


def _source_scale(in_size: int, out_size: int, scale_factor: float | None) -> float:
    if scale_factor is not None and scale_factor > 0:
        return 1.0 / scale_factor
    return in_size / out_size


def nearest_indices(in_size: int, out_size: int, scale_factor: float | None = None) -> np.ndarray:
    """Source index of each output position for ``mode="nearest"``: ``min(floor(i*scale), in-1)``.

    Computed in float32, as PyTorch does, so rounding at exact multiples agrees.
    """
    scale = np.float32(_source_scale(in_size, out_size, scale_factor))
    idx = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(idx, in_size - 1)


def linear_indices(
    in_size: int, out_size: int, align_corners: bool, scale_factor: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbours and weights for linear interpolation along one axis.

    Returns ``(i0, i1, w1)``: int64 source indices and the float64 weight of ``i1`` (``i0`` gets
    ``1 - w1``), PyTorch's ``area_pixel_compute_source_index``. An unchanged size is a copy, as in
    PyTorch, even when a ``scale_factor`` such as 1.2 rounded back to the input size.
    """
    dst = np.arange(out_size, dtype=np.float64)
    if in_size == out_size:
        i0 = np.arange(out_size, dtype=np.int64)
        return i0, i0, np.zeros(out_size)
    if align_corners:
        src = dst * ((in_size - 1) / (out_size - 1)) if out_size > 1 else np.zeros(out_size)
    else:
        scale = _source_scale(in_size, out_size, scale_factor)
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = src - i0
    return i0, i1, w1


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers."""
    return -(-a // b)


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """PyTorch's ``padding="same"`` split along one axis: the extra pixel of an odd total goes after."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


__all__ = [
    "adaptive_bounds",
    "avg_pool_divisors",
    "ceil_div",
    "conv_out_size",
    "conv_transpose_out_size",
    "linear_indices",
    "nearest_indices",
    "pool_extra_pad",
    "pool_out_size",
    "same_padding",
]
