"""Spectral decompositions and the matrix functions built on them: PyTorch's ``linalg.svd``/``svdvals``,
``linalg.eigh``/``eigvalsh``, ``linalg.eig``/``eigvals``, ``linalg.matrix_sqrth``, ``linalg.polar``,
``linalg.matrix_exp`` and the deprecated top-level ``svd``.

The factorizations are numpy's/cupy's (LAPACK's gesdd and syevd on the CPU, as PyTorch's). Singular vectors and
eigenvectors are unique only up to sign, so a loss should not depend on that sign.

Gradients with respect to singular vectors and eigenvectors divide by the gaps between singular values
(``s_j^2 - s_i^2``) or eigenvalues (``w_j - w_i``): as in PyTorch they are inf/nan when a value is repeated and
the loss depends on the vectors, and finite (the closed form ``U diag(gS) V^T``, ``V diag(gw) V^T``) when only the
values are used. ``matrix_sqrth`` and ``polar`` use Sylvester-equation formulas instead, finite for repeated
eigenvalues too.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from hubkit._backend import CPU, get_array_module, to_device
from hubkit.autograd import Function, is_grad_enabled
from hubkit.errors import ArgumentError, ShapeError, UnsupportedError
from hubkit.ops.decompositions import check_matrices
from hubkit.ops.linalg import _mT
from hubkit.tensor import Tensor

SVDResult = namedtuple("linalg_svd", ["U", "S", "Vh"])
DeprecatedSVDResult = namedtuple("svd", ["U", "S", "V"])
EighResult = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
EigResult = namedtuple("linalg_eig", ["eigenvalues", "eigenvectors"])
PolarResult = namedtuple("linalg_polar", ["U", "H"])


def _off_diagonal(xp: Any, f: Any) -> Any:
    """``f`` with its diagonal (of the last two dims) set to zero, in place."""
    diag = xp.arange(f.shape[-1])
    f[..., diag, diag] = 0
    return f


# ---------------------------------------------------------------- SVD


def svd_backward(xp: Any, u: Any, s: Any, vh: Any, gu: Any, gs: Any, gvh: Any) -> Any:
    """gA of the reduced ``A = U diag(S) Vh`` (U: (*, m, k), Vh: (*, k, n)), Townsend's formula:
    U [F o (U^T gU - gU^T U) S + diag(gS) + S F o (V^T gV - gV^T V)] Vh + (I - U U^T) gU S^-1 Vh
    + U S^-1 gV^T (I - V V^T), with F_ij = 1 / (s_j^2 - s_i^2) off the diagonal."""
    if not (bool(gu.any()) or bool(gvh.any())):  # only S is used: no division by the gaps
        return (u * gs[..., None, :]) @ vh
    m, n, k = u.shape[-2], vh.shape[-1], s.shape[-1]
    v, gv = _mT(vh), _mT(gvh)
    s2 = s * s
    with np.errstate(divide="ignore", invalid="ignore"):
        f = _off_diagonal(xp, 1 / (s2[..., None, :] - s2[..., :, None]))
        ut_gu, vt_gv = _mT(u) @ gu, _mT(v) @ gv
        inner = (f * (ut_gu - _mT(ut_gu))) * s[..., None, :] + s[..., :, None] * (f * (vt_gv - _mT(vt_gv)))
        diag = xp.arange(k)
        inner[..., diag, diag] += gs
        ga = u @ inner @ vh
        if m > k:
            ga = ga + ((gu - u @ ut_gu) / s[..., None, :]) @ vh
        if n > k:
            ga = ga + u @ (_mT(gv - v @ vt_gv) / s[..., :, None])
    return ga


class SVD(Function):
    """``(U, S, Vh)`` of LAPACK's SVD; the columns of U and rows of Vh past min(m, n) of a full SVD get no
    gradient (they are any basis of the complement), as in PyTorch."""

    def __init__(self, full_matrices: bool) -> None:
        self.full_matrices = full_matrices

    def forward(self, a: Any) -> tuple[Any, Any, Any]:
        u, s, vh = get_array_module(a).linalg.svd(a, full_matrices=self.full_matrices)
        k = s.shape[-1]
        self.u, self.s, self.vh = u[..., :k], s, vh[..., :k, :]
        return u, s, vh

    def backward(self, gu: Any, gs: Any, gvh: Any) -> Any:
        k = self.s.shape[-1]
        return svd_backward(get_array_module(gs), self.u, self.s, self.vh, gu[..., :k], gs, gvh[..., :k, :])


def _check_driver(op: str, A: Tensor, driver: Any) -> None:  # noqa: N803
    if driver is None:
        return
    if A.device.type != "cuda":
        raise ArgumentError(f"{op}: keyword argument `driver=` is only supported on CUDA inputs (hubkit leaves the "
                            "choice of algorithm to cupy there); drop it for CPU tensors")
    if driver not in ("gesvd", "gesvdj", "gesvda"):
        raise ArgumentError(f"{op}: driver must be None, 'gesvd', 'gesvdj' or 'gesvda', got {driver!r}")


def svd(A: Tensor, full_matrices: bool = True, *, driver: Any = None) -> Any:  # noqa: N803
    """``(U, S, Vh)`` with ``A = U diag(S) Vh`` for ``A: (*, m, n)``, k = min(m, n): ``U: (*, m, m)``,
    ``S: (*, k)`` descending, ``Vh: (*, n, n)`` (``(*, m, k)`` and ``(*, k, n)`` with ``full_matrices=False``)."""
    check_matrices("linalg.svd", A)
    _check_driver("linalg.svd", A, driver)
    return SVDResult(*SVD(bool(full_matrices))(A))


class SingularValues(Function):
    """The singular values, largest first; d s_i = u_i^T dA v_i (finite for repeated values too)."""

    def forward(self, a: Any) -> Any:
        u, s, vt = get_array_module(a).linalg.svd(a, full_matrices=False)
        self.u, self.vt = u, vt
        return s

    def backward(self, gs: Any) -> Any:
        return (self.u * gs[..., None, :]) @ self.vt


def svdvals(A: Tensor, *, driver: Any = None) -> Tensor:  # noqa: N803
    """The singular values of the matrices ``A: (*, m, n)`` -> ``(*, min(m, n))``, in descending order."""
    check_matrices("linalg.svdvals", A)
    _check_driver("linalg.svdvals", A, driver)
    return SingularValues()(A)


def svd_deprecated(input: Tensor, some: bool = True, compute_uv: bool = True) -> Any:  # noqa: A002
    """The deprecated ``torch.svd``: ``(U, S, V)`` (V, not its transpose), reduced when ``some``; with
    ``compute_uv=False``, U and V are zero-filled ``(*, m, m)`` and ``(*, n, n)``."""
    if compute_uv:
        U, S, Vh = svd(input, full_matrices=not some)  # noqa: N806
        return DeprecatedSVDResult(U, S, Vh.mT)
    S = svdvals(input)  # noqa: N806
    xp, (m, n), batch = input._xp, input.shape[-2:], input.shape[:-2]
    return DeprecatedSVDResult(Tensor._make(xp.zeros(batch + (m, m), dtype=input.dtype)), S,
                               Tensor._make(xp.zeros(batch + (n, n), dtype=input.dtype)))


# ---------------------------------------------------------------- symmetric eigendecomposition


def eigh_backward(xp: Any, w: Any, v: Any, gw: Any, gv: Any) -> Any:
    """gA of ``A = V diag(w) V^T``: V [diag(gw) + skew(V^T gV) / E] V^T with E_ij = w_j - w_i and
    skew(X) = (X - X^T) / 2, symmetric as PyTorch's (A is taken to be symmetric)."""
    if not bool(gv.any()):  # only the eigenvalues are used: no division by the gaps
        return (v * gw[..., None, :]) @ _mT(v)
    vt_gv = _mT(v) @ gv
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = _off_diagonal(xp, 0.5 * (vt_gv - _mT(vt_gv)) / (w[..., None, :] - w[..., :, None]))
    diag = xp.arange(w.shape[-1])
    inner[..., diag, diag] = gw
    return v @ inner @ _mT(v)


class Eigh(Function):
    """``(w, V)`` of a symmetric matrix from its lower (``UPLO='L'``) or upper triangle, w ascending."""

    def __init__(self, uplo: str) -> None:
        self.uplo = uplo

    def forward(self, a: Any) -> tuple[Any, Any]:
        w, v = get_array_module(a).linalg.eigh(a, UPLO=self.uplo)
        self.w, self.v = w, v
        return w, v

    def backward(self, gw: Any, gv: Any) -> Any:
        return eigh_backward(get_array_module(gw), self.w, self.v, gw, gv)


def _check_uplo(uplo: Any) -> str:
    if uplo not in ("L", "U", "l", "u"):
        raise ArgumentError(f"Expected UPLO argument to be 'L' or 'U', but got {uplo!r}")
    return uplo.upper()


def eigh(A: Tensor, UPLO: str = "L") -> Any:  # noqa: N803
    """``(eigenvalues, eigenvectors)`` of symmetric ``A: (*, n, n)`` (only the ``UPLO`` triangle is read):
    ``(*, n)`` ascending and ``(*, n, n)`` with the eigenvectors as columns."""
    check_matrices("linalg.eigh", A, square=True)
    return EighResult(*Eigh(_check_uplo(UPLO))(A))


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:  # noqa: N803
    """The eigenvalues of symmetric ``A: (*, n, n)`` -> ``(*, n)``, ascending; their gradient is always finite."""
    check_matrices("linalg.eigvalsh", A, square=True)
    return Eigh(_check_uplo(UPLO))(A)[0]


# ---------------------------------------------------------------- general eigendecomposition (complex results)


def _refuse_complex_gradient(op: str, A: Tensor) -> None:  # noqa: N803
    if is_grad_enabled() and A.requires_grad:
        raise UnsupportedError(f"the gradient of torch.{op} is not supported by hubkit: its results are complex and "
                               "hubkit's autograd is real-valued. Call it under hubkit.no_grad() or on A.detach(); "
                               "for a symmetric matrix, linalg.eigh and linalg.eigvalsh are differentiable")


def _eig_arrays(a: Any) -> tuple[Any, Any]:
    xp = get_array_module(a)
    complex_dtype = np.complex64 if a.dtype == np.float32 else np.complex128
    if hasattr(xp.linalg, "eig"):
        w, v = xp.linalg.eig(a)
    else:  # cupy without a general eigensolver: LAPACK's geev on the host, the results copied back
        w, v = (xp.asarray(r) for r in np.linalg.eig(to_device(a, CPU)))
    return w.astype(complex_dtype), v.astype(complex_dtype)


def eig(A: Tensor) -> Any:  # noqa: N803
    """``(eigenvalues, eigenvectors)`` of a square real ``A: (*, n, n)``, complex as in PyTorch (complex64 for
    float32, complex128 for float64): ``(*, n)`` and ``(*, n, n)`` with unit-norm eigenvectors as columns. Not
    differentiable in hubkit (complex results)."""
    check_matrices("linalg.eig", A, square=True)
    _refuse_complex_gradient("linalg.eig", A)
    w, v = _eig_arrays(A.array)
    return EigResult(Tensor._make(w), Tensor._make(v))


def eigvals(A: Tensor) -> Tensor:  # noqa: N803
    """The (complex) eigenvalues of a square real ``A: (*, n, n)`` -> ``(*, n)``; not differentiable in hubkit."""
    check_matrices("linalg.eigvals", A, square=True)
    _refuse_complex_gradient("linalg.eigvals", A)
    return Tensor._make(_eig_arrays(A.array)[0])


# ---------------------------------------------------------------- matrix functions


def _sylvester(xp: Any, v: Any, r: Any, g: Any) -> Any:
    """Y with ``H Y + Y H = g`` for ``H = V diag(r) V^T``: V [(V^T g V) / (r_i + r_j)] V^T."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return v @ ((_mT(v) @ g @ v) / (r[..., :, None] + r[..., None, :])) @ _mT(v)


class MatrixSqrtH(Function):
    """The principal square root X = V diag(sqrt(w)) V^T of a symmetric positive-(semi)definite matrix (its
    lower triangle read; negative eigenvalues are clamped to 0, as PyTorch does). gA solves the Sylvester equation
    X gA + gA X = sym(gX)."""

    def forward(self, a: Any) -> Any:
        xp = get_array_module(a)
        w, v = xp.linalg.eigh(a)
        r = xp.sqrt(xp.maximum(w, 0))
        self.v, self.r = v, r
        return (v * r[..., None, :]) @ _mT(v)

    def backward(self, gx: Any) -> Any:
        return _sylvester(get_array_module(gx), self.v, self.r, 0.5 * (gx + _mT(gx)))


def matrix_sqrth(A: Tensor) -> Tensor:  # noqa: N803
    """The symmetric positive-definite X with ``X X = A`` for symmetric positive-definite ``A: (*, n, n)``
    (only its lower triangle is read)."""
    check_matrices("linalg.matrix_sqrth", A, square=True)
    return MatrixSqrtH()(A)


class Polar(Function):
    """``A = U H`` from the SVD A = W S V^T: U = W V^T, H = V S V^T. With U = A H^-1 and H^2 = A^T A, the gradient
    is gA = gU H^-1 + 2 A Y, where H Y + Y H = sym(gH - U^T gU H^-1); it needs full column rank."""

    def forward(self, a: Any) -> tuple[Any, Any]:
        w, s, vh = get_array_module(a).linalg.svd(a, full_matrices=False)
        u = w @ vh
        self.a, self.u, self.s, self.vh = a, u, s, vh
        return u, (_mT(vh) * s[..., None, :]) @ vh

    def backward(self, gu: Any, gh: Any) -> Any:
        xp = get_array_module(gu)
        v = _mT(self.vh)
        with np.errstate(divide="ignore", invalid="ignore"):
            h_inv = (v / self.s[..., None, :]) @ self.vh
        g = gh - _mT(self.u) @ gu @ h_inv
        return gu @ h_inv + 2 * self.a @ _sylvester(xp, v, self.s, 0.5 * (g + _mT(g)))


def polar(A: Tensor) -> Any:  # noqa: N803
    """``(U, H)`` with ``A = U H`` for ``A: (*, m, n)``, m >= n: ``U: (*, m, n)`` with orthonormal columns (the
    closest such matrix to A) and ``H: (*, n, n)`` symmetric positive-semidefinite."""
    op = "linalg.polar"
    check_matrices(op, A)
    if A.shape[-2] < A.shape[-1]:
        raise ShapeError(f"{op}: input must have at least as many rows as columns, but got {A.shape[-2]} by "
                         f"{A.shape[-1]} matrices")
    return PolarResult(*Polar()(A))


# The degree-13 Pade approximant of exp and the largest 1-norm it is accurate for in float64 (Higham 2005,
# "The scaling and squaring method for the matrix exponential revisited", table 2.3 and eq. 2.3).
_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0, 129060195264000.0,
           10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0, 40840800.0, 960960.0, 16380.0, 182.0,
           1.0)
_THETA13 = 5.371920351148152


def expm(xp: Any, a: Any) -> Any:
    """exp of every matrix in ``a: (*, n, n)``: each is scaled by 2^-s so its 1-norm is at most theta_13, the
    Pade approximant r = (V - U)^-1 (V + U) is evaluated for the whole batch, then each is squared its own s
    times."""
    n = a.shape[-1]
    norm = xp.abs(a).sum(axis=-2).max(axis=-1) if n else xp.zeros(a.shape[:-2], dtype=a.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = xp.ceil(xp.log2(norm / _THETA13))
    s = xp.where(xp.isfinite(s) & (s > 0), s, 0).astype(np.int64)
    a = a * (0.5 ** s).astype(a.dtype)[..., None, None]
    b = _PADE13
    eye = xp.eye(n, dtype=a.dtype)
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2 + b[1] * eye)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + b[0] * eye
    r = xp.linalg.solve(v - u, v + u)
    for i in range(int(s.max()) if s.size else 0):
        r = xp.where((s > i)[..., None, None], r @ r, r)
    return r


class MatrixExp(Function):
    """exp(A); the gradient is the top-right block of exp([[A^T, gY], [0, A^T]]) (the block-matrix form of the
    Frechet derivative), so it has the accuracy of the forward."""

    def forward(self, a: Any) -> Any:
        self.a = a
        return expm(get_array_module(a), a)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        n = self.a.shape[-1]
        at = _mT(self.a)
        block = xp.zeros(self.a.shape[:-2] + (2 * n, 2 * n), dtype=gy.dtype)
        block[..., :n, :n] = at
        block[..., n:, n:] = at
        block[..., :n, n:] = gy
        return expm(xp, block)[..., :n, n:]


def matrix_exp(A: Tensor) -> Tensor:  # noqa: N803
    """The matrix exponential ``sum_k A^k / k!`` of square ``A: (*, n, n)``."""
    check_matrices("linalg.matrix_exp", A, square=True)
    return MatrixExp()(A)
