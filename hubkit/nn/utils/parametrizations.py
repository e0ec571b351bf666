"""``torch.nn.utils.parametrizations``: weight_norm, spectral_norm and orthogonal as parametrizations.

Each registers a parametrization module on the tensor (``hubkit.nn.utils.parametrize``), so the
state-dict keys are torch's: ``parametrizations.weight.original0`` / ``original1`` (weight norm's
magnitude and direction), ``parametrizations.weight.original`` with ``parametrizations.weight.0._u`` /
``_v`` (spectral norm's power-iteration vectors) or ``parametrizations.weight.0.base`` (orthogonal).
"""

from __future__ import annotations

import math
from typing import Any

from hubkit._backend import get_array_module
from hubkit.autograd import Function, no_grad
from hubkit.errors import ArgumentError, ShapeError
from hubkit.nn import init
from hubkit.nn.functional import cat, normalize
from hubkit.nn.module import Module
from hubkit.nn.utils import parametrize
from hubkit.nn.utils.spectral_norm import default_dim, normalize_into, weight_to_matrix
from hubkit.nn.utils.weight_norm import _weight_norm, norm_except_dim
from hubkit.random import get_rng
from hubkit.tensor import Tensor, empty

# ---------------------------------------------------------------- weight norm


class _WeightNorm(Module):
    """``weight = g * v / ||v||`` from ``(g, v)``; ``right_inverse(weight)`` gives ``(||weight||, weight)``."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` with the norm over every dim but ``dim``
    (``None``: the whole tensor). ``g`` and ``v`` are ``parametrizations.<name>.original0`` and
    ``original1``. Returns ``module``."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


# ---------------------------------------------------------------- spectral norm


class _SpectralNorm(Module):
    """``weight / sigma``, ``sigma`` the largest singular value of ``weight`` seen as a matrix
    ``(weight.shape[dim], -1)``, estimated by power iteration on the buffers ``_u`` and ``_v``
    (``n_power_iterations`` steps per training forward; 15 at construction). A 1-d weight is normalized."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if not -ndim <= dim < ndim:
            raise ArgumentError(f"spectral_norm: dim {dim} is out of range for a weight of shape "
                                f"{tuple(weight.shape)}; expected one in [-{ndim}, {ndim - 1}]")
        if n_power_iterations <= 0:
            raise ArgumentError(f"spectral_norm: expected n_power_iterations to be positive, but got "
                                f"n_power_iterations={n_power_iterations}")
        self.dim = dim % ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            with no_grad():
                weight_mat = weight_to_matrix(weight, self.dim)
                h, w = weight_mat.shape
                u = init.normal_(empty(h, dtype=weight.dtype, device=weight.device))
                v = init.normal_(empty(w, dtype=weight.dtype, device=weight.device))
                normalize_into(u, u.array, eps)
                normalize_into(v, v.array, eps)
            self.register_buffer("_u", u)
            self.register_buffer("_v", v)
            self._power_method(weight_mat, 15)

    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        with no_grad():
            w = weight_mat.array
            for _ in range(n_power_iterations):
                normalize_into(self._u, w @ self._v.array, self.eps)
                normalize_into(self._v, w.T @ self._u.array, self.eps)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return normalize(weight, dim=0, eps=self.eps)
        weight_mat = weight_to_matrix(weight, self.dim)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = (u * (weight_mat @ v)).sum()
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its spectral norm, estimated by power iteration. ``dim``: the output
    channels' dim (default 0, or 1 for transposed convolutions). Returns ``module``."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ArgumentError(f"spectral_norm: module '{type(module).__name__}' has no parameter or buffer with name "
                            f"'{name}'")
    if dim is None:
        dim = default_dim(module)
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module



# ---------------------------------------------------------------- orthogonal
# The maps need matrix_exp and solve with gradients; they are private Functions here, written for the
# small square matrices a parametrized weight gives (batched over leading dims).

_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0, 129060195264000.0,
           10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0, 40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152


def _expm_array(a: Any) -> Any:
    """``exp(a)`` of square matrices ``(*, n, n)`` by scaling and squaring with a [13/13] Pade approximant
    (Higham, 2005), computed in float64."""
    xp = get_array_module(a)
    x = a.astype(xp.float64)
    norm = float(xp.abs(x).sum(axis=-2).max()) if x.size else 0.0
    squarings = max(0, math.ceil(math.log2(norm / _THETA13))) if norm > _THETA13 else 0
    x = x / 2.0**squarings
    b = _PADE13
    eye = xp.broadcast_to(xp.eye(x.shape[-1]), x.shape)
    x2 = x @ x
    x4 = x2 @ x2
    x6 = x4 @ x2
    u = x @ (x6 @ (b[13] * x6 + b[11] * x4 + b[9] * x2) + b[7] * x6 + b[5] * x4 + b[3] * x2 + b[1] * eye)
    v = x6 @ (b[12] * x6 + b[10] * x4 + b[8] * x2) + b[6] * x6 + b[4] * x4 + b[2] * x2 + b[0] * eye
    r = xp.linalg.solve(v - u, v + u)
    for _ in range(squarings):
        r = r @ r
    return r.astype(a.dtype)


class _MatrixExp(Function):
    """``exp(A)``; the gradient is the adjoint Frechet derivative, read off the exponential of the block
    matrix ``[[A^T, G], [0, A^T]]`` (its top-right block)."""

    def forward(self, a: Any) -> Any:
        self.a = a
        return _expm_array(a)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        n = gy.shape[-1]
        at = xp.swapaxes(self.a, -1, -2)
        block = xp.concatenate([xp.concatenate([at, gy], axis=-1),
                                xp.concatenate([xp.zeros_like(at), at], axis=-1)], axis=-2)
        return _expm_array(block)[..., :n, n:]


class _Solve(Function):
    """``X = A^-1 B`` for square ``A (*, n, n)``: ``dB = A^-T G``, ``dA = -dB X^T``."""

    def forward(self, a: Any, b: Any) -> Any:
        xp = get_array_module(a)
        self.a, self.x = a, xp.linalg.solve(a, b)
        return self.x

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        gb = xp.linalg.solve(xp.swapaxes(self.a, -1, -2), gy)
        return -gb @ xp.swapaxes(self.x, -1, -2), gb


def _tril(x: Tensor, diagonal: int = 0) -> Tensor:
    mask = x._xp.tri(x.shape[-2], x.shape[-1], diagonal, dtype=x.dtype)
    return x * Tensor._make(mask)


def _householder_product(a: Tensor, tau: Tensor) -> Tensor:
    """The first k columns of ``H_1 ... H_k``, ``H_i = I - tau_i v_i v_i^T`` with ``v_i`` column i of ``a``
    ``(*, n, k)`` below the diagonal and 1 on it (LAPACK's orgqr, torch.linalg.householder_product)."""
    n, k = a.shape[-2], a.shape[-1]
    xp = a._xp
    v = _tril(a, -1) + Tensor._make(xp.eye(n, k, dtype=a.dtype))
    q = Tensor._make(xp.broadcast_to(xp.eye(n, dtype=a.dtype), (*a.shape[:-2], n, n)))
    for i in range(k):
        vi = v[..., :, i:i + 1]
        q = q - (q @ vi) * tau[..., i:i + 1].unsqueeze(-1) @ vi.mT
    return q[..., :, :k]


def _make_orthogonal(a: Any) -> Any:
    """The Q of ``a = QR`` (``a`` tall, raw array) with the signs that make ``diag(R)`` non-negative."""
    xp = get_array_module(a)
    q, r = xp.linalg.qr(a)
    signs = xp.sign(xp.diagonal(r, axis1=-2, axis2=-1))
    return q * xp.where(signs == 0, 1, signs)[..., None, :]


def _is_orthogonal(q: Any) -> bool:
    xp = get_array_module(q)
    n, k = q.shape[-2], q.shape[-1]
    eps = 10.0 * n * float(xp.finfo(q.dtype).eps)
    return bool(xp.allclose(xp.swapaxes(q, -1, -2) @ q, xp.eye(k, dtype=q.dtype), atol=eps))


_ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")


class _NoRightInverse(ArgumentError, NotImplementedError):
    """A parametrization that cannot be assigned to; a NotImplementedError, which is how parametrize (as torch's)
    learns at registration that the current value is to be kept as it is."""


class _Orthogonal(Module):
    """A (batch of) matrix with orthonormal columns (or rows, when wide) from an unconstrained one, through
    ``orthogonal_map``. With ``use_trivialization`` the result is ``base @ map(X)``, ``base`` a buffer
    holding the orthogonal matrix last assigned."""

    def __init__(self, weight: Tensor, orthogonal_map: str, *, use_trivialization: bool = True) -> None:
        super().__init__()
        if weight.dtype.kind == "c" and orthogonal_map == "householder":
            raise ArgumentError("the householder parametrization does not support complex tensors")
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, x: Tensor) -> Tensor:
        n, k = x.shape[-2], x.shape[-1]
        transposed = n < k
        if transposed:
            x = x.mT
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            x = _tril(x)
            if n != k:
                pad = Tensor._make(x._xp.zeros((*x.shape[:-2], n, n - k), dtype=x.dtype))
                x = cat([x, pad], dim=-1)
            a = x - x.mT
            if self.orthogonal_map == "matrix_exp":
                q = _MatrixExp()(a)
            else:
                eye = Tensor._make(x._xp.eye(n, dtype=a.dtype))
                q = _Solve()(eye - a * 0.5, eye + a * 0.5)
            if n != k:
                q = q[..., :k]
        else:
            a = _tril(x, -1)
            tau = 2.0 / (1.0 + (a * a).sum(dim=-2))
            q = _householder_product(a, tau)
            # torch scales by int(diagonal of X): a constant (no gradient), -1 after right_inverse
            diagonal = x._xp.trunc(x._xp.diagonal(x.array, axis1=-2, axis2=-1))
            q = q * Tensor._make(diagonal[..., None, :])
        base = self._buffers.get("base")
        if base is not None:
            q = base @ q
        return q.mT if transposed else q

    def right_inverse(self, q: Tensor) -> Tensor:
        """Store the orthogonal ``q`` as ``base`` (orthogonalized when it is not) and return the ``X`` whose
        image is the identity; without trivialization, householder's own preimage of ``q``."""
        if tuple(q.shape) != self.shape:
            raise ShapeError(f"orthogonal: expected a matrix or batch of matrices of shape {self.shape}, got a "
                             f"tensor of shape {tuple(q.shape)}")
        xp = q._xp
        q_init = q.array
        qa = q_init
        n, k = qa.shape[-2], qa.shape[-1]
        transpose = n < k
        if transpose:
            qa = xp.swapaxes(qa, -1, -2)
            n, k = k, n
        if "base" not in self._buffers:
            if self.orthogonal_map != "householder":
                raise _NoRightInverse("it is not possible to assign to the matrix exponential or the Cayley "
                                      "parametrizations when use_trivialization=False")
            h, tau = xp.linalg.qr(qa, mode="raw")
            a = xp.swapaxes(h, -1, -2).copy()
            diagonal = xp.sign(xp.diagonal(a, axis1=-2, axis2=-1))
            diagonal = xp.where(tau == 0, -diagonal, diagonal)
            idx = xp.arange(k)
            a[..., idx, idx] = diagonal
            return Tensor._make(xp.swapaxes(a, -1, -2) if transpose else a)
        if n == k:
            base = qa.copy() if _is_orthogonal(qa) else _make_orthogonal(qa)
        else:
            extra = xp.asarray(get_rng(None).standard_normal((*qa.shape[:-2], n, n - k)), dtype=qa.dtype)
            base = _make_orthogonal(xp.concatenate([qa, extra], axis=-1))
        self.base = Tensor._make(base)
        neg_eye = xp.zeros_like(q_init)
        idx = xp.arange(min(q_init.shape[-2:]))
        neg_eye[..., idx, idx] = -1
        return Tensor._make(neg_eye)


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Constrain ``module.<name>`` (a matrix, or a batch of them) to have orthonormal columns, or rows when
    it is wide. ``orthogonal_map``: "matrix_exp" (default for square), "cayley" or "householder" (default
    otherwise). The current weight is kept (orthogonalized when it is not). Returns ``module``."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ArgumentError(f"orthogonal: module '{type(module).__name__}' has no parameter or buffer with name "
                            f"'{name}'")
    if weight.ndim < 2:
        raise ShapeError(f"orthogonal: expected a matrix or batch of matrices, got a tensor of {weight.ndim} "
                         "dimensions")
    if orthogonal_map is None:
        square = weight.shape[-2] == weight.shape[-1]
        orthogonal_map = "matrix_exp" if square or weight.dtype.kind == "c" else "householder"
    if orthogonal_map not in _ORTHOGONAL_MAPS:
        raise ArgumentError(f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder"; got '
                            f"{orthogonal_map!r}")
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
