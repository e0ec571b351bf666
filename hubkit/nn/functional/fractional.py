"""Fractional max pooling (Graham, 2014), ``torch.nn.functional.fractional_max_pool2d/3d``.

Each (sample, channel) plane gets pseudo-random window starts along every spatial dim from one number
``u`` in [0, 1) per dim (``_random_samples``, drawn from the global generator when not given):
``start[i] = int((i + u) * alpha) - int(u * alpha)`` for ``i < out - 1`` and ``in - k`` for the last,
with ``alpha = (in - k) / (out - 1)`` computed in the input's dtype, as torch does, so the same samples
pick the same windows. Each output is the max over its ``k``-sized window (NaN wins; among equal
values the first in row-major order), with int64 indices flat in the input plane like max_pool's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hubkit._backend import get_array_module, scatter_add
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.tensor import Tensor, rand

# which column of a plane's random samples drives each spatial dim (torch: 2-d (W, H); 3-d (T, H, W))
_SAMPLE_COLUMN = {2: (1, 0), 3: (0, 1, 2)}


def _intervals(xp: Any, u: Any, in_size: int, out_size: int, pool: int) -> Any:
    """Window starts ``(planes, out_size)`` for one spatial dim from the planes' samples ``u`` (planes,)."""
    starts = xp.empty((u.shape[0], out_size), dtype=np.int64)
    if out_size > 1:
        t = u.dtype.type
        alpha = t(in_size - pool) / t(out_size - 1)
        i = xp.arange(out_size - 1).astype(u.dtype)
        starts[:, :-1] = ((i[None, :] + u[:, None]) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)[:, None]
    if out_size > 0:
        starts[:, -1] = in_size - pool
    return starts


def _scatter_planes(gy: Any, indices: Any, planes: int, plane_size: int) -> Any:
    """``gx`` (planes, plane_size) with ``gy`` summed into each plane at ``indices`` (windows overlap, so one
    input can win several outputs); deterministic on either device."""
    xp = get_array_module(gy)
    flat = (indices.reshape(planes, -1) + xp.arange(planes, dtype=np.int64)[:, None] * plane_size).reshape(-1)
    if xp is np:
        return np.bincount(flat, weights=gy.reshape(-1), minlength=planes * plane_size).astype(gy.dtype)
    out = xp.zeros(planes * plane_size, dtype=gy.dtype)
    scatter_add(out, flat, gy.reshape(-1))
    return out


class FractionalMaxPool(Function):
    """``x`` (N, C, *S) -> ``y`` (N, C, *O) and int64 flat indices, windows from ``samples`` (N, C, dims)."""

    def __init__(self, kernel: tuple[int, ...], out: tuple[int, ...], samples: Any) -> None:
        self.kernel, self.out, self.samples = kernel, out, samples

    def forward(self, x: Any) -> tuple[Any, Any]:
        xp = get_array_module(x)
        n, c, *spatial = x.shape
        dims = len(spatial)
        planes = n * c
        u = self.samples[:n].reshape(planes, dims)
        starts = [_intervals(xp, u[:, col], size, o, k)
                  for col, size, o, k in zip(_SAMPLE_COLUMN[dims], spatial, self.out, self.kernel)]
        strides = [math.prod(spatial[d + 1:]) for d in range(dims)]
        # flat position of each output window's first element: (planes, *out), one broadcast axis per dim
        base = 0
        for d in range(dims):
            shape = [planes] + [1] * dims
            shape[1 + d] = self.out[d]
            base = base + (starts[d] * strides[d]).reshape(shape)
        base = xp.broadcast_to(base, (planes, *self.out)).reshape(planes, -1)
        flat_x = x.reshape(planes, -1)
        best = xp.full(base.shape, -np.inf, dtype=x.dtype)
        index = base.copy()
        for offsets in np.ndindex(*self.kernel):  # row-major over the window, torch's scan order
            pos = base + sum(o * s for o, s in zip(offsets, strides))
            v = xp.take_along_axis(flat_x, pos, axis=1)
            better = (v > best) | xp.isnan(v)
            best = xp.where(better, v, best)
            index = xp.where(better, pos, index)
        self.in_shape = x.shape
        out_shape = (n, c, *self.out)
        self.index = index
        return best.reshape(out_shape), index.reshape(out_shape)

    def backward(self, gy: Any, unused_index_grad: Any = None) -> Any:
        n, c, *spatial = self.in_shape
        gx = _scatter_planes(gy, self.index, n * c, math.prod(spatial))
        return gx.reshape(self.in_shape)


def _sizes(value: Any, dims: int, what: str, op: str) -> tuple[int, ...]:
    values = (value,) * dims if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(values) == 1:
        values = values * dims
    if len(values) != dims or not all(isinstance(v, (int, np.integer)) for v in values):
        raise ArgumentError(f"{op}: {what} must either be a single Int or tuple of {dims} Ints, got {value!r}")
    return tuple(int(v) for v in values)


def _fractional(op: str, input: Tensor, kernel_size: Any, output_size: Any, output_ratio: Any,  # noqa: A002
                samples: Tensor | None, dims: int) -> tuple[Tensor, Tensor]:
    if input.ndim not in (dims + 1, dims + 2):
        raise ShapeError(f"{op}(): expected {dims + 1}D or {dims + 2}D tensor, but got shape {tuple(input.shape)}")
    if input.dtype.kind != "f":
        raise DTypeError(f"{op}(): expected a floating-point input, got {input.dtype}")
    unbatched = input.ndim == dims + 1
    x = input.unsqueeze(0) if unbatched else input
    spatial = x.shape[2:]
    if output_size is None and output_ratio is None:
        raise ArgumentError(f"{op} requires specifying either an output_size or an output_ratio")
    if output_size is None:
        ratio = (output_ratio,) * dims if isinstance(output_ratio, (int, float)) else tuple(output_ratio)
        if len(ratio) != dims:
            raise ArgumentError(f"{op} requires output_ratio to either be a single number or a tuple of {dims}, "
                                f"got {output_ratio!r}")
        output_size = tuple(int(s * r) for s, r in zip(spatial, ratio))
    kernel = _sizes(kernel_size, dims, "kernel_size", op)
    out = _sizes(output_size, dims, "output_size", op)
    names = ("time", "height", "width")[3 - dims:]
    for name, o, k, s in zip(names, out, kernel, spatial):
        # torch's 3-d kernel also refuses windows that would exactly tile the input (a strict bound)
        if o + k - 1 > s or (dims == 3 and o + k - 1 == s):
            raise ArgumentError(f"{op}(): pool {name} {k} too large relative to input {name} {s}")
    if samples is None:
        samples = rand(x.shape[0], x.shape[1], dims, dtype=input.dtype, device=input.device)
    elif samples.dtype != input.dtype:
        raise DTypeError("Expect _random_samples to have the same dtype as input")
    if samples.ndim != 3:
        raise ShapeError(f"Expect _random_samples to have 3 dimensions, got {samples.ndim}")
    if samples.shape[0] < x.shape[0]:
        raise ShapeError("Expect _random_samples.size(0) no less then input batch size.")
    if samples.shape[1] != x.shape[1]:
        raise ShapeError("Expect _random_samples.size(1) equals to input channel size.")
    if samples.shape[2] != dims:
        raise ShapeError(f"Expect _random_samples.size(2) equals to {dims}; got {samples.shape[2]}.")
    y, indices = FractionalMaxPool(kernel, out, samples.array)(x)
    if unbatched:
        return y.squeeze(0), indices.squeeze(0)
    return y, indices


def fractional_max_pool2d_with_indices(input: Tensor, kernel_size: Any, output_size: Any = None,  # noqa: A002
                                       output_ratio: Any = None, return_indices: bool = False,
                                       _random_samples: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Fractional max pooling over ``(N, C, H, W)`` or ``(C, H, W)`` -> ``(y, indices)``, each
    ``(N, C, OH, OW)``; ``output_size`` or ``output_ratio`` (of the input size) sets ``(OH, OW)``;
    ``_random_samples`` ``(N, C, 2)`` in [0, 1) fix the windows (column 0 for W, 1 for H, as torch)."""
    return _fractional("fractional_max_pool2d", input, kernel_size, output_size, output_ratio, _random_samples, 2)


def fractional_max_pool2d(input: Tensor, kernel_size: Any, output_size: Any = None,  # noqa: A002
                          output_ratio: Any = None, return_indices: bool = False,
                          _random_samples: Tensor | None = None) -> Any:
    """``fractional_max_pool2d_with_indices``'s output, or ``(output, indices)`` with ``return_indices``."""
    y, indices = fractional_max_pool2d_with_indices(input, kernel_size, output_size, output_ratio,
                                                    _random_samples=_random_samples)
    return (y, indices) if return_indices else y


def fractional_max_pool3d_with_indices(input: Tensor, kernel_size: Any, output_size: Any = None,  # noqa: A002
                                       output_ratio: Any = None, return_indices: bool = False,
                                       _random_samples: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Fractional max pooling over ``(N, C, T, H, W)`` or ``(C, T, H, W)`` -> ``(y, indices)``, each
    ``(N, C, OT, OH, OW)``; ``_random_samples`` ``(N, C, 3)`` (columns for T, H, W)."""
    return _fractional("fractional_max_pool3d", input, kernel_size, output_size, output_ratio, _random_samples, 3)


def fractional_max_pool3d(input: Tensor, kernel_size: Any, output_size: Any = None,  # noqa: A002
                          output_ratio: Any = None, return_indices: bool = False,
                          _random_samples: Tensor | None = None) -> Any:
    """``fractional_max_pool3d_with_indices``'s output, or ``(output, indices)`` with ``return_indices``."""
    y, indices = fractional_max_pool3d_with_indices(input, kernel_size, output_size, output_ratio,
                                                    _random_samples=_random_samples)
    return (y, indices) if return_indices else y
