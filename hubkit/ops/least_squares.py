"""The pseudoinverse and what thresholds singular values: PyTorch's ``linalg.pinv`` (and the top-level
``pinverse``), ``linalg.lstsq`` and ``linalg.matrix_rank``.

Everything is computed from one SVD (or symmetric eigendecomposition with ``hermitian=True``), dropping the
singular values at or below ``max(atol, rtol * largest)``. The gradients of ``pinv`` and of ``lstsq``'s
solution use the closed form of the pseudoinverse's derivative at constant rank (Golub and Pereyra, 1973), which
is also PyTorch's: it does not divide by gaps between singular values, so repeated ones are fine.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, ShapeError
from hubkit.ops.decompositions import batch_shape, broadcast_batch, check_matrices, check_same_dtype
from hubkit.ops.linalg import _mT
from hubkit.tensor import Tensor

LstsqResult = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])

_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def pinv_backward(a: Any, p: Any, gp: Any) -> Any:
    """gA of ``P = pinv(A)`` (A: (*, m, n), P: (*, n, m)) at constant rank:
    -P^T gP P^T + (I - A P) gP^T P P^T + P^T P gP^T (I - P A)."""
    pt, gpt = _mT(p), _mT(gp)
    left = gpt @ p @ pt
    right = pt @ p @ gpt
    return -(pt @ gp @ pt) + (left - a @ (p @ left)) + (right - (right @ p) @ a)


def _largest(xp: Any, values: Any) -> Any:
    """The largest entry of the last dim (0 for an empty one)."""
    if values.shape[-1] == 0:
        return xp.zeros(values.shape[:-1], dtype=values.dtype)
    return values.max(axis=-1)


def _as_array(xp: Any, value: Any, dtype: Any) -> Any:
    return xp.asarray(value.array if isinstance(value, Tensor) else value, dtype=dtype)


def tolerance(xp: Any, largest: Any, atol: Any, rtol: Any, m: int, n: int, dtype: Any) -> Any:
    """``max(atol, rtol * largest)`` per matrix, ``(*, 1)``. rtol defaults to eps * max(m, n), or to 0 where
    atol > 0 (PyTorch's rule); atol and rtol may be numbers or tensors broadcasting with the batch dims."""
    atol_a = _as_array(xp, 0 if atol is None else atol, dtype)
    if rtol is None:
        default = np.finfo(dtype).eps * max(m, n)
        rtol_a = _as_array(xp, default, dtype) if atol is None else xp.where(atol_a > 0, 0, default).astype(dtype)
    else:
        rtol_a = _as_array(xp, rtol, dtype)
    return xp.maximum(atol_a, rtol_a * largest)[..., None]


def _reciprocal_kept(xp: Any, values: Any, tol: Any) -> Any:
    keep = xp.abs(values) > tol
    return xp.where(keep, 1 / xp.where(keep, values, 1), 0)


class Pinv(Function):
    """The Moore-Penrose pseudoinverse from the SVD (or, with ``hermitian``, from the eigendecomposition of the
    lower triangle); singular values at or below the tolerance are dropped."""

    def __init__(self, atol: Any, rtol: Any, hermitian: bool) -> None:
        self.atol, self.rtol, self.hermitian = atol, rtol, hermitian

    def forward(self, a: Any) -> Any:
        xp = get_array_module(a)
        m, n = a.shape[-2:]
        if self.hermitian:
            w, v = xp.linalg.eigh(a)
            tol = tolerance(xp, _largest(xp, xp.abs(w)), self.atol, self.rtol, m, n, a.dtype)
            p = (v * _reciprocal_kept(xp, w, tol)[..., None, :]) @ _mT(v)
        else:
            u, s, vh = xp.linalg.svd(a, full_matrices=False)
            tol = tolerance(xp, _largest(xp, s), self.atol, self.rtol, m, n, a.dtype)
            p = (_mT(vh) * _reciprocal_kept(xp, s, tol)[..., None, :]) @ _mT(u)
        self.a, self.p = a, p
        return p

    def backward(self, gp: Any) -> Any:
        return pinv_backward(self.a, self.p, gp)


def pinv(A: Tensor, rcond: Any = None, hermitian: bool = False, *, atol: Any = None, rtol: Any = None) -> Tensor:  # noqa: N803
    """The pseudoinverse ``(*, n, m)`` of ``A: (*, m, n)``, dropping singular values (eigenvalue magnitudes with
    ``hermitian=True``, which reads only A's lower triangle) at or below ``max(atol, rtol * largest)``; ``rcond``
    is NumPy's name for rtol."""
    check_matrices("linalg.pinv", A)
    if rcond is not None:
        if rtol is not None:
            raise ArgumentError("linalg.pinv: rcond is an alias of rtol; pass only one of them")
        rtol = rcond
    return Pinv(atol, rtol, bool(hermitian))(A)


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:  # noqa: A002
    """The deprecated ``torch.pinverse``: ``linalg.pinv(input, rtol=rcond)``."""
    return pinv(input, rtol=rcond)


class Lstsq(Function):
    """X = pinv(A) B from one SVD of A (singular values at or below rcond * largest dropped). gB = P^T gX and gA is
    the pseudoinverse's derivative with gP = gX B^T, as PyTorch computes it. The rank and singular values are kept
    on the Function for ``lstsq`` to return (they carry no gradient)."""

    def __init__(self, rcond: float) -> None:
        self.rcond = rcond

    def forward(self, a: Any, b: Any) -> Any:
        xp = get_array_module(a)
        a, b = broadcast_batch(xp, a, b)
        u, s, vh = xp.linalg.svd(a, full_matrices=False)
        tol = self.rcond * s[..., :1]
        p = (_mT(vh) * _reciprocal_kept(xp, s, tol)[..., None, :]) @ _mT(u)
        self.rank = (s > tol).sum(axis=-1).astype(np.int64)
        self.singular_values = s
        self.a, self.b, self.p = a, b, p
        return p @ b

    def backward(self, gx: Any) -> tuple[Any, Any]:
        ga = pinv_backward(self.a, self.p, gx @ _mT(self.b)) if self.needs_input_grad[0] else None
        return ga, _mT(self.p) @ gx if self.needs_input_grad[1] else None


def lstsq(A: Tensor, B: Tensor, rcond: float | None = None, *, driver: str | None = None) -> Any:  # noqa: N803
    """The least-squares solution X minimizing ``||A X - B||_F`` (the minimum-norm one when A is rank-deficient)
    for ``A: (*, m, n)`` and ``B: (*, m, k)`` (or ``(*, m)``), batch dims broadcast, as
    ``(solution, residuals, rank, singular_values)``.

    What is filled follows LAPACK's ``driver`` as in PyTorch: 'gelsy' (the default) gives the rank; 'gelsd' and
    'gelss' the rank, the singular values and, when m > n and every matrix has full rank, the residuals
    ``||A X - B||^2`` per column; 'gels' only the residuals (when m > n). The rest are empty tensors. hubkit computes
    every driver's answer from the SVD, thresholding at ``rcond * largest singular value`` (default
    eps * max(m, n)).
    """
    op = "linalg.lstsq"
    check_matrices(op, A)
    if not isinstance(B, Tensor) or B.ndim not in (A.ndim, A.ndim - 1) or B.ndim == 0:
        raise ShapeError(f"{op}: B must have as many dims as A or one fewer, got shapes {tuple(A.shape)} and "
                         f"{tuple(getattr(B, 'shape', ()))}")
    check_same_dtype(op, A, B)
    driver = "gelsy" if driver is None else driver
    if driver not in _DRIVERS:
        raise ArgumentError(f"{op}: parameter `driver` should be one of (gels, gelsy, gelsd, gelss), got {driver!r}")
    vector = B.ndim == A.ndim - 1
    b = B.unsqueeze(-1) if vector else B
    m, n = A.shape[-2:]
    if b.shape[-2] != m:
        raise ShapeError(f"{op}: A {tuple(A.shape)} and B {tuple(B.shape)} do not fit: A has {m} rows, B has "
                         f"{b.shape[-2]}")
    batch_shape(op, A, b)
    fn = Lstsq(float(np.finfo(A.dtype).eps * max(m, n)) if rcond is None else float(rcond))
    x = fn(A, b)
    xp = A._xp
    rank = Tensor._make(fn.rank)
    full_rank = bool((fn.rank == n).all())
    if m > n and (driver == "gels" or driver in ("gelsd", "gelss") and full_rank):
        residuals = ((A @ x - b) ** 2).sum(-2)
    else:
        residuals = Tensor._make(xp.empty((0,), dtype=A.dtype))
    if driver == "gels":
        rank = Tensor._make(xp.empty((0,), dtype=np.int64))
    singular = Tensor._make(fn.singular_values if driver in ("gelsd", "gelss") else xp.empty((0,), dtype=A.dtype))
    return LstsqResult(x.squeeze(-1) if vector else x, residuals, rank, singular)


def matrix_rank(A: Tensor, tol: Any = None, hermitian: bool = False, *, atol: Any = None,  # noqa: N803
                rtol: Any = None) -> Tensor:
    """The numerical rank of ``A: (*, m, n)`` -> int64 ``(*)``: the number of singular values (eigenvalue
    magnitudes with ``hermitian=True``) above ``max(atol, rtol * largest)``; ``tol`` is NumPy's name for atol."""
    op = "linalg.matrix_rank"
    check_matrices(op, A)
    if tol is not None:
        if atol is not None:
            raise ArgumentError(f"{op}: tol is an alias of atol; pass only one of them")
        atol = tol
    xp = A._xp
    m, n = A.shape[-2:]
    a = A.array
    values = xp.abs(xp.linalg.eigvalsh(a)) if hermitian else xp.linalg.svd(a, compute_uv=False)
    threshold = tolerance(xp, _largest(xp, values), atol, rtol, m, n, A.dtype)
    return Tensor._make(xp.asarray((values > threshold).sum(axis=-1), dtype=np.int64))
