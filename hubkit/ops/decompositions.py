"""Triangular solves and the Cholesky and LU factorizations, with the solves built on them: PyTorch's
``linalg.solve_triangular``, ``linalg.cholesky``/``cholesky_ex``, ``linalg.inv_ex``, ``linalg.lu_factor``/
``lu_factor_ex``/``lu``/``lu_solve`` and the top-level ``triangular_solve``, ``cholesky_solve``,
``cholesky_inverse``, ``lu``, ``lu_solve`` and ``lu_unpack``. QR and Householder products are in
``hubkit.ops.householder``, SVD and eigendecompositions in ``hubkit.ops.spectral``.

numpy and cupy have Cholesky and the inverse as LAPACK/cuSOLVER calls, and those are used. Neither has a
triangular solve or an LU with its pivots, so both are written here on ``xp``: a blocked substitution whose
bulk is matrix products, and an LU with partial pivoting that eliminates one column of a whole batch per
step. The same code runs on numpy and cupy.

Every op takes real float32/float64 matrices with any leading batch dims; pivots and info are int32, as
LAPACK returns them and PyTorch passes them on.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentTypeError, DTypeError, LinAlgError, ShapeError
from hubkit.ops.linalg import Inverse, _mT, _product
from hubkit.ops.matrix import tril, triu
from hubkit.tensor import Tensor

CholeskyExResult = namedtuple("linalg_cholesky_ex", ["L", "info"])
InvExResult = namedtuple("linalg_inv_ex", ["inverse", "info"])
LUFactorResult = namedtuple("linalg_lu_factor", ["LU", "pivots"])
LUFactorExResult = namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
LUResult = namedtuple("linalg_lu", ["P", "L", "U"])
LUUnpackResult = namedtuple("lu_unpack", ["P", "L", "U"])
TriangularSolveResult = namedtuple("triangular_solve", ["solution", "cloned_coefficient"])


# ---------------------------------------------------------------- argument checks shared by the linalg ops


def check_matrices(op: str, A: Any, *, square: bool = False, name: str = "A") -> None:  # noqa: N803
    """Raise unless ``A`` is a (batch of) real float32/float64 matri(x/ces), square when asked."""
    if not isinstance(A, Tensor):
        raise ArgumentTypeError(f"{op}: {name} must be a Tensor, got {type(A).__name__}; wrap it with hubkit.tensor()")
    if A.ndim < 2:
        raise ShapeError(f"{op}: {name} must have at least 2 dimensions (*, m, n), got shape {tuple(A.shape)}")
    if square and A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"{op}: {name} must be batches of square matrices, but they are {A.shape[-2]} by "
                         f"{A.shape[-1]} matrices")
    if A.dtype not in (np.float32, np.float64):
        raise DTypeError(f"{op}: expected a float32 or float64 tensor, got {A.dtype}; convert it with .float() or "
                         ".double() (hubkit's linear algebra works on real floating-point matrices)")


def check_same_dtype(op: str, A: Tensor, B: Tensor) -> None:  # noqa: N803
    if A.dtype != B.dtype:
        raise DTypeError(f"{op}: expected both inputs to have the same dtype, got {A.dtype} and {B.dtype}; "
                         "convert one with .to()")


def batch_shape(op: str, *tensors: Tensor) -> tuple[int, ...]:
    """The broadcast of the batch dims (all but the last two) of ``tensors``."""
    try:
        return tuple(np.broadcast_shapes(*(t.shape[:-2] for t in tensors)))
    except ValueError:
        shapes = " and ".join(str(tuple(t.shape)) for t in tensors)
        raise ShapeError(f"{op}: the batch dims of {shapes} cannot be broadcast together") from None


def broadcast_batch(xp: Any, *arrays: Any) -> list[Any]:
    """Raw arrays broadcast to one batch shape (their last two dims kept); autograd sums gradients back."""
    batch = tuple(np.broadcast_shapes(*(a.shape[:-2] for a in arrays)))
    return [a if a.shape[:-2] == batch else xp.broadcast_to(a, batch + a.shape[-2:]) for a in arrays]


def batch_note(index: int, batch: tuple[int, ...]) -> str:
    """PyTorch's prefix naming the failing matrix of a batch (its flat index)."""
    return f"(Batch element {index}): " if batch else ""


def _first_failure(info: Any) -> tuple[int, int]:
    """(flat index, code) of the first non-zero entry of an info array."""
    flat = info.reshape(-1)
    index = int(flat.nonzero()[0][0])
    return index, int(flat[index])


# ---------------------------------------------------------------- triangular solves

# The block width of the triangular solves and of LU's panels: inside a block, rows (columns) are eliminated one
# at a time; across blocks the work is one matrix product per block, so the flops are in products and the Python
# loop takes n small steps.
_BLOCK = 32


def trsm(t: Any, b: Any, *, lower: bool, unit: bool = False) -> Any:
    """X with ``T X = B``: ``t: (*, n, n)`` triangular (only its lower or upper triangle is read, and not its
    diagonal when ``unit``), ``b: (*, n, k)`` with the same batch dims -> ``(*, n, k)``. A zero on the diagonal
    gives inf/nan, as LAPACK's trsm does."""
    x = b.astype(np.result_type(t.dtype, b.dtype), copy=True)
    n = t.shape[-1]
    starts = list(range(0, n, _BLOCK))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for j0 in starts if lower else reversed(starts):
            j1 = min(j0 + _BLOCK, n)
            if lower and j0:
                x[..., j0:j1, :] -= _product(t[..., j0:j1, :j0], x[..., :j0, :])
            elif not lower and j1 < n:
                x[..., j0:j1, :] -= _product(t[..., j0:j1, j1:], x[..., j1:, :])
            for j in range(j0, j1) if lower else range(j1 - 1, j0 - 1, -1):
                lo, hi = (j0, j) if lower else (j + 1, j1)
                if hi > lo:
                    x[..., j, :] -= (t[..., j, None, lo:hi] @ x[..., lo:hi, :])[..., 0, :]
                if not unit:
                    x[..., j, :] /= t[..., j, j, None]
    return x


class SolveTriangular(Function):
    """``X = T^-1 B`` for a triangular ``T``; gB = T^-T gX and gT = -gB X^T on T's triangle (the part read)."""

    def __init__(self, upper: bool, unitriangular: bool) -> None:
        self.upper, self.unit = upper, unitriangular

    def forward(self, t: Any, b: Any) -> Any:
        t, b = broadcast_batch(get_array_module(t), t, b)
        x = trsm(t, b, lower=not self.upper, unit=self.unit)
        self.t = t
        self.x = x if self.needs_input_grad[0] else None
        return x

    def backward(self, gx: Any) -> tuple[Any, Any]:
        xp = get_array_module(gx)
        gb = trsm(_mT(self.t), gx, lower=self.upper, unit=self.unit)
        gt = None
        if self.needs_input_grad[0]:
            gt = -(gb @ _mT(self.x))
            shift = 1 if self.unit else 0
            gt = xp.triu(gt, shift) if self.upper else xp.tril(gt, -shift)
        return gt, gb if self.needs_input_grad[1] else None


def solve_triangular(A: Tensor, B: Tensor, *, upper: bool, left: bool = True,  # noqa: N803
                     unitriangular: bool = False) -> Tensor:
    """X with ``A X = B`` (``X A = B`` when ``left=False``) for triangular ``A: (*, n, n)``, ``B: (*, n, k)``
    (``(*, k, n)`` when ``left=False``); batch dims broadcast. Only the ``upper`` or lower triangle of A is read
    (without its diagonal when ``unitriangular``)."""
    op = "linalg.solve_triangular"
    check_matrices(op, A, square=True)
    check_matrices(op, B, name="B")
    check_same_dtype(op, A, B)
    if not left:
        return solve_triangular(A.mT, B.mT, upper=not upper, unitriangular=unitriangular).mT
    if B.shape[-2] != A.shape[-1]:
        raise ShapeError(f"{op}: incompatible shapes of A and B for the equation AX = B "
                         f"({A.shape[-2]}x{A.shape[-1]} and {B.shape[-2]}x{B.shape[-1]})")
    batch_shape(op, A, B)
    return SolveTriangular(bool(upper), bool(unitriangular))(A, B)


def triangular_solve(b: Tensor, A: Tensor, upper: bool = True, transpose: bool = False,  # noqa: N803
                     unitriangular: bool = False) -> Any:
    """The deprecated ``torch.triangular_solve``: X with ``op(A) X = b`` (op is the transpose when
    ``transpose``), as ``(solution, cloned_coefficient)``; ``A: (*, m, m)``, ``b: (*, m, k)``."""
    X = solve_triangular(A.mT if transpose else A, b, upper=upper != transpose, unitriangular=unitriangular)
    return TriangularSolveResult(X, A.clone())


# ---------------------------------------------------------------- Cholesky


def _cholesky_with_info(xp: Any, a: Any) -> tuple[Any, Any]:
    """(L, info) by right-looking elimination of one column per step for the whole batch. The slow path, run
    only when the LAPACK call failed: it finds for every matrix the order of the first leading minor that is
    not positive-definite (info, 0 where the factorization succeeded), as PyTorch's ``cholesky_ex`` reports."""
    n = a.shape[-1]
    w = xp.tril(a).reshape(-1, n, n).copy()
    info = xp.zeros(w.shape[0], dtype=np.int32)
    alive = xp.ones(w.shape[0], dtype=bool)
    for j in range(n):
        d = w[:, j, j]
        failed = alive & ~(d > 0)  # also catches nan
        info[failed] = j + 1
        alive &= ~failed
        root = xp.sqrt(xp.where(alive, d, 1))
        col = w[:, j + 1:, j] / root[:, None]
        w[:, j + 1:, j] = xp.where(alive[:, None], col, w[:, j + 1:, j])
        w[:, j, j] = xp.where(alive, root, d)
        w[:, j + 1:, j + 1:] -= xp.where(alive[:, None, None], col[:, :, None] * col[:, None, :], 0)
    return xp.tril(w).reshape(a.shape), info.reshape(a.shape[:-2])


def cholesky_factor(xp: Any, a: Any) -> tuple[Any, Any]:
    """(L, info) of every matrix in ``a``: LAPACK's (cuSOLVER's) factor, and the slow path for the info when
    any matrix is not positive-definite (numpy raises then; cupy returns nan instead)."""
    try:
        factor = xp.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        factor = None
    if factor is not None and bool(xp.isfinite(factor).all()):
        return factor, xp.zeros(a.shape[:-2], dtype=np.int32)
    return _cholesky_with_info(xp, a)


def _cholesky_message(op: str, info: Any, batch: tuple[int, ...]) -> str:
    index, order = _first_failure(info)
    return (f"{op}: {batch_note(index, batch)}The factorization could not be completed because the input is not "
            f"positive-definite (the leading minor of order {order} is not positive-definite). Check that the "
            "matrix is symmetric positive-definite, or add a multiple of the identity (A + eps * I)")


class Cholesky(Function):
    """L with ``A = L L^T`` from A's lower triangle. gA = sym(L^-T Phi(L^T gL) L^-1), Phi = the lower triangle with
    its diagonal halved; symmetrized as PyTorch does, since A is taken to be symmetric."""

    def __init__(self, op: str, check: bool) -> None:
        self.op, self.check = op, check

    def forward(self, a: Any) -> tuple[Any, Any]:
        factor, info = cholesky_factor(get_array_module(a), a)
        if self.check and bool(info.any()):
            raise LinAlgError(_cholesky_message(self.op, info, a.shape[:-2]))
        self.factor = factor
        return factor, info

    def backward(self, gl: Any, _ginfo: Any) -> Any:
        xp = get_array_module(gl)
        factor = self.factor
        phi = xp.tril(_mT(factor) @ gl)
        diag = xp.arange(phi.shape[-1])
        phi[..., diag, diag] *= 0.5
        upper = _mT(factor)
        z = trsm(upper, phi, lower=False)  # L^-T Phi
        ga = _mT(trsm(upper, _mT(z), lower=False))  # Z L^-1
        return 0.5 * (ga + _mT(ga))


def cholesky(input: Tensor, upper: bool = False) -> Tensor:  # noqa: A002
    """L with ``A = L L^T`` for symmetric positive-definite ``A: (*, n, n)`` (only its lower triangle is read);
    ``upper=True`` returns ``L^T``. Raises ``LinAlgError`` naming the first leading minor that is not
    positive-definite."""
    check_matrices("linalg.cholesky", input, square=True)
    factor = Cholesky("linalg.cholesky", True)(input)[0]
    return factor.mT if upper else factor


def cholesky_ex(A: Tensor, *, upper: bool = False, check_errors: bool = False) -> Any:  # noqa: N803
    """``(L, info)``: the Cholesky factor without the error check; ``info: (*)`` int32 is 0 where it succeeded
    and the order of the first leading minor that is not positive-definite elsewhere (L is then not valid)."""
    check_matrices("linalg.cholesky_ex", A, square=True)
    factor, info = Cholesky("linalg.cholesky_ex", check_errors)(A)
    return CholeskyExResult(factor.mT if upper else factor, info)


def _lower_factor(factor: Any, upper: bool) -> Any:
    """The lower-triangular L with A = L L^T, from L itself or from U with A = U^T U."""
    return _mT(factor) if upper else factor


class CholeskySolve(Function):
    """``X = (L L^T)^-1 B``. gB = (L L^T)^-1 gX; gL = -(gB X^T + X gB^T) L (U (...) for an upper factor): PyTorch's
    formula, which treats the whole factor as A's (not only its triangle)."""

    def __init__(self, upper: bool) -> None:
        self.upper = upper

    def forward(self, b: Any, factor: Any) -> Any:
        b, factor = broadcast_batch(get_array_module(b), b, factor)
        low = _lower_factor(factor, self.upper)
        x = trsm(_mT(low), trsm(low, b, lower=True), lower=False)
        self.factor, self.x = factor, x
        return x

    def backward(self, gx: Any) -> tuple[Any, Any]:
        low = _lower_factor(self.factor, self.upper)
        gb = trsm(_mT(low), trsm(low, gx, lower=True), lower=False)
        gf = None
        if self.needs_input_grad[1]:
            common = gb @ _mT(self.x)
            common = common + _mT(common)
            gf = -(self.factor @ common) if self.upper else -(common @ self.factor)
        return gb if self.needs_input_grad[0] else None, gf


def cholesky_solve(B: Tensor, L: Tensor, upper: bool = False) -> Tensor:  # noqa: N803
    """X with ``A X = B`` given the Cholesky factor of A (``A = L L^T``, or ``A = U^T U`` when ``upper``):
    ``B: (*, n, k)``, ``L: (*, n, n)``, batch dims broadcast."""
    op = "cholesky_solve"
    check_matrices(op, L, square=True, name="L")
    check_matrices(op, B, name="B")
    check_same_dtype(op, B, L)
    if B.shape[-2] != L.shape[-1]:
        raise ShapeError(f"{op}: B {tuple(B.shape)} and L {tuple(L.shape)} do not fit (A X = B with A = L L^T)")
    batch_shape(op, B, L)
    return CholeskySolve(bool(upper))(B, L)


class CholeskyInverse(Function):
    """``Y = (L L^T)^-1``; gL = -(Y (gY + gY^T) Y) L (U (...) for an upper factor), PyTorch's formula."""

    def __init__(self, upper: bool) -> None:
        self.upper = upper

    def forward(self, factor: Any) -> Any:
        xp = get_array_module(factor)
        low = _lower_factor(factor, self.upper)
        eye = xp.broadcast_to(xp.eye(factor.shape[-1], dtype=factor.dtype), factor.shape)
        y = trsm(_mT(low), trsm(low, eye, lower=True), lower=False)
        self.factor, self.y = factor, y
        return y

    def backward(self, gy: Any) -> Any:
        common = self.y @ (gy + _mT(gy)) @ self.y
        return -(self.factor @ common) if self.upper else -(common @ self.factor)


def cholesky_inverse(L: Tensor, upper: bool = False) -> Tensor:  # noqa: N803
    """``A^-1`` from the Cholesky factor of A (``A = L L^T``, or ``A = U^T U`` when ``upper``): ``(*, n, n)``."""
    check_matrices("cholesky_inverse", L, square=True, name="L")
    return CholeskyInverse(bool(upper))(L)


# ---------------------------------------------------------------- inverse with info


class InverseEx(Inverse):
    """``inv`` that reports singular matrices in ``info`` (the 1-based index of U's first zero pivot, as LAPACK's
    getrf) instead of raising; their inverse is nan (LAPACK leaves garbage there)."""

    def __init__(self, check: bool) -> None:
        self.check = check

    def forward(self, a: Any) -> tuple[Any, Any]:
        xp = get_array_module(a)
        try:
            y = xp.linalg.inv(a)
        except np.linalg.LinAlgError:
            y = None
        if y is not None and bool(xp.isfinite(y).all()):
            info = xp.zeros(a.shape[:-2], dtype=np.int32)
        else:
            info = lu_factor_raw(xp, a, True)[2]
            if self.check and bool(info.any()):
                index, order = _first_failure(info)
                raise LinAlgError(f"linalg.inv_ex: {batch_note(index, a.shape[:-2])}The diagonal element {order} "
                                  "is zero, the inversion could not be completed because the input matrix is "
                                  "singular. Check its rank, or regularize it (A + eps * I)")
            good = info == 0
            y = xp.full(a.shape, xp.nan, dtype=a.dtype)
            if bool(good.any()):
                y[good] = xp.linalg.inv(a[good])
        self.y = y
        return y, info

    def backward(self, gy: Any, _ginfo: Any) -> Any:
        return super().backward(gy)


def inv_ex(A: Tensor, *, check_errors: bool = False) -> Any:  # noqa: N803
    """``(inverse, info)`` of square matrices ``(*, n, n)``; info (int32, ``(*)``) is 0 for invertible matrices and
    the index of the first zero pivot of their LU otherwise (their inverse is then nan)."""
    check_matrices("linalg.inv_ex", A, square=True)
    return InvExResult(*InverseEx(check_errors)(A))


# ---------------------------------------------------------------- LU


def _lu_panel(xp: Any, panel: Any, pivot: bool) -> tuple[Any, Any]:
    """Unblocked LU of ``panel: (B, m, w)`` (m >= w) in place, one column of the whole batch per step; returns the
    panel's 1-based row swaps ``(B, w)`` and the 1-based index of its first zero pivot ``(B,)`` (0 if none)."""
    count, _, w = panel.shape
    rows = xp.arange(count)
    pivots = xp.empty((count, w), dtype=np.int32)
    info = xp.zeros(count, dtype=np.int32)
    for j in range(w):
        if pivot:
            p = j + xp.argmax(xp.abs(panel[:, j:, j]), axis=1)
            top = panel[:, j, :].copy()
            panel[:, j, :] = panel[rows, p, :]
            panel[rows, p, :] = top
            pivots[:, j] = p + 1
        else:
            pivots[:, j] = j + 1
        d = panel[:, j, j]
        zero = d == 0
        info = xp.where((info == 0) & zero, j + 1, info).astype(np.int32)
        panel[:, j + 1:, j] /= xp.where(zero, 1, d)[:, None]
        panel[:, j + 1:, j + 1:] -= panel[:, j + 1:, j, None] * panel[:, j, None, j + 1:]
    return pivots, info


def lu_factor_raw(xp: Any, a: Any, pivot: bool) -> tuple[Any, Any, Any]:
    """LAPACK getrf's ``(LU, pivots, info)`` of every matrix in ``a: (*, m, n)``: L (unit diagonal, not stored)
    below the diagonal and U on and above it; 1-based row swaps ``pivots: (*, min(m, n))``; info the 1-based
    index of U's first zero pivot (0 if none). Partial pivoting takes the first row of largest magnitude, as
    LAPACK's idamax; a zero pivot column is left as it is.

    Right-looking and blocked like getrf: each panel of 32 columns is factored column by column, its row swaps
    are applied to the rest of the rows at once, and the trailing matrix is updated with one triangular solve and
    one matrix product (at n = 512 this is 5x faster than eliminating every column across the whole matrix)."""
    m, n = a.shape[-2:]
    k = min(m, n)
    lu = a.reshape(-1, m, n).copy()
    count = lu.shape[0]
    pivots = xp.empty((count, k), dtype=np.int32)
    info = xp.zeros(count, dtype=np.int32)
    for j0 in range(0, k, _BLOCK):
        j1 = min(j0 + _BLOCK, k)
        local_pivots, local_info = _lu_panel(xp, lu[:, j0:, j0:j1], pivot)
        pivots[:, j0:j1] = local_pivots + j0
        info = xp.where((info == 0) & (local_info > 0), local_info + j0, info).astype(np.int32)
        order = row_permutation(xp, local_pivots, m - j0)[:, :, None]
        if j0:
            lu[:, j0:, :j0] = xp.take_along_axis(lu[:, j0:, :j0], order, axis=1)
        if j1 < n:
            lu[:, j0:, j1:] = xp.take_along_axis(lu[:, j0:, j1:], order, axis=1)
            lu[:, j0:j1, j1:] = trsm(lu[:, j0:j1, j0:j1], lu[:, j0:j1, j1:], lower=True, unit=True)
            if j1 < m:
                lu[:, j1:, j1:] -= _product(lu[:, j1:, j0:j1], lu[:, j0:j1, j1:])
    batch = a.shape[:-2]
    return lu.reshape(a.shape), pivots.reshape(batch + (k,)), info.reshape(batch)


def row_permutation(xp: Any, pivots: Any, m: int) -> Any:
    """``perm: (*, m)`` with ``(P^T A)[i] = A[perm[i]]`` for LAPACK's 1-based row swaps ``pivots: (*, k)``."""
    batch = pivots.shape[:-1]
    swaps = pivots.reshape(-1, pivots.shape[-1]).astype(np.int64) - 1
    perm = xp.broadcast_to(xp.arange(m), (swaps.shape[0], m)).copy()
    rows = xp.arange(swaps.shape[0])
    for i in range(swaps.shape[1]):
        j = swaps[:, i]
        current = perm[:, i].copy()
        perm[:, i] = perm[rows, j]
        perm[rows, j] = current
    return perm.reshape(batch + (m,))


def _lu_backward(xp: Any, lu: Any, perm: Any, glu: Any) -> Any:
    """gA of ``P^T A = L U`` from the gradient of the packed factor, for square, wide and tall matrices.

    With L1, U1 the leading k x k blocks, U2 = U's columns past k (wide A) and L2 = L's rows past k (tall A):
    M = tril(L1^T gL1 - gU2 U2^T, -1) + triu(gU1 U1^T - L2^T gL2); the gradient of P^T A is
    [[L1^-T M U1^-T, L1^-T gU2], [gL2 U1^-T]]. (From dL1 = L1 tril(X, -1), dU1 = triu(X) U1 with
    X = L1^-1 d(P^T A)_11 U1^-1, and the two off-diagonal blocks solved for dU2 and dL2.)
    """
    m, n = lu.shape[-2:]
    k = min(m, n)
    l1 = lu[..., :k, :k]  # its strict lower triangle is L1's (unit diagonal)
    u1 = xp.triu(lu[..., :k, :k])
    gl1, gu1 = xp.tril(glu[..., :k, :k], -1), xp.triu(glu[..., :k, :k])
    lower = gl1 + _mT(xp.tril(l1, -1)) @ gl1  # L1^T gL1, L1 with its unit diagonal
    upper = gu1 @ _mT(u1)
    if n > k:
        gu2, u2 = glu[..., :k, k:], lu[..., :k, k:]
        lower = lower - gu2 @ _mT(u2)
    if m > k:
        gl2, l2 = glu[..., k:, :k], lu[..., k:, :k]
        upper = upper - _mT(l2) @ gl2
    middle = xp.tril(lower, -1) + xp.triu(upper)
    g11 = _mT(trsm(u1, _mT(trsm(_mT(l1), middle, lower=False, unit=True)), lower=False))
    if n > k:
        g = xp.concatenate([g11, trsm(_mT(l1), gu2, lower=False, unit=True)], axis=-1)
    elif m > k:
        g = xp.concatenate([g11, _mT(trsm(u1, _mT(gl2), lower=False))], axis=-2)
    else:
        g = g11
    # row i of the gradient of P^T A belongs to row perm[i] of A
    inverse = xp.argsort(perm, axis=-1)
    return xp.take_along_axis(g, xp.broadcast_to(inverse[..., :, None], g.shape), axis=-2)


class LUFactor(Function):
    """``(LU, pivots, info)`` of A (LAPACK's getrf layout); the gradient flows through the packed LU only."""

    def __init__(self, pivot: bool) -> None:
        self.pivot = pivot

    def forward(self, a: Any) -> tuple[Any, Any, Any]:
        lu, pivots, info = lu_factor_raw(get_array_module(a), a, self.pivot)
        self.lu, self.pivots = lu, pivots
        return lu, pivots, info

    def backward(self, glu: Any, _gpivots: Any, _ginfo: Any) -> Any:
        xp = get_array_module(glu)
        return _lu_backward(xp, self.lu, row_permutation(xp, self.pivots, self.lu.shape[-2]), glu)


def lu_factor_ex(A: Tensor, *, pivot: bool = True, check_errors: bool = False) -> Any:  # noqa: N803
    """``(LU, pivots, info)``: LU with partial pivoting of ``A: (*, m, n)`` (``pivot=False``: none, on every
    device); ``pivots: (*, min(m, n))`` and ``info: (*)`` int32, info > 0 where U has a zero pivot."""
    op = "linalg.lu_factor_ex"
    check_matrices(op, A)
    lu, pivots, info = LUFactor(bool(pivot))(A)
    if check_errors and bool(info.array.any()):
        raise LinAlgError(_lu_message(op, info.array))
    return LUFactorExResult(lu, pivots, info)


def _lu_message(op: str, info: Any) -> str:
    index, order = _first_failure(info)
    return (f"{op}: {batch_note(index, info.shape)}U[{order},{order}] is zero and using it on lu_solve would result "
            "in a division by zero. If you still want to perform the factorization, consider calling "
            "linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")


def lu_factor(A: Tensor, *, pivot: bool = True) -> Any:  # noqa: N803
    """``(LU, pivots)`` of ``A: (*, m, n)``; raises ``LinAlgError`` when a matrix is singular (U has a zero)."""
    lu, pivots, info = lu_factor_ex(A, pivot=pivot)
    if bool(info.array.any()):
        raise LinAlgError(_lu_message("linalg.lu_factor", info.array))
    return LUFactorResult(lu, pivots)


def lu(A: Tensor, pivot: bool = True, get_infos: bool = False) -> Any:  # noqa: N803
    """The deprecated ``torch.lu``: ``(LU, pivots)``, or ``(LU, pivots, infos)`` with ``get_infos=True``; like
    PyTorch's, it does not raise for a singular matrix."""
    result = lu_factor_ex(A, pivot=pivot)
    return result if get_infos else (result.LU, result.pivots)


def _empty_like(t: Tensor) -> Tensor:
    return Tensor._make(t._xp.empty((0,), dtype=t.dtype))


def lu_unpack(LU_data: Tensor, LU_pivots: Tensor, unpack_data: bool = True,  # noqa: N803
              unpack_pivots: bool = True) -> Any:
    """``(P, L, U)`` from a packed LU ``(*, m, n)`` and its pivots: ``P: (*, m, m)``, ``L: (*, m, k)`` (unit
    diagonal), ``U: (*, k, n)`` with ``A = P L U``; a part not asked for is an empty tensor."""
    check_matrices("lu_unpack", LU_data, name="LU_data")
    m, n = LU_data.shape[-2:]
    k = min(m, n)
    xp = LU_data._xp
    if unpack_data:
        eye = Tensor._make(xp.eye(m, k, dtype=LU_data.dtype))
        L = tril(LU_data, -1)[..., :, :k] + eye  # noqa: N806
        U = triu(LU_data)[..., :k, :]  # noqa: N806
    else:
        L = U = _empty_like(LU_data)  # noqa: N806
    if unpack_pivots:
        pivots = xp.asarray(LU_pivots.array if isinstance(LU_pivots, Tensor) else LU_pivots)
        if pivots.dtype.kind not in "iu" or pivots.shape != LU_data.shape[:-2] + (k,):
            raise ShapeError(f"lu_unpack: LU_pivots must be an integer tensor of shape "
                             f"{LU_data.shape[:-2] + (k,)}, got {pivots.dtype} {tuple(pivots.shape)}")
        perm = row_permutation(xp, pivots, m)
        P = Tensor._make(xp.ascontiguousarray(_mT(xp.eye(m, dtype=LU_data.dtype)[perm])))  # noqa: N806
        # (column i of P is e_perm[i])
    else:
        P = _empty_like(LU_data)  # noqa: N806
    return LUUnpackResult(P, L, U)


def linalg_lu(A: Tensor, *, pivot: bool = True) -> Any:  # noqa: N803
    """``(P, L, U)`` with ``A = P L U`` for ``A: (*, m, n)``: ``P: (*, m, m)``, ``L: (*, m, k)`` unit lower,
    ``U: (*, k, n)`` upper, k = min(m, n). Singular matrices do not raise. With ``pivot=False`` P is empty."""
    lu_data, pivots, _ = lu_factor_ex(A, pivot=pivot)
    P, L, U = lu_unpack(lu_data, pivots, unpack_pivots=pivot)  # noqa: N806
    return LUResult(P, L, U)


def _permute_rows(B: Tensor, perm: Any) -> Tensor:  # noqa: N803
    """``B[..., perm[i], :]`` as row i (batch dims of B and perm broadcast); differentiable."""
    from hubkit.ops.indexing import take_along_dim

    index = perm[..., :, None]
    if index.ndim < B.ndim:
        index = index.reshape((1,) * (B.ndim - index.ndim) + index.shape)
    elif index.ndim > B.ndim:
        B = B.reshape(*((1,) * (index.ndim - B.ndim)), *B.shape)  # noqa: N806
    return take_along_dim(B, Tensor._make(index), -2)


def lu_solve(LU: Tensor, pivots: Tensor, B: Tensor, *, left: bool = True, adjoint: bool = False) -> Tensor:  # noqa: N803
    """X with ``A X = B`` given ``(LU, pivots)`` of A from ``lu_factor``: ``LU: (*, n, n)``, ``B: (*, n, k)``;
    ``adjoint`` solves ``A^T X = B`` and ``left=False`` the systems ``X A = B`` / ``X A^T = B``."""
    op = "linalg.lu_solve"
    check_matrices(op, LU, square=True, name="LU")
    check_matrices(op, B, name="B")
    check_same_dtype(op, LU, B)
    if not left:
        return lu_solve(LU, pivots, B.mT, adjoint=not adjoint).mT
    n = LU.shape[-1]
    if B.shape[-2] != n:
        raise ShapeError(f"{op}: LU {tuple(LU.shape)} and B {tuple(B.shape)} do not fit (A X = B)")
    xp = LU._xp
    piv = xp.asarray(pivots.array if isinstance(pivots, Tensor) else pivots)
    if piv.dtype.kind not in "iu" or piv.shape[-1:] != (n,):
        raise ShapeError(f"{op}: pivots must be an integer tensor of shape (*, {n}), got {piv.dtype} "
                         f"{tuple(piv.shape)}")
    batch_shape(op, LU, B)
    perm = row_permutation(xp, piv, n)
    if not adjoint:  # A = P L U: X = U^-1 L^-1 P^T B
        y = solve_triangular(LU, _permute_rows(B, perm), upper=False, unitriangular=True)
        return solve_triangular(LU, y, upper=True)
    # A^T = U^T L^T P^T: X = P L^-T U^-T B
    y = solve_triangular(LU.mT, B, upper=False)
    z = solve_triangular(LU.mT, y, upper=True, unitriangular=True)
    return _permute_rows(z, xp.argsort(perm, axis=-1))


def lu_solve_deprecated(b: Tensor, LU_data: Tensor, LU_pivots: Tensor) -> Tensor:  # noqa: N803
    """The deprecated ``torch.lu_solve(b, LU_data, LU_pivots)``: ``linalg.lu_solve(LU_data, LU_pivots, b)``."""
    return lu_solve(LU_data, LU_pivots, b)
