"""QR and Householder reflectors: PyTorch's ``linalg.qr``, ``linalg.householder_product`` (``orgqr``) and the
top-level ``qr``, ``geqrf`` and ``ormqr``.

The QR itself is LAPACK's (numpy/cupy ``linalg.qr``, whose ``'raw'`` mode is geqrf's output transposed), so the
signs of R's diagonal match PyTorch's on the CPU. Products of reflectors are built from the differentiable ops,
one rank-1 update per reflector, so their gradients come from autograd.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, GradError, ShapeError
from hubkit.ops.decompositions import check_matrices, check_same_dtype, trsm
from hubkit.ops.linalg import _mT
from hubkit.ops.matrix import tril
from hubkit.tensor import Tensor

QRResult = namedtuple("linalg_qr", ["Q", "R"])
DeprecatedQRResult = namedtuple("qr", ["Q", "R"])
GeqrfResult = namedtuple("geqrf", ["a", "tau"])


def _qr_backward_tall(xp: Any, q: Any, r: Any, gq: Any, gr: Any) -> Any:
    """gA for ``A = Q R`` with m >= n (Q m x n): (gQ + Q copyltu(M)) R^-T, M = R gR^T - gQ^T Q, where copyltu
    mirrors M's strict lower triangle onto its upper one."""
    m = r @ _mT(gr) - _mT(gq) @ q
    lower = xp.tril(m, -1)
    b = gq + q @ (lower + _mT(lower) + xp.triu(xp.tril(m)))
    return _mT(trsm(r, _mT(b), lower=False))


class QR(Function):
    """``(Q, R)`` of LAPACK's QR. The gradient exists for the reduced QR and for the complete one of a wide or
    square matrix; for a wide A = Q [R1 R2] it is that of the square X = Q R1 with gQ + Y gR2^T, and Q gR2 for
    Y = Q R2 (PyTorch's formula)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def forward(self, a: Any) -> tuple[Any, Any]:
        xp = get_array_module(a)
        if self.mode == "r":
            q, r = xp.empty((0,), dtype=a.dtype), xp.linalg.qr(a, mode="r")
        else:
            q, r = xp.linalg.qr(a, mode=self.mode)
        self.q, self.r = q, r
        return q, r

    def backward(self, gq: Any, gr: Any) -> Any:
        if self.mode == "r":
            raise GradError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. "
                            "Please use linalg.qr(A, mode='reduced') if you are going to differentiate through "
                            "linalg.qr.")
        xp = get_array_module(gr)
        q, r = self.q, self.r
        m, n = q.shape[-2], r.shape[-1]
        if self.mode == "complete" and m > n:
            raise GradError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols. "
                            "Use mode='reduced' to differentiate through it.")
        if m >= n:
            return _qr_backward_tall(xp, q, r, gq, gr)
        y = q @ r[..., :, m:]
        gx = _qr_backward_tall(xp, q, r[..., :, :m], gq + y @ _mT(gr[..., :, m:]), gr[..., :, :m])
        return xp.concatenate([gx, q @ gr[..., :, m:]], axis=-1)


def qr(A: Tensor, mode: str = "reduced") -> Any:  # noqa: N803
    """``(Q, R)`` with ``A = Q R`` for ``A: (*, m, n)``, k = min(m, n): ``mode='reduced'`` gives ``(*, m, k)`` and
    ``(*, k, n)``, ``'complete'`` ``(*, m, m)`` and ``(*, m, n)``, ``'r'`` an empty Q and R ``(*, k, n)``."""
    op = "linalg.qr"
    check_matrices(op, A)
    if mode not in ("reduced", "complete", "r"):
        raise ArgumentError(f"{op}: qr received unrecognized mode {mode!r} but expected one of 'reduced' "
                            "(default), 'r', or 'complete'")
    return QRResult(*QR(mode)(A))


def qr_deprecated(input: Tensor, some: bool = True) -> Any:  # noqa: A002
    """The deprecated ``torch.qr``: the reduced QR (``some=True``) or the complete one."""
    return DeprecatedQRResult(*qr(input, "reduced" if some else "complete"))


class Geqrf(Function):
    """LAPACK's geqrf: R on and above the diagonal, the reflectors below it, and their scales tau."""

    def forward(self, a: Any) -> tuple[Any, Any]:
        xp = get_array_module(a)
        h, tau = xp.linalg.qr(a, mode="raw")
        return xp.ascontiguousarray(_mT(h)), tau

    def backward(self, ga: Any, gtau: Any) -> Any:
        raise GradError("the derivative for 'geqrf' is not implemented (nor is it in PyTorch); differentiate "
                        "through linalg.qr instead")


def geqrf(input: Tensor) -> Any:  # noqa: A002
    """``(a, tau)``: LAPACK's compact QR of ``input: (*, m, n)``; ``a: (*, m, n)``, ``tau: (*, min(m, n))``. Use
    with ``householder_product`` or ``ormqr``."""
    check_matrices("geqrf", input, name="input")
    return GeqrfResult(*Geqrf()(input))


def _reflectors(input: Tensor, k: int) -> Tensor:
    """The first k Householder vectors stored below the diagonal of ``input``, with their implicit leading 1:
    ``(*, m, k)`` unit lower trapezoidal."""
    m = input.shape[-2]
    eye = Tensor._make(input._xp.eye(m, k, dtype=input.dtype))
    return tril(input[..., :, :k], -1) + eye


def _check_tau(op: str, input: Tensor, tau: Tensor, k_max: int) -> None:
    check_matrices(op, input, name="input")
    if not isinstance(tau, Tensor) or tau.ndim < 1:
        raise ShapeError(f"{op}: tau must be a tensor with at least 1 dim, got {getattr(tau, 'shape', tau)}")
    check_same_dtype(op, input, tau)
    if tau.shape[-1] > k_max:
        raise ShapeError(f"{op}: tau.shape[-1] ({tau.shape[-1]}) must be at most {k_max}")
    if tuple(tau.shape[:-1]) != tuple(input.shape[:-2]):
        raise ShapeError(f"{op}: tau's batch dims {tuple(tau.shape[:-1])} must equal input's "
                         f"{tuple(input.shape[:-2])}")


def householder_product(A: Tensor, tau: Tensor) -> Tensor:  # noqa: N803
    """The first n columns of ``H_1 ... H_k`` with ``H_i = I - tau_i v_i v_i^T`` (v_i from column i of A below the
    diagonal, with a leading 1): ``A: (*, m, n)`` with m >= n, ``tau: (*, k)`` with k <= n -> ``(*, m, n)``."""
    op = "linalg.householder_product"
    check_matrices(op, A)
    m, n = A.shape[-2:]
    if m < n:
        raise ShapeError(f"{op}: input.shape[-2] must be greater than or equal to input.shape[-1], got {m} < {n}")
    _check_tau(op, A, tau, n)
    k = tau.shape[-1]
    v = _reflectors(A, k)
    xp = A._xp
    q = Tensor._make(xp.broadcast_to(xp.eye(m, n, dtype=A.dtype), A.shape))
    for i in reversed(range(k)):  # H_1 (H_2 (... (H_k I)))
        vi = v[..., :, i:i + 1]
        q = q - (vi * tau[..., i:i + 1].unsqueeze(-1)) @ (vi.mT @ q)
    return q


def ormqr(input: Tensor, tau: Tensor, other: Tensor, left: bool = True, transpose: bool = False) -> Tensor:  # noqa: A002
    """``op(Q) C`` (or ``C op(Q)`` with ``left=False``) for ``C = other: (*, m, n)`` and Q the product of the
    Householder reflectors in ``(input, tau)`` (as from ``geqrf``), without forming Q; op transposes when
    ``transpose``. ``input: (*, m, k)`` (``(*, n, k)`` when ``left=False``), ``tau: (*, min(mn, k))``."""
    op = "ormqr"
    check_matrices(op, other, name="other")
    check_same_dtype(op, input, other)
    mn = other.shape[-2] if left else other.shape[-1]
    check_matrices(op, input, name="input")
    if input.shape[-2] != mn:
        raise ShapeError(f"{op}: input.shape[-2] ({input.shape[-2]}) must equal other.shape[{-2 if left else -1}] "
                         f"({mn})")
    _check_tau(op, input, tau, min(mn, input.shape[-1]))
    if tuple(other.shape[:-2]) != tuple(input.shape[:-2]):
        raise ShapeError(f"{op}: other's batch dims {tuple(other.shape[:-2])} must equal input's "
                         f"{tuple(input.shape[:-2])}")
    k = tau.shape[-1]
    v = _reflectors(input, k)
    # Q = H_1 ... H_k; Q C applies H_k first, Q^T C applies H_1 first, and the reverse on the right
    forward_order = transpose if left else not transpose
    c = other
    for i in range(k) if forward_order else reversed(range(k)):
        vi = v[..., :, i:i + 1]
        scaled = vi * tau[..., i:i + 1].unsqueeze(-1)
        c = c - scaled @ (vi.mT @ c) if left else c - (c @ vi) @ scaled.mT
    return c
