"""The LDL^T factorization of symmetric (possibly indefinite) matrices: PyTorch's ``linalg.ldl_factor``,
``ldl_factor_ex`` and ``ldl_solve``, in LAPACK's sytrf layout (lower storage, as PyTorch uses).

``P A P^T = L D L^T`` with Bunch-Kaufman pivoting: D is block diagonal with 1x1 and 2x2 blocks. ``LD`` holds D's
blocks on the diagonal (a 2x2 block's off-diagonal entry just below it) and L's multipliers below; ``pivots`` are
1-based, positive for a 1x1 block (the row swapped with) and negative, repeated on both rows, for a 2x2 block.

Neither numpy nor cupy has sytrf, so it is written here after LAPACK's unblocked dsytf2/dsytrs: each matrix of a
batch takes its own pivot decisions, so the batch is a Python loop, and each step is a vectorized rank-1 or rank-2
update. PyTorch has no derivative for these functions, and neither does hubkit.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import GradError, LinAlgError, ShapeError
from hubkit.ops.decompositions import batch_note, batch_shape, check_matrices, check_same_dtype
from hubkit.tensor import Tensor

LDLFactorResult = namedtuple("linalg_ldl_factor", ["LD", "pivots"])
LDLFactorExResult = namedtuple("linalg_ldl_factor_ex", ["LD", "pivots", "info"])

_ALPHA = (1 + 17 ** 0.5) / 8  # Bunch-Kaufman's threshold, which bounds the growth of the entries


def _swap_symmetric(a: Any, k: int, kk: int, kp: int, kstep: int) -> None:
    """Swap rows and columns kk and kp (kp > kk) of the trailing lower triangle of ``a``, from column k on."""
    if kp + 1 < a.shape[0]:
        a[kp + 1:, [kk, kp]] = a[kp + 1:, [kp, kk]]
    middle = a[kk + 1:kp, kk].copy()
    a[kk + 1:kp, kk] = a[kp, kk + 1:kp]
    a[kp, kk + 1:kp] = middle
    a[[kk, kp], [kk, kp]] = a[[kp, kk], [kp, kk]]
    if kstep == 2:
        a[[k + 1, kp], k] = a[[kp, k + 1], k]


def _sytf2(xp: Any, a: Any) -> tuple[Any, Any, int]:
    """(LD, pivots, info) of one symmetric matrix from its lower triangle (LAPACK's dsytf2, uplo='L')."""
    a = xp.tril(a).copy()
    n = a.shape[0]
    pivots = np.zeros(n, dtype=np.int32)
    info = 0
    k = 0
    while k < n:
        kstep, kp = 1, k
        absakk = abs(float(a[k, k]))
        imax = k + 1 + int(xp.argmax(xp.abs(a[k + 1:, k]))) if k + 1 < n else k
        colmax = abs(float(a[imax, k])) if k + 1 < n else 0.0
        zero_column = max(absakk, colmax) == 0 or np.isnan(absakk)
        if zero_column:
            info = info or k + 1  # D[k, k] = 0 and nothing to eliminate; the factorization goes on
        elif absakk < _ALPHA * colmax:
            # the largest off-diagonal entry of row/column imax decides between a 1x1 and a 2x2 pivot
            rowmax = float(xp.abs(a[imax, k:imax]).max())
            if imax + 1 < n:
                rowmax = max(rowmax, float(xp.abs(a[imax + 1:, imax]).max()))
            if absakk >= _ALPHA * colmax * (colmax / rowmax):
                kp = k
            elif abs(float(a[imax, imax])) >= _ALPHA * rowmax:
                kp = imax
            else:
                kp, kstep = imax, 2
        kk = k + kstep - 1
        if kp != kk:
            _swap_symmetric(a, k, kk, kp, kstep)
        if not zero_column:
            _eliminate(xp, a, k, kstep)
        if kstep == 1:
            pivots[k] = kp + 1
        else:
            pivots[k] = pivots[k + 1] = -(kp + 1)
        k += kstep
    return a, pivots, info


def _eliminate(xp: Any, a: Any, k: int, kstep: int) -> None:
    """Update the trailing lower triangle with the pivot block at k and store L's multipliers."""
    if kstep == 1:
        if k + 1 < a.shape[0]:
            x = a[k + 1:, k].copy()
            d11 = 1 / a[k, k]
            a[k + 1:, k + 1:] -= xp.tril(xp.outer(x, d11 * x))
            a[k + 1:, k] = d11 * x
        return
    if k + 2 < a.shape[0]:
        d21 = a[k + 1, k]
        d11 = a[k + 1, k + 1] / d21
        d22 = a[k, k] / d21
        d21 = 1 / (d11 * d22 - 1) / d21
        c0, c1 = a[k + 2:, k].copy(), a[k + 2:, k + 1].copy()
        wk = d21 * (d11 * c0 - c1)
        wkp1 = d21 * (d22 * c1 - c0)
        a[k + 2:, k + 2:] -= xp.tril(xp.outer(c0, wk) + xp.outer(c1, wkp1))
        a[k + 2:, k] = wk
        a[k + 2:, k + 1] = wkp1


class LDLFactor(Function):
    def forward(self, a: Any) -> tuple[Any, Any, Any]:
        xp = get_array_module(a)
        n = a.shape[-1]
        flat = a.reshape(-1, n, n)
        results = [_sytf2(xp, m) for m in flat]
        ld = xp.stack([r[0] for r in results]) if results else xp.empty(flat.shape, dtype=a.dtype)
        pivots = xp.asarray(np.stack([r[1] for r in results]) if results else np.empty((0, n), np.int32))
        info = xp.asarray(np.array([r[2] for r in results], dtype=np.int32))
        batch = a.shape[:-2]
        return ld.reshape(a.shape), pivots.reshape(batch + (n,)), info.reshape(batch)

    def backward(self, *grads: Any) -> Any:
        raise GradError("the derivative of linalg.ldl_factor is not implemented (nor is it in PyTorch); use "
                        "linalg.solve or linalg.cholesky to differentiate")


def ldl_factor_ex(A: Tensor, *, hermitian: bool = False, check_errors: bool = False) -> Any:  # noqa: N803
    """``(LD, pivots, info)`` of symmetric ``A: (*, n, n)`` (its lower triangle is read): ``LD: (*, n, n)``,
    ``pivots: (*, n)`` and ``info: (*)`` int32, info > 0 naming a zero diagonal entry of D (singular A).
    ``hermitian`` only matters for complex matrices, which hubkit does not have."""
    op = "linalg.ldl_factor_ex"
    check_matrices(op, A, square=True)
    ld, pivots, info = LDLFactor()(A)
    if check_errors and bool(info.array.any()):
        raise LinAlgError(_singular_message(op, info.array))
    return LDLFactorExResult(ld, pivots, info)


def _singular_message(op: str, info: Any) -> str:
    flat = info.reshape(-1)
    index = int(flat.nonzero()[0][0])
    return (f"{op}: {batch_note(index, info.shape)}The factorization could not be completed because the diagonal "
            f"element {int(flat[index])} of D is zero: the matrix is singular")


def ldl_factor(A: Tensor, *, hermitian: bool = False) -> Any:  # noqa: N803
    """``(LD, pivots)`` of symmetric ``A: (*, n, n)``; raises ``LinAlgError`` when A is singular."""
    ld, pivots, info = ldl_factor_ex(A, hermitian=hermitian)
    if bool(info.array.any()):
        raise LinAlgError(_singular_message("linalg.ldl_factor", info.array))
    return LDLFactorResult(ld, pivots)


def _sytrs(xp: Any, ld: Any, pivots: np.ndarray, b: Any) -> Any:
    """X with ``A X = B`` for one matrix from its sytrf factors (LAPACK's dsytrs, uplo='L')."""
    x = b.copy()
    n = ld.shape[0]
    k = 0
    while k < n:  # L D Y = P B, forwards
        if pivots[k] > 0:
            kp = pivots[k] - 1
            if kp != k:
                x[[k, kp]] = x[[kp, k]]
            x[k + 1:] -= xp.outer(ld[k + 1:, k], x[k])
            x[k] /= ld[k, k]
            k += 1
            continue
        kp = -pivots[k] - 1
        if kp != k + 1:
            x[[k + 1, kp]] = x[[kp, k + 1]]
        x[k + 2:] -= xp.outer(ld[k + 2:, k], x[k]) + xp.outer(ld[k + 2:, k + 1], x[k + 1])
        akm1k = ld[k + 1, k]
        akm1, ak = ld[k, k] / akm1k, ld[k + 1, k + 1] / akm1k
        denom = akm1 * ak - 1
        bkm1, bk = x[k] / akm1k, x[k + 1] / akm1k
        x[k], x[k + 1] = (ak * bkm1 - bk) / denom, (akm1 * bk - bkm1) / denom
        k += 2
    k = n - 1
    while k >= 0:  # L^T P^T X = Y, backwards
        if pivots[k] > 0:
            x[k] -= ld[k + 1:, k] @ x[k + 1:]
            kp = pivots[k] - 1
            if kp != k:
                x[[k, kp]] = x[[kp, k]]
            k -= 1
            continue
        x[k] -= ld[k + 1:, k] @ x[k + 1:]
        x[k - 1] -= ld[k + 1:, k - 1] @ x[k + 1:]
        kp = -pivots[k] - 1
        if kp != k:
            x[[k, kp]] = x[[kp, k]]
        k -= 2
    return x


class LDLSolve(Function):
    def forward(self, ld: Any, pivots: Any, b: Any) -> Any:
        xp = get_array_module(ld)
        n = ld.shape[-1]
        batch = tuple(np.broadcast_shapes(ld.shape[:-2], b.shape[:-2]))
        lds = xp.broadcast_to(ld, batch + ld.shape[-2:]).reshape(-1, n, n)
        bs = xp.broadcast_to(b, batch + b.shape[-2:]).reshape((-1,) + b.shape[-2:])
        pivs = np.broadcast_to(np.asarray(pivots.get() if hasattr(pivots, "get") else pivots),
                               batch + (n,)).reshape(-1, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            xs = [_sytrs(xp, lds[i], pivs[i], bs[i]) for i in range(lds.shape[0])]
        out = xp.stack(xs) if xs else xp.empty(bs.shape, dtype=b.dtype)
        return out.reshape(batch + b.shape[-2:])

    def backward(self, gx: Any) -> Any:
        raise GradError("the derivative of linalg.ldl_solve is not implemented (nor is it in PyTorch); use "
                        "linalg.solve to differentiate")


def ldl_solve(LD: Tensor, pivots: Tensor, B: Tensor, *, hermitian: bool = False) -> Tensor:  # noqa: N803
    """X with ``A X = B`` from ``(LD, pivots)`` of ``ldl_factor``: ``LD: (*, n, n)``, ``B: (*, n, k)``, batch dims
    broadcast."""
    op = "linalg.ldl_solve"
    check_matrices(op, LD, square=True, name="LD")
    check_matrices(op, B, name="B")
    check_same_dtype(op, LD, B)
    n = LD.shape[-1]
    piv = pivots.array if isinstance(pivots, Tensor) else pivots
    if getattr(piv, "dtype", np.dtype("f")).kind not in "iu" or tuple(piv.shape) != tuple(LD.shape[:-1]):
        raise ShapeError(f"{op}: pivots must be an integer tensor of shape {tuple(LD.shape[:-1])}, got "
                         f"{getattr(piv, 'dtype', type(piv).__name__)} {tuple(getattr(piv, 'shape', ()))}")
    if B.shape[-2] != n:
        raise ShapeError(f"{op}: LD {tuple(LD.shape)} and B {tuple(B.shape)} do not fit (A X = B)")
    batch_shape(op, LD, B)
    return LDLSolve()(LD, piv, B)
