"""``hubkit.linalg``: PyTorch's ``torch.linalg`` functions that training code reaches for (norms, det,
inverse, solve, singular values, products), on the differentiable ops of ``hubkit.ops``.

Names ``torch.linalg`` has and this module does not raise ``UnsupportedError`` saying so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, LinAlgError, ShapeError
from hubkit.ops import elementwise as ew
from hubkit.ops import reduction
from hubkit.ops.linalg import _square, det, inverse, matmul, matrix_power, multi_dot, slogdet  # noqa: F401
from hubkit.ops.matrix import cross as _cross
from hubkit.ops.matrix import diagonal as _diagonal
from hubkit.ops.rearrange import movedim
from hubkit.ops.unsupported import unsupported_error
from hubkit.tensor import Tensor

inv = inverse

# torch.linalg names this module does not provide (from dir(torch.linalg) of PyTorch 2.x)
UNSUPPORTED = frozenset({
    "cholesky", "cholesky_ex", "cond", "eig", "eigh", "eigvals", "eigvalsh", "householder_product", "inv_ex",
    "ldl_factor", "ldl_factor_ex", "ldl_solve", "lstsq", "lu", "lu_factor", "lu_factor_ex", "lu_solve",
    "matrix_exp", "matrix_rank", "matrix_sqrth", "pinv", "polar", "qr", "solve_ex", "solve_triangular", "svd",
    "tensorinv", "tensorsolve", "vander",
})


def __getattr__(name: str) -> Any:
    if name in UNSUPPORTED:
        raise unsupported_error(f"torch.linalg.{name}")
    raise AttributeError(f"module 'hubkit.linalg' has no attribute {name!r}")


def vector_norm(x: Tensor, ord: float = 2, dim: Any = None, keepdim: bool = False, *,  # noqa: A002
                dtype: Any = None) -> Tensor:
    """The vector ``ord``-norm over ``dim`` (all elements when None); ord may be inf, -inf or 0."""
    return reduction.vector_norm(x, ord, dim, keepdim, dtype=dtype)


class SingularValues(Function):
    """The singular values of each matrix, largest first; d s_i = u_i^T dA v_i (distinct values assumed)."""

    def forward(self, a: Any) -> Any:
        u, s, vt = get_array_module(a).linalg.svd(a, full_matrices=False)
        self.u, self.vt = u, vt
        return s

    def backward(self, gs: Any) -> Any:
        return (self.u * gs[..., None, :]) @ self.vt


def svdvals(A: Tensor) -> Tensor:  # noqa: N803
    """The singular values of the matrices ``A: (*, m, n)`` -> ``(*, min(m, n))``, in descending order."""
    if A.ndim < 2:
        raise ShapeError(f"svdvals: expects matrices (*, m, n), got shape {tuple(A.shape)}")
    return SingularValues()(A)


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


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:  # noqa: N803
    """The solution X of ``A X = B`` (``X A = B`` with ``left=False``); ``B`` is a (batch of) vector(s) when it
    is 1-d or shaped like ``A`` without its last dim, as in PyTorch."""
    _square("linalg.solve", A)
    if not left:
        return solve(A.mT, B.mT).mT
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    b = B.unsqueeze(-1) if vector else B
    if b.shape[-2] != A.shape[-1]:
        raise ShapeError(f"linalg.solve: A {tuple(A.shape)} and B {tuple(B.shape)} do not fit (A X = B)")
    a, b = _broadcast_batch(A, b)
    x = Solve()(a, b)
    return x.squeeze(-1) if vector else x


def _broadcast_batch(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    from hubkit.ops.shape import expand

    batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    a = a if a.shape[:-2] == batch else expand(a, *batch, *a.shape[-2:])
    b = b if b.shape[:-2] == batch else expand(b, *batch, *b.shape[-2:])
    return a, b
