"""Spatial transformers: ``affine_grid`` and ``grid_sample`` (torch.nn.functional's names and semantics).

``grid_sample(input, grid)`` reads ``input`` (N, C, H, W) at the normalized positions ``grid`` (N, Ho, Wo, 2)
(``x`` then ``y``, -1 the first pixel and +1 the last: their centers with ``align_corners=True``, their outer
edges with False), or (N, C, D, H, W) at (N, Do, Ho, Wo, 3). Out-of-range positions read zeros, the border
value, or the input reflected at its edges (``padding_mode``). Modes: ``bilinear`` (trilinear for 5-d),
``nearest`` (round half to even, as torch), ``bicubic`` (4-d only, torch's A = -0.75 kernel).

The coordinate formulas (unnormalization, clipping and reflection, and their gradient factors) are torch's,
evaluated in the input's dtype, so samples agree with torch's to rounding. The gradient with respect to the
input is a scatter-add of the interpolation weights (a bincount on the CPU, deterministic on CUDA too); the
gradient with respect to ``grid`` is the derivative of the interpolation weights (zero for ``nearest``).
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.nn.functional.fractional import _scatter_planes
from hubkit.ops.linalg import matmul
from hubkit.tensor import Tensor

_ALIGN_WARNING = ("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. "
                  "Please specify align_corners=True if the old behavior is desired. See the documentation of "
                  "grid_sample for details.")
_CUBIC_A = -0.75


# ---------------------------------------------------------------- torch's coordinate formulas


def _unnormalize(coord: Any, size: int, align_corners: bool) -> tuple[Any, float]:
    """Grid coordinate in [-1, 1] -> pixel coordinate, and d(pixel)/d(grid)."""
    t = coord.dtype.type
    if align_corners:
        return ((coord + t(1)) / t(2)) * t(size - 1), (size - 1) / 2
    return ((coord + t(1)) * t(size) - t(1)) / t(2), size / 2


def _clip(xp: Any, coord: Any, size: int) -> tuple[Any, Any]:
    """Clamp to [0, size - 1]; the gradient factor is 0 where clamped (torch counts the end points too)."""
    t = coord.dtype.type
    grad = ((coord > 0) & (coord < size - 1)).astype(coord.dtype)
    return xp.minimum(t(size - 1), xp.maximum(coord, t(0))), grad


def _reflect(xp: Any, coord: Any, twice_low: int, twice_high: int) -> tuple[Any, Any]:
    """Reflect into [twice_low / 2, twice_high / 2] as many times as needed; gradient factor +-1."""
    t = coord.dtype.type
    if twice_low == twice_high:
        return xp.zeros_like(coord), xp.zeros_like(coord)
    low = t(twice_low) / t(2)
    span = t(twice_high - twice_low) / t(2)
    shifted = coord - low
    sign = xp.where(shifted < 0, t(-1), t(1))
    shifted = xp.abs(shifted)
    extra = xp.fmod(shifted, span)
    even = xp.floor(shifted / span).astype(np.int64) % 2 == 0
    return xp.where(even, extra + low, span - extra + low), xp.where(even, sign, -sign)


def _pad_coordinate(xp: Any, coord: Any, size: int, padding_mode: str, align_corners: bool) -> tuple[Any, Any]:
    """torch's compute_coordinates: the padding rule applied to a pixel coordinate, with its gradient factor."""
    if padding_mode == "border":
        return _clip(xp, coord, size)
    if padding_mode == "reflection":
        twice = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
        coord, grad_reflect = _reflect(xp, coord, *twice)
        coord, grad_clip = _clip(xp, coord, size)
        return coord, grad_reflect * grad_clip
    return coord, None


def _cubic_coefficients(t: Any) -> list[Any]:
    """torch's bicubic weights (A = -0.75) of the taps at offsets -1, 0, 1, 2 for a fraction ``t``."""
    a = t.dtype.type(_CUBIC_A)

    def near(x: Any) -> Any:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: Any) -> Any:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    one = t.dtype.type(1)
    return [far(t + one), near(t), near(one - t), far(one - t + one)]


def _cubic_derivatives(t: Any) -> list[Any]:
    """d/dt of ``_cubic_coefficients(t)``."""
    a = t.dtype.type(_CUBIC_A)

    def near_d(x: Any) -> Any:
        return (3 * (a + 2) * x - 2 * (a + 3)) * x

    def far_d(x: Any) -> Any:
        return (3 * a * x - 10 * a) * x + 8 * a

    one = t.dtype.type(1)
    return [far_d(t + one), near_d(t), -near_d(one - t), -far_d(one - t + one)]


# ---------------------------------------------------------------- grid_sample


class GridSample(Function):
    """``x`` (N, C, *S) sampled at ``grid`` (N, *O, k) -> (N, C, *O); k = len(S) in {2, 3}.

    A tap is one input pixel a sample reads: (flat index (N, P), weight (N, P), offsets, in-bounds mask).
    """

    def __init__(self, mode: str, padding_mode: str, align_corners: bool) -> None:
        self.mode, self.padding_mode, self.align_corners = mode, padding_mode, align_corners

    def _taps(self, xp: Any, grid: Any, spatial: tuple[int, ...]) -> list[tuple[Any, Any, tuple, Any]]:
        n, k = grid.shape[0], len(spatial)
        g = grid.reshape(n, -1, k)
        strides = [math.prod(spatial[d + 1:]) for d in range(k)]
        coords = [g[:, :, k - 1 - d] for d in range(k)]  # grid component 0 is x, the last spatial dim
        self.mult, taps = [], []
        if self.mode == "bicubic":  # padding applies to each integer tap, not to the sample position
            bases = []
            self.coeffs, self.derivs = [], []
            for d in range(k):
                c, m = _unnormalize(coords[d], spatial[d], self.align_corners)
                self.mult.append(m)
                base = xp.floor(c)
                bases.append(base)
                self.coeffs.append(_cubic_coefficients(c - base))
                self.derivs.append(_cubic_derivatives(c - base))
            for offsets in itertools.product(range(4), repeat=k):
                lin, valid = 0, True
                for d in range(k):
                    c, _ = _pad_coordinate(xp, bases[d] + (offsets[d] - 1), spatial[d], self.padding_mode,
                                           self.align_corners)
                    i = xp.where(xp.isfinite(c), c, -1).astype(np.int64)  # torch truncates toward zero
                    valid = valid & (i >= 0) & (i < spatial[d])
                    lin = lin + i * strides[d]
                weight = self.coeffs[k - 1][offsets[k - 1]]
                for d in range(k - 2, -1, -1):
                    weight = weight * self.coeffs[d][offsets[d]]
                taps.append((xp.where(valid, lin, 0), xp.where(valid, weight, 0), offsets, valid))
            return taps
        src = []
        for d in range(k):
            c, m = _unnormalize(coords[d], spatial[d], self.align_corners)
            c, pad_grad = _pad_coordinate(xp, c, spatial[d], self.padding_mode, self.align_corners)
            src.append(c)
            self.mult.append(m if pad_grad is None else pad_grad * c.dtype.type(m))
        if self.mode == "nearest":
            lin, valid = 0, True
            for d in range(k):
                i = xp.rint(src[d])  # round half to even, as torch's nearbyint
                valid = valid & (i >= 0) & (i < spatial[d])
                lin = lin + xp.where(xp.isfinite(i), i, 0).astype(np.int64) * strides[d]
            return [(xp.where(valid, lin, 0), valid.astype(grid.dtype), (), valid)]
        low = [xp.floor(c) for c in src]
        # torch's weights: (low + 1 - x) for the low neighbour, (x - low) for the high one
        self.factors = [((lo + 1) - c, c - lo) for lo, c in zip(low, src)]
        for bits in itertools.product((0, 1), repeat=k):  # first spatial dim outermost, the order torch sums in
            lin, valid = 0, True
            for d in range(k):
                i = xp.where(xp.isfinite(low[d]), low[d], -2).astype(np.int64) + bits[d]
                valid = valid & (i >= 0) & (i < spatial[d])
                lin = lin + i * strides[d]
            weight = self.factors[k - 1][bits[k - 1]]
            for d in range(k - 2, -1, -1):
                weight = weight * self.factors[d][bits[d]]
            taps.append((xp.where(valid, lin, 0), xp.where(valid, weight, 0), bits, valid))
        return taps

    def forward(self, x: Any, grid: Any) -> Any:
        xp = get_array_module(x)
        n, c, *spatial = x.shape
        taps = self._taps(xp, grid, tuple(spatial))
        flat = x.reshape(n, c, -1)
        values = []
        for lin, _, _, valid in taps:
            v = xp.take_along_axis(flat, xp.broadcast_to(lin[:, None, :], (n, c, lin.shape[1])), axis=2)
            values.append(xp.where(valid[:, None, :], v, 0))  # an out-of-range tap reads 0, never pixel 0
        if self.mode == "bicubic":  # torch interpolates along x within each row of taps, then across rows
            rows = []
            for j in range(4):
                row = None
                for i in range(4):
                    term = values[4 * j + i] * self.coeffs[1][i][:, None, :]
                    row = term if row is None else row + term
                rows.append(row * self.coeffs[0][j][:, None, :])
            out = rows[0] + rows[1] + rows[2] + rows[3]
        else:
            out = None
            for (_, weight, _, _), v in zip(taps, values):
                term = v * weight[:, None, :]
                out = term if out is None else out + term
        self.taps, self.values, self.x_shape = taps, values, x.shape
        self.grid_shape, self.grid_dtype = grid.shape, grid.dtype
        return out.reshape(n, c, *grid.shape[1:-1])

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        n, c, *spatial = self.x_shape
        k = len(spatial)
        gy = gy.reshape(n, c, -1)
        gx = ggrid = None
        if self.needs_input_grad[0]:
            idx = xp.concatenate([xp.broadcast_to(lin[:, None, :], gy.shape) for lin, _, _, _ in self.taps], axis=2)
            vals = xp.concatenate([gy * w[:, None, :] for _, w, _, _ in self.taps], axis=2)
            gx = _scatter_planes(vals.reshape(n * c, -1), idx.reshape(n * c, -1), n * c,
                                 math.prod(spatial)).reshape(self.x_shape)
        if self.needs_input_grad[1]:
            ggrid = xp.zeros((n, gy.shape[2], k), dtype=self.grid_dtype)
            if self.mode != "nearest":
                d_src = self._d_source(gy)
                for d in range(k):
                    ggrid[:, :, k - 1 - d] = d_src[d] * self.mult[d]
            ggrid = ggrid.reshape(self.grid_shape)
        return gx, ggrid

    def _d_source(self, gy: Any) -> list[Any]:
        """d(loss)/d(pixel coordinate) along each spatial dim, each (N, P): every tap's value times the
        derivative of its weight (taps outside the input read 0, so they add nothing)."""
        k = len(self.mult)
        out: list[Any] = [0] * k
        for (_, _, offsets, _), v in zip(self.taps, self.values):
            g = (v * gy).sum(axis=1)
            for d in range(k):
                if self.mode == "bicubic":
                    term = self.derivs[d][offsets[d]]
                else:  # d/dx of (low + 1 - x) is -1, of (x - low) is +1
                    term = g.dtype.type(1 if offsets[d] else -1)
                for e in range(k):
                    if e != d:
                        term = term * (self.coeffs[e][offsets[e]] if self.mode == "bicubic"
                                       else self.factors[e][offsets[e]])
                out[d] = out[d] + g * term
        return out


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",  # noqa: A002
                align_corners: bool | None = None) -> Tensor:
    """Sample ``input`` (N, C, H, W) at ``grid`` (N, Ho, Wo, 2) -> (N, C, Ho, Wo), or (N, C, D, H, W) at
    (N, Do, Ho, Wo, 3) -> (N, C, Do, Ho, Wo). ``grid[..., 0]`` is x (width), ``[..., 1]`` y, ``[..., 2]`` z,
    normalized to [-1, 1]. Differentiable in both ``input`` and ``grid``."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ArgumentError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                            f"but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ArgumentError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                            f"'reflection', but got: '{padding_mode}'")
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, UserWarning, stacklevel=2)
        align_corners = False
    if input.ndim not in (4, 5):
        raise ShapeError(f"grid_sampler(): expected 4D or 5D input and grid with same number of dimensions, but got "
                         f"input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if grid.ndim != input.ndim:
        raise ShapeError(f"grid_sampler(): expected grid to have {input.ndim} dimensions, but got grid with sizes "
                         f"{list(grid.shape)}")
    if grid.shape[-1] != input.ndim - 2:
        raise ShapeError(f"grid_sampler(): expected grid to have size {input.ndim - 2} in last dimension, but got "
                         f"grid with sizes {list(grid.shape)}")
    if grid.shape[0] != input.shape[0]:
        raise ShapeError(f"grid_sampler(): expected grid and input to have same batch size, but got input with "
                         f"sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if input.dtype.kind != "f" or grid.dtype != input.dtype:
        raise DTypeError(f"grid_sampler(): expected input and grid to have the same floating-point dtype, but got "
                         f"input {input.dtype} and grid {grid.dtype}")
    if mode == "bicubic" and input.ndim != 4:
        raise ShapeError("grid_sampler(): bicubic interpolation only supports 4D input")
    if 0 in input.shape[2:]:
        raise ShapeError(f"grid_sampler(): expected input to have non-empty spatial dimensions, but input has sizes "
                         f"{list(input.shape)}")
    return GridSample(mode, padding_mode, bool(align_corners))(input, grid)


# ---------------------------------------------------------------- affine_grid


def _base_coordinates(xp: Any, steps: int, dtype: Any, align_corners: bool) -> Any:
    """torch's ``linspace_from_neg_one``: ``steps`` points over [-1, 1], pulled in to the pixel centers
    (``* (steps - 1) / steps``) without ``align_corners``."""
    if steps <= 1:
        return xp.zeros(steps, dtype=dtype)
    r = xp.linspace(-1.0, 1.0, steps).astype(dtype)
    if not align_corners:
        t = np.dtype(dtype).type
        r = (r * t(steps - 1)) / t(steps)
    return r


def affine_grid(theta: Tensor, size: Any, align_corners: bool | None = None) -> Tensor:
    """The sampling grid of a batch of affine maps: ``theta`` (N, 2, 3) and ``size`` (N, C, H, W) ->
    (N, H, W, 2); ``theta`` (N, 3, 4) and (N, C, D, H, W) -> (N, D, H, W, 3). Each output position's
    normalized (x, y[, z], 1) times ``theta`` transposed. Differentiable in ``theta``."""
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, UserWarning, stacklevel=2)
        align_corners = False
    if theta.dtype.kind != "f":
        raise DTypeError(f"Expected theta to have floating point type, but got {theta.dtype}")
    size = tuple(int(s) for s in size)
    if len(size) == 4:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (2, 3):
            raise ShapeError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {list(size)}. "
                             f"Got {list(theta.shape)}.")
        spatial = size[-2:]
    elif len(size) == 5:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (3, 4):
            raise ShapeError(f"Expected a batch of 3D affine matrices of shape Nx3x4 for size {list(size)}. "
                             f"Got {list(theta.shape)}.")
        spatial = size[-3:]
    else:
        raise ShapeError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                         f"respectively. Got size {list(size)}.")
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation "
                      "of affine_grid for details.", UserWarning, stacklevel=2)
    elif min(size) <= 0:
        raise ShapeError(f"Expected non-zero, positive output size. Got {list(size)}")
    if theta.shape[0] != size[0]:
        raise ShapeError(f"affine_grid: theta has batch size {theta.shape[0]} but size asks for {size[0]}")
    xp = theta._xp
    k = len(spatial)
    axes = [_base_coordinates(xp, s, theta.dtype, align_corners) for s in spatial]
    base = xp.ones((*spatial, k + 1), dtype=theta.dtype)
    for d in range(k):  # column 0 is x (the last spatial dim), then y, then z
        shape = [1] * k
        shape[d] = spatial[d]
        base[..., k - 1 - d] = axes[d].reshape(shape)
    base = Tensor._make(base.reshape(1, -1, k + 1))
    grid = matmul(base, theta.transpose(1, 2))  # (N, prod(spatial), k)
    return grid.reshape(size[0], *spatial, k)
