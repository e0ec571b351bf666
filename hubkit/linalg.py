"""``hubkit.linalg``: PyTorch's ``torch.linalg``: norms, products and determinants, solves, and the
factorizations (Cholesky, LU, QR, LDL, SVD, eigendecompositions) with the functions built on them, on the
differentiable ops of ``hubkit.ops``.

``eig`` and ``eigvals`` return complex tensors and are not differentiable (hubkit's autograd is real-valued).
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, LinAlgError, ShapeError  # noqa: F401  (torch.linalg.LinAlgError)
from hubkit.ops import elementwise as ew
from hubkit.ops import reduction
from hubkit.ops.decompositions import check_matrices as _check_matrices
from hubkit.ops.decompositions import cholesky as _cholesky
from hubkit.ops.decompositions import (  # noqa: F401
    cholesky_ex,
    inv_ex,
    linalg_lu,
    lu_factor,
    lu_factor_ex,
    lu_solve,
    solve_triangular,
)
from hubkit.ops.decompositions import lu_factor_raw as _lu_factor_raw
from hubkit.ops.householder import householder_product, qr  # noqa: F401
from hubkit.ops.ldl import ldl_factor, ldl_factor_ex, ldl_solve  # noqa: F401
from hubkit.ops.least_squares import lstsq, matrix_rank, pinv  # noqa: F401
from hubkit.ops.linalg import _square, det, inverse, matmul, matrix_power, multi_dot, slogdet  # noqa: F401
from hubkit.ops.matrix import cross as _cross
from hubkit.ops.matrix import diagonal as _diagonal
from hubkit.ops.rearrange import movedim
from hubkit.ops.spectral import (  # noqa: F401
    eig,
    eigh,
    eigvals,
    eigvalsh,
    matrix_exp,
    matrix_sqrth,
    polar,
    svd,
    svdvals,
)
from hubkit.tensor import Tensor

SolveExResult = namedtuple("linalg_solve_ex", ["result", "info"])

inv = inverse
lu = linalg_lu


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:  # noqa: N803
    """L with ``A = L L^T`` for symmetric positive-definite ``A: (*, n, n)`` (its lower triangle is read);
    ``upper=True`` returns ``L^T``. Raises ``LinAlgError`` naming the first leading minor that is not
    positive-definite."""
    return _cholesky(A, upper)


def vector_norm(x: Tensor, ord: float = 2, dim: Any = None, keepdim: bool = False, *,  # noqa: A002
                dtype: Any = None) -> Tensor:
    """The vector ``ord``-norm over ``dim`` (all elements when None); ord may be inf, -inf or 0."""
    return reduction.vector_norm(x, ord, dim, keepdim, dtype=dtype)


def matrix_norm(A: Tensor, ord: Any = "fro", dim: tuple[int, int] = (-2, -1), keepdim: bool = False, *,  # noqa: A002,N803
                dtype: Any = None) -> Tensor:
    """A matrix norm over the two dims ``dim``: 'fro', 'nuc', 1/-1 (max/min column sum), inf/-inf (max/min
    row sum), 2/-2 (largest/smallest singular value)."""
    x = A if dtype is None else A.to(dtype)
    if x.ndim < 2:
        raise ShapeError(f"matrix_norm: expects matrices (*, m, n), got shape {tuple(x.shape)}")
    d0, d1 = (reduction.normalize_dims(d, x.ndim, "matrix_norm")[0] for d in dim)
    if ord == "fro":
        return reduction.vector_norm(x, 2, (d0, d1), keepdim)
    moved = movedim(x, (d0, d1), (-2, -1))
    if ord == "nuc" or ord in (2, -2):
        s = svdvals(moved)
        out = reduction.sum(s, -1) if ord == "nuc" else (reduction.amax if ord == 2 else reduction.amin)(s, -1)
    elif ord in (1, -1, math.inf, -math.inf):
        sums = reduction.sum(ew.abs(moved), -2 if abs(ord) == 1 else -1)
        out = (reduction.amax if ord > 0 else reduction.amin)(sums, -1)
    else:
        raise ArgumentError(f"matrix_norm: ord must be 'fro', 'nuc', 1, -1, 2, -2, inf or -inf, got {ord!r}")
    if keepdim:
        for d in sorted((d0, d1)):
            out = out.unsqueeze(d)
    return out


def norm(A: Tensor, ord: Any = None, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A002,N803
    """``torch.linalg.norm``: the 2-norm of all elements by default; with ``ord``, a vector norm of a 1-d
    input (or one ``dim``) and a matrix norm of a 2-d input (or two ``dim``)."""
    if isinstance(dim, int):
        dim = (dim,)
    if ord is None:
        return reduction.vector_norm(A, 2, dim, keepdim, dtype=dtype)
    if dim is not None and len(dim) == 2 or dim is None and A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1) if dim is None else tuple(dim), keepdim, dtype=dtype)
    if dim is None and A.ndim != 1:
        raise ShapeError(f"linalg.norm: with ord and no dim the input must be 1-d or 2-d, got shape {tuple(A.shape)}")
    if isinstance(ord, str):
        raise ArgumentError(f"linalg.norm: ord={ord!r} is a matrix norm; it needs a 2-d input or two dims")
    return reduction.vector_norm(A, ord, dim, keepdim, dtype=dtype)


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """The dot product of vectors along ``dim`` (broadcasting the others)."""
    return reduction.sum(ew.mul(x, y), dim)


def cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:  # noqa: A002
    """The 3-d cross product along ``dim`` (default the last)."""
    return _cross(input, other, dim)


def diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:  # noqa: N803
    """The diagonals of the matrices in the last two dims, as a new last dim."""
    return _diagonal(A, offset, dim1, dim2)


class Solve(Function):
    """``X = A^-1 B``; gB = A^-T gX and gA = -gB X^T."""

    def forward(self, a: Any, b: Any) -> Any:
        xp = get_array_module(a)
        try:
            x = xp.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            raise LinAlgError("linalg.solve: the matrix A is singular; check its rank or regularize it "
                              "(A + eps * I)") from None
        self.a, self.x = a, x
        return x

    def backward(self, gx: Any) -> tuple[Any, Any]:
        xp = get_array_module(gx)
        gb = xp.linalg.solve(xp.swapaxes(self.a, -1, -2), gx)
        ga = -(gb @ xp.swapaxes(self.x, -1, -2)) if self.needs_input_grad[0] else None
        return ga, gb if self.needs_input_grad[1] else None


class SolveEx(Solve):
    """``solve`` that reports singular matrices in ``self.info`` (the 1-based index of U's first zero pivot, as
    LAPACK's getrf) instead of raising; their solution is nan."""

    def __init__(self, check: bool) -> None:
        self.check = check

    def forward(self, a: Any, b: Any) -> Any:
        xp = get_array_module(a)
        try:
            x = xp.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            x = None
        if x is not None and bool(xp.isfinite(x).all()):
            self.info = xp.zeros(a.shape[:-2], dtype=np.int32)
        else:
            self.info = _lu_factor_raw(xp, a, True)[2]
            if self.check and bool(self.info.any()):
                index = int(self.info.reshape(-1).nonzero()[0][0])
                note = f"(Batch element {index}): " if a.ndim > 2 else ""
                raise LinAlgError(f"linalg.solve_ex: {note}The solver failed because the input matrix is singular. "
                                  "Check its rank, or regularize it (A + eps * I)")
            good = self.info == 0
            x = xp.full(b.shape, xp.nan, dtype=b.dtype)
            if bool(good.any()):
                x[good] = xp.linalg.solve(a[good], b[good])
        self.a, self.x = a, x
        return x


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:  # noqa: N803
    """The solution X of ``A X = B`` (``X A = B`` with ``left=False``); ``B`` is a (batch of) vector(s) when it
    is 1-d or shaped like ``A`` without its last dim, as in PyTorch."""
    return _solve(Solve(), A, B, left)


def solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False) -> Any:  # noqa: N803
    """``(result, info)``: ``solve`` without the error check; info (int32, the batch shape) is 0 where A is
    invertible and the index of the first zero pivot of its LU elsewhere (the result is then nan)."""
    fn = SolveEx(check_errors)
    x = _solve(fn, A, B, left)
    return SolveExResult(x, Tensor._make(fn.info))


def _solve(fn: Solve, A: Tensor, B: Tensor, left: bool) -> Tensor:  # noqa: N803
    _square("linalg.solve", A)
    if not left:
        return _solve(fn, A.mT, B.mT, True).mT
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    b = B.unsqueeze(-1) if vector else B
    if b.shape[-2] != A.shape[-1]:
        raise ShapeError(f"linalg.solve: A {tuple(A.shape)} and B {tuple(B.shape)} do not fit (A X = B)")
    a, b = _broadcast_batch(A, b)
    x = fn(a, b)
    return x.squeeze(-1) if vector else x


def _broadcast_batch(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    from hubkit.ops.shape import expand

    batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    a = a if a.shape[:-2] == batch else expand(a, *batch, *a.shape[-2:])
    b = b if b.shape[:-2] == batch else expand(b, *batch, *b.shape[-2:])
    return a, b


def cond(A: Tensor, p: Any = None) -> Tensor:  # noqa: N803
    """The condition number ``||A||_p ||A^-1||_p`` of ``A: (*, m, n)`` -> ``(*)``. ``p`` None/2/-2 uses the singular
    values (any shape: largest / smallest, or its reciprocal for -2); 'fro', 'nuc', 1, -1, inf and -inf need square
    matrices, and a singular one gives inf."""
    op = "linalg.cond"
    _check_matrices(op, A)
    if p is None or p in (2, -2):
        s = svdvals(A)
        ratio = (s[..., 0], s[..., -1])
        return ratio[0] / ratio[1] if p != -2 else ratio[1] / ratio[0]
    if p not in ("fro", "nuc", 1, -1, math.inf, -math.inf):
        raise ArgumentError(f"{op}: p must be None, 'fro', 'nuc', 1, -1, 2, -2, inf or -inf, got {p!r}")
    _square(op, A)
    inverse_a, info = inv_ex(A)
    value = matrix_norm(A, p) * matrix_norm(inverse_a, p)
    singular = info.array > 0
    return ew.where(singular, math.inf, value) if bool(singular.any()) else value


def tensorinv(A: Tensor, ind: int = 2) -> Tensor:  # noqa: N803
    """The inverse of ``tensordot(A, ., ind)``: shape ``A.shape[ind:] + A.shape[:ind]``, for A whose first ``ind``
    dims hold as many elements as the rest."""
    op = "linalg.tensorinv"
    if not isinstance(ind, int) or ind <= 0:
        raise ArgumentError(f"{op}: Expected a strictly positive integer for 'ind', but got {ind!r}")
    outer, inner = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    rows, cols = math.prod(outer), math.prod(inner)
    if rows != cols:
        raise ShapeError(f"{op}: Expected A to satisfy prod(A.shape[ind:]) == prod(A.shape[:ind]), but got "
                         f"{cols} != {rows} for shape {tuple(A.shape)} and ind={ind}")
    return inverse(A.reshape(rows, cols)).reshape(*inner, *outer)


def tensorsolve(A: Tensor, B: Tensor, dims: Any = None) -> Tensor:  # noqa: N803
    """X with ``tensordot(A, X, X.ndim) == B``: shape ``A.shape[B.ndim:]``; ``dims`` are dims of A moved to the end
    first."""
    op = "linalg.tensorsolve"
    if dims is not None:
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        A = movedim(A, dims, tuple(range(A.ndim - len(dims), A.ndim)))  # noqa: N806
    result_shape = tuple(A.shape[B.ndim:])
    rows, cols = math.prod(B.shape), math.prod(result_shape)
    if tuple(A.shape[:B.ndim]) != tuple(B.shape) or rows != cols:
        raise ShapeError(f"{op}: Expected A {tuple(A.shape)} to start with B's shape {tuple(B.shape)} and to hold as "
                         f"many elements after it (prod(A.shape[B.ndim:]) == prod(B.shape)), got {cols} != {rows}")
    return solve(A.reshape(rows, cols), B.reshape(rows)).reshape(*result_shape)


def vander(x: Tensor, *, N: int | None = None) -> Tensor:  # noqa: N803
    """The Vandermonde matrix with increasing powers: ``x: (*, n)`` -> ``(*, n, N)``, column j is ``x ** j``
    (N defaults to n). Integer inputs give integer matrices."""
    from hubkit.ops.shape import stack
    from hubkit.tensor import ones_like

    if x.ndim < 1:
        raise ShapeError(f"linalg.vander: x must have at least 1 dimension, got shape {tuple(x.shape)}")
    count = x.shape[-1] if N is None else N
    if count <= 1:
        raise ArgumentError(f"linalg.vander: N must be greater than 1, got {count}")
    columns = [ones_like(x), x]
    while len(columns) < count:  # repeated products, so x = 0 has a finite gradient
        columns.append(columns[-1] * x)
    return stack(columns, -1)
