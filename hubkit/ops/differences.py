"""Finite differences and integrals along a dim: diff, gradient (central differences, PyTorch's and
numpy's ``gradient``), trapezoid/trapz and cumulative_trapezoid. All are built from slices and
elementwise arithmetic, so they are differentiable wherever their inputs are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, ShapeError
from hubkit.ops import elementwise as ew
from hubkit.ops import shape as sh
from hubkit.ops.reduction import cumsum, normalize_dims, sum
from hubkit.tensor import Tensor


def _slice_along(t: Tensor, axis: int, start: int | None, stop: int | None) -> Tensor:
    return sh.getitem(t, (slice(None),) * axis + (slice(start, stop),))


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend: Tensor | None = None,  # noqa: A002
         append: Tensor | None = None) -> Tensor:
    """The n-th forward difference along ``dim`` (``out[i] = x[i+1] - x[i]``, n times), after attaching
    ``prepend``/``append``. Bool input gives logical xor, as in PyTorch."""
    if input.ndim == 0:
        raise ShapeError("diff: expects a tensor with at least 1 dim, got a 0-d tensor")
    axis = normalize_dims(dim, input.ndim, "diff")[0]
    parts = [p for p in (prepend, input, append) if p is not None]
    x = sh.cat(parts, axis) if len(parts) > 1 else input
    for _ in range(n):
        hi, lo = _slice_along(x, axis, 1, None), _slice_along(x, axis, None, -1)
        x = Tensor._make(hi.array != lo.array) if x.dtype == np.bool_ else ew.sub(hi, lo)
    return x


def _spacing(y: Tensor, x: Tensor | None, dx: Any, axis: int, op: str) -> Any:
    """The widths of the intervals along ``axis``: ``diff(x)`` (x 1-d or shaped like y) or the constant dx."""
    if x is None:
        return 1 if dx is None else dx
    if dx is not None:
        raise ArgumentError(f"{op}: pass x or dx, not both")
    if x.ndim == 1:
        if x.shape[0] != y.shape[axis]:
            raise ShapeError(f"{op}: x has {x.shape[0]} points but y has {y.shape[axis]} along dim {axis}")
        return diff(x).reshape(*[-1 if i == axis else 1 for i in range(y.ndim)])
    return diff(x, dim=axis - y.ndim)


def trapezoid(y: Tensor, x: Tensor | None = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """The trapezoid-rule integral of ``y`` along ``dim``, at points ``x`` or spacing ``dx`` (default 1)."""
    axis = normalize_dims(dim, y.ndim, "trapezoid")[0]
    widths = _spacing(y, x, dx, axis, "trapezoid")
    heights = ew.add(_slice_along(y, axis, 1, None), _slice_along(y, axis, None, -1))
    return sum(ew.mul(ew.mul(heights, widths), 0.5), axis)


def trapz(y: Tensor, x: Any = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """``trapezoid``; ``trapz(y, dx, dim=...)`` with a number as the second argument is the spacing."""
    if x is not None and not isinstance(x, Tensor):
        return trapezoid(y, dx=x, dim=dim)
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y: Tensor, x: Tensor | None = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """The running trapezoid-rule integral along ``dim`` (one element shorter than ``y`` there)."""
    axis = normalize_dims(dim, y.ndim, "cumulative_trapezoid")[0]
    widths = _spacing(y, x, dx, axis, "cumulative_trapezoid")
    heights = ew.add(_slice_along(y, axis, 1, None), _slice_along(y, axis, None, -1))
    return cumsum(ew.mul(ew.mul(heights, widths), 0.5), axis)


def _coefficients(x: np.ndarray, edge_order: int) -> list[tuple[slice, tuple[tuple[slice, np.ndarray], ...]]]:
    """For points ``x`` (1-d, increasing), the derivative at each point as a weighted sum of neighbours:
    a list of (output positions, ((input positions, weights), ...)). Second-order accurate inside; the
    two ends are first- or second-order (``edge_order``), with numpy's and PyTorch's formulas."""
    h = np.diff(x)
    hl, hr = h[:-1], h[1:]
    inner = (slice(1, -1), ((slice(2, None), hl / (hr * (hl + hr))),
                            (slice(1, -1), (hr - hl) / (hl * hr)),
                            (slice(None, -2), -hr / (hl * (hl + hr)))))
    if edge_order == 1:
        first = (slice(0, 1), ((slice(1, 2), 1 / h[:1]), (slice(0, 1), -1 / h[:1])))
        last = (slice(-1, None), ((slice(-1, None), 1 / h[-1:]), (slice(-2, -1), -1 / h[-1:])))
    else:
        d1, d2 = h[:1], h[1:2]
        first = (slice(0, 1), ((slice(0, 1), -(2 * d1 + d2) / (d1 * (d1 + d2))),
                               (slice(1, 2), (d1 + d2) / (d1 * d2)), (slice(2, 3), -d1 / (d2 * (d1 + d2)))))
        d1, d2 = h[-2:-1], h[-1:]
        last = (slice(-1, None), ((slice(-3, -2), d2 / (d1 * (d1 + d2))), (slice(-2, -1), -(d1 + d2) / (d1 * d2)),
                                  (slice(-1, None), (2 * d2 + d1) / (d2 * (d1 + d2)))))
    return [first, inner, last]


def gradient(input: Tensor, *, spacing: Any = 1, dim: Any = None, edge_order: int = 1) -> tuple[Tensor, ...]:  # noqa: A002
    """The derivative of sampled values along each of ``dim`` (all dims by default), by central
    differences: one tensor per dim, each shaped like ``input``.

    ``spacing`` is the sample distance (a number, one number per dim) or the sample coordinates (one
    1-d tensor per dim). ``edge_order`` (1 or 2) is the accuracy at the two ends.
    """
    if edge_order not in (1, 2):
        raise ArgumentError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    dims = list(range(input.ndim)) if dim is None else [dim] if isinstance(dim, int) else list(dim)
    axes = [normalize_dims(d, input.ndim, "gradient")[0] for d in dims]
    specs = list(spacing) if isinstance(spacing, (list, tuple)) else [spacing] * len(axes)
    if len(specs) == 1 and len(axes) > 1:
        specs *= len(axes)
    if len(specs) != len(axes):
        raise ArgumentError(f"gradient: got {len(specs)} spacings for {len(axes)} dims")
    x = input if input.dtype.kind == "f" else input.to("float32")
    out = []
    for axis, spec in zip(axes, specs):
        n = x.shape[axis]
        if n < edge_order + 1:
            raise ShapeError(f"gradient: dim {axis} has {n} samples; edge_order={edge_order} needs at least "
                             f"{edge_order + 1}")
        coords = (np.asarray(spec.tolist(), dtype=np.float64) if isinstance(spec, Tensor)
                  else np.arange(n, dtype=np.float64) * float(spec))
        if coords.shape != (n,):
            raise ShapeError(f"gradient: coordinates for dim {axis} must have {n} entries, got {coords.shape}")
        parts = []
        for _positions, terms in _coefficients(coords, edge_order):
            total = None
            for where, weights in terms:
                w = Tensor._make(x._xp.asarray(weights.reshape([-1 if i == axis else 1 for i in range(x.ndim)]),
                                               dtype=x.dtype))
                term = ew.mul(_slice_along(x, axis, where.start, where.stop), w)
                total = term if total is None else ew.add(total, term)
            parts.append(total)
        out.append(sh.cat(parts, axis))
    return tuple(out)

