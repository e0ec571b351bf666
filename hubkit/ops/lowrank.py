"""Randomized and iterative methods for a few singular or eigen pairs: PyTorch's ``svd_lowrank``,
``pca_lowrank`` and ``lobpcg``.

Random starting blocks come from hubkit's global generator, so ``hubkit.manual_seed`` makes the results
repeatable (the numbers differ from PyTorch's, whose generator differs; the subspaces found agree).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function, is_grad_enabled
from hubkit.errors import ArgumentError, ShapeError, UnsupportedError
from hubkit.ops.decompositions import check_matrices, check_same_dtype
from hubkit.ops.householder import qr
from hubkit.ops.spectral import eigh_backward, svd
from hubkit.tensor import Tensor, randn


def _approximate_basis(A: Tensor, q: int, niter: int, M: Tensor | None) -> Tensor:  # noqa: N803
    """An orthonormal ``(*, m, q)`` basis approximately spanning A's range (Halko et al. 2009, algorithm 4.4:
    a random projection refined by ``niter`` power iterations, re-orthonormalized at each step)."""
    R = randn(A.shape[-1], q, dtype=A.dtype, device=A.device)  # noqa: N806

    def times(B: Tensor, X: Tensor, transpose: bool) -> Tensor:  # noqa: N803
        product = (B.mT if transpose else B) @ X
        if M is not None:
            product = product - (M.mT if transpose else M) @ X
        return product

    Q = qr(times(A, R, False)).Q  # noqa: N806
    for _ in range(niter):
        Q = qr(times(A, Q, True)).Q  # noqa: N806
        Q = qr(times(A, Q, False)).Q  # noqa: N806
    return Q


def svd_lowrank(A: Tensor, q: int | None = 6, niter: int | None = 2, M: Tensor | None = None) -> tuple:  # noqa: N803
    """``(U, S, V)`` with ``A - M ~= U diag(S) V^T`` (M broadcast to A, or 0) for ``A: (*, m, n)``: a randomized SVD
    of rank about q (Halko et al. 2009, algorithm 5.1): ``U: (*, m, q)``, ``S: (*, q)``, ``V: (*, n, q)`` with
    q capped at min(m, n). Differentiable through its QR and SVD steps."""
    op = "svd_lowrank"
    check_matrices(op, A)
    q = 6 if q is None else q
    niter = 2 if niter is None else niter
    if not isinstance(q, int) or q < 0 or not isinstance(niter, int) or niter < 0:
        raise ArgumentError(f"{op}: q and niter must be non-negative integers, got q={q!r}, niter={niter!r}")
    m, n = A.shape[-2:]
    if M is not None:
        check_same_dtype(op, A, M)
        M = M.broadcast_to(A.shape)  # noqa: N806
    if m < n:  # work on the tall transpose
        A = A.mT  # noqa: N806
        M = None if M is None else M.mT  # noqa: N806
    Q = _approximate_basis(A, q, niter, M)  # noqa: N806
    B = Q.mT @ A  # noqa: N806
    if M is not None:
        B = B - Q.mT @ M  # noqa: N806
    U, S, Vh = svd(B, full_matrices=False)  # noqa: N806
    U = Q @ U  # noqa: N806
    return (Vh.mT, S, U) if m < n else (U, S, Vh.mT)


def pca_lowrank(A: Tensor, q: int | None = None, center: bool = True, niter: int = 2) -> tuple:  # noqa: N803
    """``(U, S, V)``: principal component analysis of the data ``A: (*, m, n)`` (m samples, n features) by a
    randomized SVD of rank q (default min(6, m, n)) of A minus its column means (when ``center``). V's columns are
    the principal directions and ``S**2 / (m - 1)`` the variances along them."""
    op = "pca_lowrank"
    check_matrices(op, A)
    m, n = A.shape[-2:]
    if q is None:
        q = min(6, m, n)
    elif not (isinstance(q, int) and 0 <= q <= min(m, n)):
        raise ArgumentError(f"{op}: q(={q}) must be non-negative integer and not greater than min(m, n)={min(m, n)}")
    if not (isinstance(niter, int) and niter >= 0):
        raise ArgumentError(f"{op}: niter(={niter}) must be non-negative integer")
    if center:
        A = A - A.mean(dim=-2, keepdim=True)  # noqa: N806
    return svd_lowrank(A, q, niter=niter)


# ---------------------------------------------------------------- LOBPCG


class LOBPCGState:
    """What a ``tracker`` sees at each step (PyTorch's worker attributes): ``ivars['istep']``,
    ``ivars['converged_count']``, ``tvars['rerr']``, the current ``X``, ``E``, ``R`` and basis ``S`` (Tensors
    for the matrix being solved), the inputs ``A``, ``B``, ``iK`` and the parameter dicts. Setting
    ``bvars['force_stop'] = True`` stops the iteration."""

    def __init__(self, A: Any, B: Any, iK: Any, iparams: dict, fparams: dict, bparams: dict) -> None:  # noqa: N803
        self.A, self.B, self.iK = A, B, iK
        self.iparams, self.fparams, self.bparams = iparams, fparams, bparams
        self.ivars: dict[str, int] = {"istep": 0, "converged_count": 0}
        self.fvars: dict[str, float] = {}
        self.bvars: dict[str, bool] = {"force_stop": False}
        self.tvars: dict[str, Tensor] = {}
        self.X = self.E = self.R = self.S = None


def _orthonormalize(xp: Any, v: Any, b: Any, drop: float, passes: int) -> Any:
    """B-orthonormal columns spanning ``v`` (SVQB, Stathopoulos and Wu 2002): scale the columns, diagonalize their
    Gram matrix and drop the directions whose eigenvalue is below ``drop`` times the largest; repeated ``passes``
    times, as one pass loses orthogonality when v is ill-conditioned."""
    for _ in range(passes):
        if v.shape[-1] == 0:
            return v
        gram = v.T @ (v if b is None else b @ v)
        gram = 0.5 * (gram + gram.T)
        d = xp.sqrt(xp.abs(xp.diagonal(gram)))
        d = xp.where(d > 0, d, 1)
        theta, z = xp.linalg.eigh(gram / d[:, None] / d[None, :])
        keep = theta > drop * max(float(theta.max()), 0.0)
        v = (v / d) @ (z[:, keep] / xp.sqrt(theta[keep]))
    return v


def _ritz(xp: Any, a: Any, s: Any, count: int, largest: bool) -> tuple[Any, Any]:
    """The ``count`` largest (or smallest) Ritz values of A on the B-orthonormal basis ``s`` and their
    coefficients, largest (smallest) first."""
    t = s.T @ (a @ s)
    theta, c = xp.linalg.eigh(0.5 * (t + t.T))
    order = slice(None, -count - 1, -1) if largest else slice(0, count)
    return theta[order], c[:, order]


def _lobpcg_one(xp: Any, a: Any, b: Any, x: Any, ik: Any, k: int, niter: int, tol: float, largest: bool,
                state: LOBPCGState | None, tracker: Callable | None, drop: float, passes: int) -> tuple[Any, Any]:
    """LOBPCG (Knyazev 2001) for one matrix: Rayleigh-Ritz on the B-orthonormalized span of the block X, its
    (preconditioned) residuals W and the previous update P, until the first k Ritz pairs meet PyTorch's
    backward-stable criterion ||r_i|| / (||x_i|| (||A|| + |e_i| ||B||)) < tol, or niter steps."""
    n = x.shape[-1]

    def bmul(v: Any) -> Any:
        return v if b is None else b @ v

    x_norm = float(xp.linalg.norm(x))
    a_norm = float(xp.linalg.norm(a @ x)) / x_norm
    b_norm = float(xp.linalg.norm(bmul(x))) / x_norm
    x = _orthonormalize(xp, x, b, drop, passes)
    if x.shape[-1] < n:
        raise ArgumentError(f"lobpcg: the starting block X has rank {x.shape[-1]} < {n}; give independent columns")
    e, c = _ritz(xp, a, x, n, largest)
    x, p = x @ c, None
    step = 0
    while niter < 0 or step < niter:
        r = a @ x - bmul(x) * e
        rerr = xp.linalg.norm(r, axis=0) / (xp.linalg.norm(x, axis=0) * (a_norm + xp.abs(e) * b_norm))
        ok = (rerr < tol).tolist()
        converged = ok.index(False) if False in ok else len(ok)
        if state is not None:
            state.ivars.update(istep=step + 1, converged_count=converged)
            state.tvars["rerr"] = Tensor._make(rerr)
            state.X, state.E, state.R = Tensor._make(x), Tensor._make(e), Tensor._make(r)
            tracker(state)
            if state.bvars.get("force_stop"):
                break
        if converged >= k:
            break
        w = r if ik is None else ik @ r
        y = w if p is None else xp.concatenate([w, p], axis=1)
        for _ in range(passes):  # B-orthogonal to X, then orthonormal among themselves
            y = y - x @ (x.T @ bmul(y))
        y = _orthonormalize(xp, y, b, drop, passes)
        if y.shape[-1] == 0:  # nothing new to search: stagnated at rounding level
            break
        s = xp.concatenate([x, y], axis=1)
        if state is not None:
            state.S = Tensor._make(s)
        e, c = _ritz(xp, a, s, n, largest)
        x, p = s @ c, y @ c[n:]
        step += 1
    return e[:k], x[:, :k]


class LOBPCG(Function):
    """The k extreme eigenpairs of A from LOBPCG. The gradient (A's only, as in PyTorch) is the symmetric
    eigendecomposition's for those pairs, from a full ``eigh`` of A in backward, with the computed eigenvectors
    in place of eigh's so their signs agree."""

    def __init__(self, run: Callable[[Any], tuple[Any, Any]], k: int, largest: bool) -> None:
        self.run, self.k, self.largest = run, k, largest

    def forward(self, a: Any) -> tuple[Any, Any]:
        e, x = self.run(a)
        self.a, self.x = a, x
        return e, x

    def backward(self, ge: Any, gx: Any) -> Any:
        xp = get_array_module(ge)
        m, k = self.a.shape[-1], self.k
        w, v = xp.linalg.eigh(self.a)
        w, v = w.reshape(-1, m), v.reshape(-1, m, m).copy()
        gw, gv = xp.zeros_like(w), xp.zeros_like(v)
        for i, (xs, ges, gxs) in enumerate(zip(self.x.reshape(-1, m, k), ge.reshape(-1, k), gx.reshape(-1, m, k))):
            order = xp.argsort(w[i])
            index = order[::-1][:k] if self.largest else order[:k]
            v[i][:, index] = xs
            gw[i][index] = ges
            gv[i][:, index] = gxs
        return eigh_backward(xp, w, v, gw, gv).reshape(self.a.shape)


def lobpcg(A: Tensor, k: int | None = None, B: Tensor | None = None, X: Tensor | None = None,  # noqa: N803
           n: int | None = None, iK: Tensor | None = None, niter: int | None = None, tol: float | None = None,  # noqa: N803
           largest: bool | None = None, method: str | None = None, tracker: Callable | None = None,
           ortho_iparams: dict | None = None, ortho_fparams: dict | None = None,
           ortho_bparams: dict | None = None) -> tuple:
    """The k largest (or smallest, ``largest=False``) eigenvalues and eigenvectors of the symmetric (generalized,
    with positive-definite B) problem ``A x = e B x`` by LOBPCG: ``(E: (*, k), X: (*, m, k))``, E largest
    (smallest) first. ``A, B, iK: (*, m, m)`` (iK a preconditioner), ``X: (*, m, n)`` the starting block
    (random, n = k columns, when not given), ``niter`` the step limit (1000; -1 for none), ``tol`` the residual
    tolerance (sqrt of float eps by default). m must be at least 3n.

    Both ``method``s run the orthogonal-basis variant (SVQB orthonormalization with dropping, PyTorch's robust
    'ortho'). Of the ortho parameters, ``ortho_i_max``/``ortho_j_max`` (orthogonalization passes, default 3) and
    ``ortho_tol_drop`` (relative drop tolerance) are used; the others have no effect. When A requires grad it is
    symmetrized first, ``(A + A^T) / 2``, as PyTorch does; B cannot require grad (PyTorch's backward refuses B too).
    """
    op = "lobpcg"
    check_matrices(op, A, square=True)
    m = A.shape[-1]
    for name, t in (("B", B), ("iK", iK)):
        if t is not None and (not isinstance(t, Tensor) or tuple(t.shape[-2:]) != (m, m)):
            raise ShapeError(f"{op}: {name} must be a tensor of shape (*, {m}, {m}) like A, got "
                             f"{tuple(getattr(t, 'shape', ()))}")
    if B is not None and B.requires_grad and is_grad_enabled():
        raise UnsupportedError("the gradient of torch.lobpcg with respect to B is not supported by hubkit (PyTorch's "
                               "lobpcg backward requires B=None too); pass B.detach()")
    k = (1 if X is None else X.shape[-1]) if k is None else k
    n = (k if n is None else n) if X is None else X.shape[-1]
    if not 0 < k <= n:
        raise ArgumentError(f"{op}: k (={k}) must be positive and at most the block size n (={n})")
    if m < 3 * n:
        raise ArgumentError(f"{op}: LOBPCG algorithm is not applicable when the number of A rows (={m}) is smaller "
                            f"than 3 x the number of requested eigenpairs (={n})")
    if method not in (None, "basic", "ortho"):
        raise ArgumentError(f"{op}: method must be 'basic' or 'ortho', got {method!r}")
    if X is not None and tuple(X.shape[-2:]) != (m, n):
        raise ShapeError(f"{op}: X must have shape (*, {m}, n), got {tuple(X.shape)}")
    eps = float(np.finfo(A.dtype).eps)
    tol = eps ** 0.5 if tol is None else float(tol)
    niter = 1000 if niter is None else int(niter)
    largest = True if largest is None else bool(largest)
    iparams = {"m": m, "n": n, "k": k, "niter": niter, **(ortho_iparams or {})}
    fparams = {"tol": tol, **(ortho_fparams or {})}
    bparams = {"largest": largest, **(ortho_bparams or {})}
    passes = int(max(iparams.get("ortho_i_max", 3), iparams.get("ortho_j_max", 3)))
    drop = float(fparams.get("ortho_tol_drop", 10 * eps))
    xp = A._xp
    batch = A.shape[:-2]

    def run(a: Any) -> tuple[Any, Any]:
        flat = a.reshape(-1, m, m)
        count = flat.shape[0]

        def pick(t: Tensor | None, i: int) -> Any:
            return None if t is None else xp.broadcast_to(t.array, batch + t.shape[-2:]).reshape(-1, *t.shape[-2:])[i]

        es, xs = [], []
        for i in range(count):
            start = pick(X, i) if X is not None else randn(m, n, dtype=A.dtype, device=A.device).array
            state = None
            if tracker is not None:
                state = LOBPCGState(Tensor._make(flat[i]), None if B is None else Tensor._make(pick(B, i)),
                                    None if iK is None else Tensor._make(pick(iK, i)), iparams, fparams, bparams)
            e, x = _lobpcg_one(xp, flat[i], pick(B, i), start.astype(a.dtype), pick(iK, i), k, niter, tol, largest,
                               state, tracker, drop, passes)
            es.append(e)
            xs.append(x)
        return xp.stack(es).reshape(batch + (k,)), xp.stack(xs).reshape(batch + (m, k))

    if A.requires_grad and is_grad_enabled():
        A = (A + A.mT) / 2  # noqa: N806
    return LOBPCG(run, k, largest)(A)
