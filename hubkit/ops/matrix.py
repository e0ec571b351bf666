"""Matrix-structure ops: tril/triu, diag, diagonal, diag_embed, diagflat, trace, kron, block_diag,
vander, cross, cdist.

The triangular masks are Functions (their backward is the same mask); the rest are built from the
differentiable primitives (indexing, SetItem into zeros, broadcasting multiply, norms).
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, ShapeError
from hubkit.ops import elementwise as ew
from hubkit.ops import shape as sh
from hubkit.ops.rearrange import movedim
from hubkit.ops.reduction import normalize_dims, sum, vector_norm
from hubkit.tensor import Tensor


class Triangle(Function):
    """Keep the lower (``tril``) or upper (``triu``) triangle of the last two dims, from diagonal ``k``."""

    def __init__(self, k: int, lower: bool) -> None:
        self.k, self.lower = k, lower

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        return xp.tril(x, self.k) if self.lower else xp.triu(x, self.k)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        return xp.tril(gy, self.k) if self.lower else xp.triu(gy, self.k)


def _triangle(input: Tensor, diagonal: int, lower: bool) -> Tensor:
    if input.ndim < 2:
        raise ShapeError(f"{'tril' if lower else 'triu'}: input must have at least 2 dims, "
                         f"got shape {tuple(input.shape)}")
    return Triangle(int(diagonal), lower)(input)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:  # noqa: A002
    """Zero everything above diagonal ``diagonal`` of the last two dims."""
    return _triangle(input, diagonal, True)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:  # noqa: A002
    """Zero everything below diagonal ``diagonal`` of the last two dims."""
    return _triangle(input, diagonal, False)


def _diagonal_index(rows: int, cols: int, offset: int, xp: Any) -> tuple[Any, Any]:
    """Row and column indices of diagonal ``offset`` of a rows x cols matrix."""
    if offset >= 0:
        n = max(min(rows, cols - offset), 0)
        r = xp.arange(n)
        return r, r + offset
    n = max(min(rows + offset, cols), 0)
    c = xp.arange(n)
    return c - offset, c


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:  # noqa: A002
    """The diagonal ``offset`` of the matrices in dims (dim1, dim2), as a new last dim."""
    a1 = normalize_dims(dim1, input.ndim, "diagonal")[0]
    a2 = normalize_dims(dim2, input.ndim, "diagonal")[0]
    if a1 == a2:
        raise ArgumentError(f"diagonal: dim1 and dim2 must differ, got {dim1} and {dim2}")
    moved = movedim(input, (a1, a2), (-2, -1))
    rows, cols = _diagonal_index(moved.shape[-2], moved.shape[-1], offset, input._xp)
    return sh.getitem(moved, (Ellipsis, rows, cols))


_diagonal = diagonal  # ``diag`` takes an argument named ``diagonal``


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:  # noqa: A002
    """Matrices with the last dim of ``input`` on diagonal ``offset``, in dims (dim1, dim2) of the result.

    ``(*, n) -> (*, n + |offset|, n + |offset|)`` for the default dims.
    """
    nd = input.ndim + 1
    a1 = normalize_dims(dim1, nd, "diag_embed")[0]
    a2 = normalize_dims(dim2, nd, "diag_embed")[0]
    if a1 == a2:
        raise ArgumentError(f"diag_embed: dim1 and dim2 must differ, got {dim1} and {dim2}")
    n = input.shape[-1] if input.ndim else 1
    x = input.reshape(1) if input.ndim == 0 else input
    m = n + abs(offset)
    xp = input._xp
    zeros = Tensor._make(xp.zeros(x.shape[:-1] + (m, m), dtype=x.dtype))
    rows, cols = _diagonal_index(m, m, offset, xp)
    out = sh.SetItem((Ellipsis, rows, cols), True)(zeros, x)
    return movedim(out, (-2, -1), (a1, a2))


def diag(input: Tensor, diagonal: int = 0) -> Tensor:  # noqa: A002
    """A 1-d tensor -> the square matrix with it on diagonal ``diagonal``; a 2-d tensor -> that diagonal."""
    if input.ndim == 1:
        return diag_embed(input, diagonal)
    if input.ndim == 2:
        return _diagonal(input, diagonal)
    raise ShapeError(f"diag: expects a 1-d or 2-d tensor, got shape {tuple(input.shape)}")


def diagflat(input: Tensor, offset: int = 0) -> Tensor:  # noqa: A002
    """The flattened input on diagonal ``offset`` of a square matrix."""
    return diag_embed(input.reshape(-1), offset)


def trace(input: Tensor) -> Tensor:  # noqa: A002
    """The sum of the main diagonal of a 2-d tensor (integers sum to int64)."""
    if input.ndim != 2:
        raise ShapeError(f"trace: expects a 2-d tensor, got shape {tuple(input.shape)}")
    return sum(diagonal(input))


def kron(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The Kronecker product: block (i, j, ...) is ``input[i, j, ...] * other``.

    ``(a0, a1, ...) x (b0, b1, ...) -> (a0*b0, a1*b1, ...)`` (the shorter shape is padded with leading 1s).
    """
    nd = max(input.ndim, other.ndim)
    sa = (1,) * (nd - input.ndim) + tuple(input.shape)
    sb = (1,) * (nd - other.ndim) + tuple(other.shape)
    a = input.reshape(*[v for s in sa for v in (s, 1)])
    b = other.reshape(*[v for s in sb for v in (1, s)])
    return ew.mul(a, b).reshape(*(x * y for x, y in zip(sa, sb)))


def block_diag(*tensors: Tensor) -> Tensor:
    """The tensors (0-d, 1-d as one row, or 2-d) as blocks along the diagonal of one zero matrix."""
    blocks = []
    for t in tensors:
        if t.ndim > 2:
            raise ShapeError(f"block_diag: expects tensors with at most 2 dims, got shape {tuple(t.shape)}")
        blocks.append(t.reshape(1, 1) if t.ndim == 0 else t.reshape(1, -1) if t.ndim == 1 else t)
    if not blocks:
        return Tensor._make(np.zeros((1, 0), dtype=np.float32))
    width = builtins.sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in sh._same_dtype(blocks, "block_diag"):
        rows.append(sh.pad(b, (left, width - left - b.shape[1])))
        left += b.shape[1]
    return sh.cat(rows, 0)


def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:  # noqa: N803
    """The Vandermonde matrix of a 1-d ``x``: columns ``x**(N-1), ..., x, 1`` (reversed with ``increasing``)."""
    if x.ndim != 1:
        raise ShapeError(f"vander: expects a 1-d tensor, got shape {tuple(x.shape)}")
    n = x.shape[0] if N is None else N
    if n < 0:
        raise ArgumentError(f"vander: N must be non-negative, got {N}")
    base = x if x.dtype.kind in "fc" else x.to("int64")
    cols = [Tensor._make(x._xp.ones(x.shape, dtype=base.dtype)) if p == 0 else base if p == 1 else ew.pow(base, p)
            for p in range(n)]
    if not increasing:
        cols.reverse()
    if not cols:
        return Tensor._make(x._xp.zeros((x.shape[0], 0), dtype=base.dtype))
    return sh.stack(cols, 1)


def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:  # noqa: A002
    """The 3-d cross product along ``dim`` (default: the first dim of size 3); shapes broadcast."""
    from hubkit.ops.rearrange import broadcast_tensors

    a, b = broadcast_tensors(input, other)
    if dim is None:
        sizes = [i for i, n in enumerate(a.shape) if n == 3]
        if not sizes:
            raise ShapeError(f"cross: no dim of size 3 in shape {tuple(a.shape)}")
        axis = sizes[0]
    else:
        axis = normalize_dims(dim, a.ndim, "cross")[0]
    if a.shape[axis] != 3:
        raise ShapeError(f"cross: dim {dim} must have size 3, got {a.shape[axis]} in shape {tuple(a.shape)}")

    def part(t: Tensor, i: int) -> Tensor:
        return sh.getitem(t, (slice(None),) * axis + (slice(i, i + 1),))

    a0, a1, a2 = (part(a, i) for i in range(3))
    b0, b1, b2 = (part(b, i) for i in range(3))
    return sh.cat([ew.sub(ew.mul(a1, b2), ew.mul(a2, b1)), ew.sub(ew.mul(a2, b0), ew.mul(a0, b2)),
                   ew.sub(ew.mul(a0, b1), ew.mul(a1, b0))], axis)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode: str | None = None) -> Tensor:
    """Pairwise p-norm distances between the rows of ``x1: (*, P, M)`` and ``x2: (*, R, M)`` -> ``(*, P, R)``.

    Computed as the norm of all pairwise differences (no matmul shortcut), so zero distances have a
    zero gradient as in PyTorch.
    """
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist: expects x1 (*, P, M) and x2 (*, R, M) with the same M, got {tuple(x1.shape)} "
                         f"and {tuple(x2.shape)}")
    if p < 0:
        raise ArgumentError(f"cdist: p must be non-negative, got {p}")
    diff = ew.sub(sh.unsqueeze(x1, -2), sh.unsqueeze(x2, -3))
    return vector_norm(diff, p, -1)
