"""Factorizations and what is built on them (hubkit/ops/decompositions.py, householder.py, spectral.py,
least_squares.py, ldl.py, lowrank.py and hubkit.linalg): float64 gradient checks, reconstruction identities,
batch shapes, PyTorch parity of values and gradients, and the errors for inputs they cannot work on.

Singular vectors and eigenvectors are unique only up to sign, so the losses on them are sign-invariant
(squares, outer products, reconstructions); symmetric-input ops see ``a + a^T`` so every perturbation the
finite differences make stays symmetric.
"""

import math

import numpy as np
import pytest
from opcases import case_ids, check_gradient, check_torch, inputs, n
from opcheck import rng_for

import hubkit
import hubkit.linalg as LA
from hubkit.errors import ArgumentError, DTypeError, GradError, LinAlgError, ShapeError, UnsupportedError


def L(t):  # noqa: N802  (torch.linalg or hubkit.linalg)
    return LA if t is hubkit else t.linalg


def well_conditioned(*shape):
    return lambda r: r.standard_normal(shape) * 0.3 + np.eye(shape[-2], shape[-1])


def spd(*shape):
    """Symmetric positive-definite matrices with eigenvalues in about [1, 3]."""
    def make(r):
        x = r.standard_normal(shape)
        return x @ np.swapaxes(x, -1, -2) / shape[-1] + np.eye(shape[-1])

    return make


def triangular(*shape, upper=False):
    def make(r):
        x = r.standard_normal(shape) * 0.5 + 2 * np.eye(shape[-1])
        return np.triu(x) if upper else np.tril(x)

    return make


def pivots(*values):
    return lambda r: np.array(values, dtype=np.int32)


def sym(x):
    return x + x.mT


def deprecated(name):
    """torch.cholesky and torch.qr raise "removed" errors in PyTorch 2.x; hubkit keeps their documented behaviour,
    which PyTorch's linalg functions now give."""
    replacement = {"cholesky": lambda t, a: t.linalg.cholesky(a), "qr": lambda t, a: t.linalg.qr(a)}[name]
    return lambda t, a: getattr(t, name)(a) if t is hubkit else replacement(t, a)


def reconstruct_svd(r):
    k = r.S.shape[-1]
    return (r.U[..., :k] * r.S.unsqueeze(-2)) @ r.Vh[..., :k, :]


CASES = [
    # Cholesky: the input is symmetrized so perturbations stay symmetric
    ("cholesky", lambda t, a: L(t).cholesky(sym(a)), spd(2, 3, 3)),
    ("cholesky-upper", lambda t, a: L(t).cholesky(sym(a), upper=True), spd(3, 3)),
    ("cholesky_ex", lambda t, a: L(t).cholesky_ex(sym(a)).L, spd(3, 3)),
    ("torch.cholesky", lambda t, a: deprecated("cholesky")(t, sym(a)), spd(3, 3)),
    ("cholesky_solve", lambda t, b, f: t.cholesky_solve(b, f.tril()), inputs(n(2, 3, 2), triangular(3, 3))),
    ("cholesky_solve-upper", lambda t, b, f: t.cholesky_solve(b, f.triu(), upper=True),
     inputs(n(3, 2), triangular(3, 3, upper=True))),
    ("cholesky_inverse", lambda t, f: t.cholesky_inverse(f.tril()), triangular(2, 3, 3)),
    ("cholesky_inverse-upper", lambda t, f: t.cholesky_inverse(f.triu(), True), triangular(3, 3, upper=True)),
    # triangular solves
    ("solve_triangular-lower", lambda t, a, b: L(t).solve_triangular(a, b, upper=False),
     inputs(triangular(2, 3, 3), n(3, 2))),
    ("solve_triangular-upper-unit", lambda t, a, b: L(t).solve_triangular(a, b, upper=True, unitriangular=True),
     inputs(triangular(3, 3, upper=True), n(2, 3, 4))),
    ("solve_triangular-right", lambda t, a, b: L(t).solve_triangular(a, b, upper=True, left=False),
     inputs(triangular(3, 3, upper=True), n(2, 3))),
    ("triangular_solve-transpose", lambda t, b, a: t.triangular_solve(b, a, upper=False, transpose=True).solution,
     inputs(n(3, 2), triangular(3, 3))),
    # LU: the packed factor, the unpacked one and solves, for square, wide and tall matrices
    ("lu_factor", lambda t, a: L(t).lu_factor(a).LU, n(2, 4, 4)),
    ("lu_factor_ex-wide", lambda t, a: L(t).lu_factor_ex(a).LU, n(3, 5)),
    ("lu-P-L-U", lambda t, a: L(t).lu(a), n(3, 3)),
    ("lu-tall", lambda t, a: L(t).lu(a), n(2, 5, 3)),
    ("lu-wide", lambda t, a: L(t).lu(a), n(3, 4)),
    ("lu_unpack", lambda t, a: t.lu_unpack(*L(t).lu_factor(a))[1:], n(4, 3)),
    ("lu_solve", lambda t, a, b: L(t).lu_solve(*L(t).lu_factor(a), b), inputs(well_conditioned(2, 3, 3), n(3, 2))),
    ("lu_solve-adjoint", lambda t, a, b: L(t).lu_solve(*L(t).lu_factor(a), b, adjoint=True),
     inputs(well_conditioned(3, 3), n(3, 2))),
    ("lu_solve-right", lambda t, a, b: L(t).lu_solve(*L(t).lu_factor(a), b, left=False),
     inputs(well_conditioned(3, 3), n(2, 3))),
    ("lu_solve-packed-input", lambda t, lu, p, b: L(t).lu_solve(lu, p, b, adjoint=True),
     inputs(well_conditioned(3, 3), pivots(2, 3, 3), n(3, 2))),
    ("torch.lu_solve", lambda t, a, b: t.lu_solve(b, *t.lu(a)), inputs(well_conditioned(3, 3), n(3, 1))),
    # QR and Householder reflectors
    ("qr-tall", lambda t, a: L(t).qr(a), n(2, 4, 3)),
    ("qr-wide", lambda t, a: L(t).qr(a), n(3, 5)),
    ("qr-complete-wide", lambda t, a: L(t).qr(a, mode="complete"), n(2, 3, 4)),
    ("torch.qr", deprecated("qr"), n(4, 2)),
    ("householder_product", lambda t, a, tau: L(t).householder_product(a, tau), inputs(n(2, 4, 3), n(2, 2))),
    ("orgqr", lambda t, a, tau: t.orgqr(a, tau), inputs(n(3, 3), n(3))),
    ("ormqr", lambda t, a, tau, c: t.ormqr(a, tau, c), inputs(n(4, 3), n(3), n(4, 2))),
    ("ormqr-right-transpose", lambda t, a, tau, c: t.ormqr(a, tau, c, left=False, transpose=True),
     inputs(n(2, 3, 2), n(2, 2), n(2, 4, 3))),
    # SVD: sign-invariant functions of the vectors
    ("svd-reconstruct", lambda t, a: reconstruct_svd(L(t).svd(a, full_matrices=False)), n(2, 4, 3)),
    ("svd-U-squared", lambda t, a: L(t).svd(a, full_matrices=False).U ** 2, n(4, 3)),
    ("svd-Vh-squared-wide", lambda t, a: L(t).svd(a, full_matrices=False).Vh ** 2, n(2, 3, 4)),
    ("svd-full-top-pair", lambda t, a: (lambda r: r.U[..., :, :1] @ r.Vh[..., :1, :] * r.S[..., :1, None])(
        L(t).svd(a)), n(4, 3)),
    ("svd-S", lambda t, a: L(t).svd(a).S, n(3, 5)),
    ("torch.svd-V-squared", lambda t, a: t.svd(a).V ** 2, n(4, 3)),
    ("svdvals", lambda t, a: L(t).svdvals(a), n(2, 3, 3)),
    # symmetric eigendecomposition
    ("eigh-vectors-squared", lambda t, a: L(t).eigh(sym(a)).eigenvectors ** 2, n(2, 4, 4)),
    ("eigh-projector", lambda t, a: (lambda v: v[..., :, -1:] @ v[..., :, -1:].mT)(L(t).eigh(sym(a), "U")[1]),
     n(3, 3)),
    ("eigh-values", lambda t, a: L(t).eigh(sym(a)).eigenvalues, n(3, 3)),
    ("eigvalsh", lambda t, a: L(t).eigvalsh(sym(a)), n(2, 3, 3)),
    # matrix functions
    ("matrix_exp", lambda t, a: L(t).matrix_exp(a), n(2, 3, 3)),
    ("matrix_exp-large-norm", lambda t, a: L(t).matrix_exp(a), n(3, 3, scale=4.0)),
    ("torch.matrix_exp", lambda t, a: t.matrix_exp(a), n(2, 2)),
    ("matrix_sqrth", lambda t, a: L(t).matrix_sqrth(sym(a)), spd(2, 3, 3)),
    ("polar", lambda t, a: L(t).polar(a), n(2, 4, 3)),
    # pseudoinverse, least squares, solves with info, condition numbers, tensor solves
    ("pinv", lambda t, a: L(t).pinv(a), n(2, 4, 3)),
    ("pinv-hermitian", lambda t, a: L(t).pinv(sym(a), hermitian=True), n(3, 3)),
    ("pinverse-wide", lambda t, a: t.pinverse(a), n(2, 4)),
    ("lstsq-tall", lambda t, a, b: L(t).lstsq(a, b).solution, inputs(n(2, 5, 3), n(1, 5, 2))),
    ("lstsq-wide-vector", lambda t, a, b: L(t).lstsq(a, b).solution, inputs(n(3, 4), n(3))),
    ("lstsq-gelsd-residuals", lambda t, a, b: L(t).lstsq(a, b, driver="gelsd")[:2], inputs(n(5, 3), n(5, 2))),
    ("inv_ex", lambda t, a: L(t).inv_ex(a).inverse, well_conditioned(2, 3, 3)),
    ("solve_ex", lambda t, a, b: L(t).solve_ex(a, b).result, inputs(well_conditioned(3, 3), n(3, 2))),
    ("cond-2", lambda t, a: L(t).cond(a), well_conditioned(2, 3, 3)),
    ("cond-fro", lambda t, a: L(t).cond(a, "fro"), well_conditioned(3, 3)),
    ("cond-1", lambda t, a: L(t).cond(a, 1), well_conditioned(3, 3)),
    ("tensorinv", lambda t, a: L(t).tensorinv(a, ind=1), well_conditioned(6, 2, 3)),
    ("tensorsolve", lambda t, a, b: L(t).tensorsolve(a, b), inputs(well_conditioned(2, 3, 6), n(2, 3))),
    ("vander", lambda t, x: L(t).vander(x, N=4), n(2, 3)),
]

# PyTorch 2.14's own backward of cond with these norms fails (an in-place write to inv_ex's output): forward only
FORWARD_ONLY = ("cond-fro", "cond-1", "ldl_factor")

# torch's cholesky_solve/cholesky_inverse gradient treats the whole factor as A's (not only its triangle), so the
# full-factor gradients are compared with torch but cannot match central differences (entries that are not read)
TORCH_ONLY = [
    ("cholesky_solve-full-factor", lambda t, b, f: t.cholesky_solve(b, f), inputs(n(3, 2), triangular(3, 3))),
    ("cholesky_inverse-full-factor", lambda t, f: t.cholesky_inverse(f, upper=True), triangular(3, 3, upper=True)),
    ("ldl_factor", lambda t, a: L(t).ldl_factor(sym(a)).LD, n(2, 4, 4)),
]


@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=case_ids(CASES))
def test_gradient_matches_central_differences(name, fn, make):
    check_gradient(name, fn, make)


@pytest.mark.parity
@pytest.mark.filterwarnings("ignore:torch.* is deprecated:UserWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make"), CASES + TORCH_ONLY, ids=case_ids(CASES + TORCH_ONLY))
def test_forward_and_backward_match_torch(name, fn, make, dtype):
    check_torch(name, fn, make, dtype, rtol=1e-3 if dtype == np.float32 else None,
                atol=1e-4 if dtype == np.float32 else None, check_backward=name not in FORWARD_ONLY)


@pytest.mark.gpu
@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=case_ids(CASES))
def test_cuda_gives_the_cpu_values_and_gradients(name, fn, make):
    from test_ops_gpu import _run

    made = make(rng_for(name))
    arrays = [np.asarray(made)] if isinstance(made, np.ndarray) else [np.asarray(a) for a in made]
    (cpu_out, cpu_grad), (gpu_out, gpu_grad) = _run(fn, arrays, "cpu"), _run(fn, arrays, "cuda")
    for mine, reference in zip(gpu_out + gpu_grad, cpu_out + cpu_grad):
        if reference is None:
            assert mine is None
        else:  # cuSOLVER and LAPACK round differently
            np.testing.assert_allclose(mine, reference, rtol=1e-7, atol=1e-9, err_msg=f"{name} differs on CUDA")


# ---------------------------------------------------------------- values, identities and shapes


def _rand(name, *shape):
    return rng_for(name).standard_normal(shape)


def test_factorizations_reconstruct_their_input_with_batch_shapes():
    a = hubkit.tensor(_rand("recon", 2, 3, 5, 4))
    P, Lo, U = LA.lu(a)  # noqa: N806
    assert (P.shape, Lo.shape, U.shape) == ((2, 3, 5, 5), (2, 3, 5, 4), (2, 3, 4, 4))
    np.testing.assert_allclose((P @ Lo @ U).numpy(), a.numpy(), atol=1e-12)
    Q, R = LA.qr(a, mode="complete")  # noqa: N806
    assert (Q.shape, R.shape) == ((2, 3, 5, 5), (2, 3, 5, 4))
    np.testing.assert_allclose((Q @ R).numpy(), a.numpy(), atol=1e-12)
    np.testing.assert_allclose((Q.mT @ Q).numpy(), np.broadcast_to(np.eye(5), (2, 3, 5, 5)), atol=1e-12)
    U, S, Vh = LA.svd(a)  # noqa: N806
    assert (U.shape, S.shape, Vh.shape) == ((2, 3, 5, 5), (2, 3, 4), (2, 3, 4, 4))
    np.testing.assert_allclose(reconstruct_svd(LA.svd(a)).numpy(), a.numpy(), atol=1e-12)
    assert (np.diff(S.numpy(), axis=-1) <= 0).all()
    h, tau = hubkit.geqrf(a)
    assert (h.shape, tau.shape) == ((2, 3, 5, 4), (2, 3, 4))
    np.testing.assert_allclose(LA.householder_product(h, tau).numpy(), LA.qr(a).Q.numpy(), atol=1e-12)
    c = hubkit.tensor(_rand("recon-c", 2, 3, 5, 2))
    np.testing.assert_allclose(hubkit.ormqr(h, tau, c, transpose=True).numpy(),
                               (LA.qr(a, mode="complete").Q.mT @ c).numpy(), atol=1e-12)
    sym_a = a[..., :4, :] + a[..., :4, :].mT
    w, V = LA.eigh(sym_a)  # noqa: N806
    np.testing.assert_allclose((V * w.unsqueeze(-2) @ V.mT).numpy(), sym_a.numpy(), atol=1e-12)
    spd_a = sym_a @ sym_a + hubkit.eye(4, dtype=hubkit.float64)
    chol = LA.cholesky(spd_a)
    np.testing.assert_allclose((chol @ chol.mT).numpy(), spd_a.numpy(), atol=1e-10)
    root = LA.matrix_sqrth(spd_a)
    np.testing.assert_allclose((root @ root).numpy(), spd_a.numpy(), atol=1e-10)
    Up, H = LA.polar(a)  # noqa: N806
    np.testing.assert_allclose((Up @ H).numpy(), a.numpy(), atol=1e-12)
    ld, piv = LA.ldl_factor(sym_a)
    b = hubkit.tensor(_rand("recon-b", 4, 3))
    np.testing.assert_allclose((sym_a @ LA.ldl_solve(ld, piv, b)).numpy(), np.broadcast_to(b.numpy(), (2, 3, 4, 3)),
                               atol=1e-10)


def test_solves_broadcast_batch_dims():
    a = hubkit.tensor(np.tril(_rand("bcast", 3, 3)) + 3 * np.eye(3))
    b = hubkit.tensor(_rand("bcast-b", 2, 4, 3, 2))
    x = LA.solve_triangular(a, b, upper=False)
    assert x.shape == (2, 4, 3, 2)
    np.testing.assert_allclose((a @ x).numpy(), b.numpy(), atol=1e-12)
    lu_data, piv = LA.lu_factor(a)
    np.testing.assert_allclose(LA.lu_solve(lu_data, piv, b).numpy(), x.numpy(), atol=1e-12)
    factor = LA.cholesky(a @ a.mT)
    np.testing.assert_allclose((a @ a.mT @ hubkit.cholesky_solve(b, factor)).numpy(), b.numpy(), atol=1e-10)


def test_blocked_lu_and_substitution_on_matrices_larger_than_a_block():
    a = _rand("blocked", 2, 70, 45)
    P, Lo, U = LA.lu(hubkit.tensor(a))  # noqa: N806
    np.testing.assert_allclose((P @ Lo @ U).numpy(), a, atol=1e-12)
    assert np.abs(np.tril(Lo.numpy(), -1)).max() <= 1.0  # partial pivoting bounds the multipliers
    square = hubkit.tensor(_rand("blocked-square", 70, 70))
    b = hubkit.tensor(_rand("blocked-b", 70, 3))
    np.testing.assert_allclose(LA.lu_solve(*LA.lu_factor(square), b).numpy(), LA.solve(square, b).numpy(),
                               atol=1e-9)
    upper = hubkit.tensor(np.triu(square.numpy()) + 10 * np.eye(70))
    np.testing.assert_allclose((upper @ LA.solve_triangular(upper, b, upper=True)).numpy(), b.numpy(), atol=1e-12)


def test_float32_inputs_give_float32_results():
    a = hubkit.tensor(_rand("f32", 3, 3).astype(np.float32)) + 3 * hubkit.eye(3)
    spd_a = a @ a.mT
    results = [LA.cholesky(spd_a), LA.lu_factor(a).LU, LA.qr(a).Q, LA.svd(a).S, LA.eigh(spd_a).eigenvalues,
               LA.matrix_exp(a), LA.pinv(a), LA.lstsq(a, a).solution, LA.inv_ex(a).inverse, LA.matrix_sqrth(spd_a)]
    assert all(r.dtype == np.float32 for r in results)
    assert LA.eig(a).eigenvalues.dtype == np.complex64
    assert LA.lu_factor(a).pivots.dtype == np.int32 and LA.matrix_rank(a).dtype == np.int64


def test_tensor_methods_match_the_functions():
    a = hubkit.tensor(_rand("methods", 4, 4)) + 3 * hubkit.eye(4, dtype=hubkit.float64)
    b = hubkit.tensor(_rand("methods-b", 4, 2))
    spd_a = a @ a.mT
    f = spd_a.cholesky()
    np.testing.assert_allclose(b.cholesky_solve(f).numpy(), hubkit.cholesky_solve(b, f).numpy())
    np.testing.assert_allclose(f.cholesky_inverse().numpy(), LA.inv(spd_a).numpy(), atol=1e-12)
    np.testing.assert_allclose(b.triangular_solve(f, upper=False).solution.numpy(),
                               LA.solve_triangular(f, b, upper=False).numpy())
    lu_data, piv = a.lu()
    np.testing.assert_allclose(b.lu_solve(lu_data, piv).numpy(), LA.solve(a, b).numpy(), atol=1e-12)
    np.testing.assert_allclose(a.qr().Q.numpy(), LA.qr(a).Q.numpy())
    np.testing.assert_allclose(a.svd().S.numpy(), LA.svdvals(a).numpy())
    np.testing.assert_allclose(a.pinverse().numpy(), LA.inv(a).numpy(), atol=1e-12)
    np.testing.assert_allclose(a.matrix_exp().numpy(), LA.matrix_exp(a).numpy())
    h, tau = a.geqrf()
    np.testing.assert_allclose(h.orgqr(tau).numpy(), LA.qr(a).Q.numpy(), atol=1e-12)
    np.testing.assert_allclose(h.ormqr(tau, b).numpy(), (LA.qr(a).Q @ b).numpy(), atol=1e-12)


def test_deprecated_svd_without_uv_returns_zero_filled_factors():
    a = hubkit.tensor(_rand("svd-no-uv", 2, 4, 3))
    U, S, V = hubkit.svd(a, compute_uv=False)  # noqa: N806
    assert U.shape == (2, 4, 4) and V.shape == (2, 3, 3) and not U.numpy().any() and not V.numpy().any()
    np.testing.assert_allclose(S.numpy(), LA.svdvals(a).numpy())


def test_lu_unpack_parts_not_asked_for_are_empty():
    lu_data, piv = LA.lu_factor(hubkit.tensor(_rand("unpack", 3, 3)))
    P, Lo, U = hubkit.lu_unpack(lu_data, piv, unpack_data=False)  # noqa: N806
    assert P.shape == (3, 3) and Lo.shape == (0,) and U.shape == (0,)
    assert hubkit.lu_unpack(lu_data, piv, unpack_pivots=False).P.shape == (0,)
    assert LA.lu(hubkit.tensor(_rand("unpack", 3, 3)), pivot=False).P.shape == (0,)


def test_lstsq_reports_rank_and_minimum_norm_solution_of_a_rank_deficient_matrix():
    a = _rand("rank-deficient", 5, 3)
    a[:, 2] = a[:, 0] + a[:, 1]
    b = _rand("rank-deficient-b", 5, 2)
    result = LA.lstsq(hubkit.tensor(a), hubkit.tensor(b), driver="gelsd")
    assert result.rank.item() == 2 and result.residuals.shape == (0,) and result.singular_values.shape == (3,)
    np.testing.assert_allclose(result.solution.numpy(), np.linalg.pinv(a) @ b, atol=1e-10)
    default = LA.lstsq(hubkit.tensor(a), hubkit.tensor(b))
    assert default.rank.item() == 2 and default.singular_values.shape == (0,)
    assert LA.lstsq(hubkit.tensor(a), hubkit.tensor(b), driver="gels").rank.shape == (0,)
    assert LA.matrix_rank(hubkit.tensor(a)).item() == 2
    assert LA.matrix_rank(hubkit.tensor(a), atol=10.0, rtol=0.0).item() <= 1


def test_pinv_tolerances_drop_small_singular_values():
    a = hubkit.tensor(np.diag([1.0, 1e-3, 1e-17]))  # the last is below the default rtol, eps * 3
    np.testing.assert_allclose(np.diag(LA.pinv(a).numpy()), [1.0, 1e3, 0.0])
    np.testing.assert_allclose(np.diag(LA.pinv(a, rtol=1e-2).numpy()), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(np.diag(LA.pinv(a, atol=1e-4).numpy()), [1.0, 1e3, 0.0])
    np.testing.assert_allclose(np.diag(LA.pinv(a, hermitian=True, atol=hubkit.tensor(0.5)).numpy()), [1.0, 0, 0])


def test_inverse_and_solve_ex_report_singular_matrices_in_info():
    a = hubkit.tensor(np.stack([np.eye(3), np.ones((3, 3))]))
    inverse, info = LA.inv_ex(a)
    assert info.tolist() == [0, 2] and info.dtype == np.int32
    np.testing.assert_allclose(inverse[0].numpy(), np.eye(3))
    assert np.isnan(inverse[1].numpy()).all()
    result, info = LA.solve_ex(a, hubkit.ones(2, 3, 1, dtype=hubkit.float64))
    assert info.tolist() == [0, 2]
    with pytest.raises(LinAlgError, match=r"\(Batch element 1\): The diagonal element 2 is zero"):
        LA.inv_ex(a, check_errors=True)
    with pytest.raises(LinAlgError, match="solve_ex: .*singular"):
        LA.solve_ex(a, hubkit.ones(2, 3, 1, dtype=hubkit.float64), check_errors=True)
    _, _, lu_info = LA.lu_factor_ex(a)
    assert lu_info.tolist() == [0, 2]
    assert math.isinf(LA.cond(a, "fro")[1].item()) and math.isfinite(LA.cond(a, "fro")[0].item())


def test_cholesky_ex_names_the_failing_leading_minor():
    a = hubkit.tensor(np.stack([np.eye(3), [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]]))
    factor, info = LA.cholesky_ex(a)
    assert info.tolist() == [0, 2]
    np.testing.assert_allclose(factor[0].numpy(), np.eye(3))


def test_eig_returns_complex_eigenpairs_of_a_real_matrix():
    a = hubkit.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=hubkit.float64)  # a rotation: eigenvalues +-i
    w, v = LA.eig(a)
    assert w.dtype == np.complex128
    np.testing.assert_allclose(sorted(w.numpy().imag), [-1.0, 1.0])
    np.testing.assert_allclose(a.numpy() @ v.numpy(), v.numpy() * w.numpy()[None, :], atol=1e-12)
    np.testing.assert_allclose(LA.eigvals(a).numpy(), w.numpy())


def test_repeated_singular_values_give_finite_value_gradients_and_nan_vector_gradients():
    # PyTorch's behaviour: gradients through S (or svdvals) are finite; through U they divide by s_i^2 - s_j^2 = 0
    a = hubkit.eye(3, dtype=hubkit.float64, requires_grad=True)
    LA.svd(a).S.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.eye(3))
    b = hubkit.eye(3, dtype=hubkit.float64, requires_grad=True)
    (LA.svd(b).U ** 2 * hubkit.tensor(_rand("repeated", 3, 3))).sum().backward()
    assert not np.isfinite(b.grad.numpy()).all()
    c = hubkit.eye(3, dtype=hubkit.float64, requires_grad=True)
    (LA.pinv(c) * hubkit.tensor(_rand("repeated-pinv", 3, 3))).sum().backward()
    assert np.isfinite(c.grad.numpy()).all()  # pinv's closed form does not divide by gaps
    d = hubkit.eye(3, dtype=hubkit.float64, requires_grad=True)
    LA.matrix_sqrth(d).sum().backward()
    np.testing.assert_allclose(d.grad.numpy(), 0.5 * np.ones((3, 3)))


def test_svd_lowrank_and_pca_lowrank_recover_a_low_rank_matrix_repeatably():
    r = rng_for("lowrank")
    a = hubkit.tensor(r.standard_normal((2, 8, 3)) @ r.standard_normal((2, 3, 6)))
    hubkit.manual_seed(0)
    U, S, V = hubkit.svd_lowrank(a, q=4)  # noqa: N806
    assert (U.shape, S.shape, V.shape) == ((2, 8, 4), (2, 4), (2, 6, 4))
    np.testing.assert_allclose(S[..., :3].numpy(), LA.svdvals(a)[..., :3].numpy(), rtol=1e-10)
    np.testing.assert_allclose(((U * S.unsqueeze(-2)) @ V.mT).numpy(), a.numpy(), atol=1e-10)
    hubkit.manual_seed(0)
    np.testing.assert_array_equal(hubkit.svd_lowrank(a, q=4)[0].numpy(), U.numpy())
    wide = a.mT
    Uw, Sw, Vw = hubkit.svd_lowrank(wide, q=3)  # noqa: N806
    assert Uw.shape == (2, 6, 3) and Vw.shape == (2, 8, 3)
    np.testing.assert_allclose(((Uw * Sw.unsqueeze(-2)) @ Vw.mT).numpy(), wide.numpy(), atol=1e-10)
    centered = a - a.mean(-2, keepdim=True)
    Up, Sp, Vp = hubkit.pca_lowrank(a, q=3)  # noqa: N806
    np.testing.assert_allclose(((Up * Sp.unsqueeze(-2)) @ Vp.mT).numpy(), centered.numpy(), atol=1e-10)
    x = hubkit.tensor(a.numpy(), requires_grad=True)
    hubkit.svd_lowrank(x, q=3)[1].sum().backward()  # d(sum of singular values) = U V^T
    u, _, vh = np.linalg.svd(a.numpy(), full_matrices=False)
    np.testing.assert_allclose(x.grad.numpy(), u[..., :3] @ vh[..., :3, :], atol=1e-8)


def _spectrum_matrix(name, values):
    q, _ = np.linalg.qr(rng_for(name).standard_normal((len(values), len(values))))
    return (q * np.asarray(values, dtype=float)) @ q.T


def test_lobpcg_finds_extreme_eigenpairs_and_their_gradient():
    a = _spectrum_matrix("lobpcg", np.arange(1.0, 13.0))
    hubkit.manual_seed(0)
    e, x = hubkit.lobpcg(hubkit.tensor(a), k=2)
    np.testing.assert_allclose(e.numpy(), [12.0, 11.0], rtol=1e-8)
    np.testing.assert_allclose(a @ x.numpy(), x.numpy() * e.numpy(), atol=1e-6)
    e, _ = hubkit.lobpcg(hubkit.tensor(a), k=3, largest=False)
    np.testing.assert_allclose(e.numpy(), [1.0, 2.0, 3.0], rtol=1e-8)
    b = np.diag(np.linspace(1.0, 2.0, 12))
    e, x = hubkit.lobpcg(hubkit.tensor(a), k=1, B=hubkit.tensor(b))
    np.testing.assert_allclose(a @ x.numpy(), b @ x.numpy() * e.numpy(), atol=1e-6)
    steps = []
    hubkit.lobpcg(hubkit.tensor(a), k=1, tracker=lambda s: steps.append(s.ivars["istep"]), niter=3, tol=0.0)
    assert steps == [1, 2, 3]  # PyTorch's numbering: the first Rayleigh-Ritz step is 1
    w = _rand("lobpcg-w", 12, 2)
    A1 = hubkit.tensor(a, requires_grad=True)  # noqa: N806
    e, x = hubkit.lobpcg(A1, k=2)
    (e.sum() + (x ** 2 * hubkit.tensor(w)).sum()).backward()
    A2 = hubkit.tensor(a, requires_grad=True)  # noqa: N806
    values, vectors = LA.eigh(A2)
    (values[-2:].sum() + (vectors[:, [-1, -2]] ** 2 * hubkit.tensor(w)).sum()).backward()
    np.testing.assert_allclose(A1.grad.numpy(), A2.grad.numpy(), atol=1e-6)


# ---------------------------------------------------------------- bad input


def test_cholesky_of_a_matrix_that_is_not_positive_definite_names_the_minor_and_batch_element():
    bad = np.stack([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(LinAlgError, match=r"linalg.cholesky: \(Batch element 1\): .*the leading minor of order 2 "
                                          r"is not positive-definite"):
        LA.cholesky(hubkit.tensor(bad))
    with pytest.raises(LinAlgError, match="leading minor of order 1"):
        hubkit.cholesky(-hubkit.eye(2))
    with pytest.raises(LinAlgError, match="cholesky_ex"):
        LA.cholesky_ex(hubkit.tensor(bad), check_errors=True)


def test_shape_and_dtype_errors_say_what_was_expected():
    with pytest.raises(ShapeError, match="must be batches of square matrices, but they are 2 by 3 matrices"):
        LA.cholesky(hubkit.ones(2, 3))
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        LA.qr(hubkit.ones(3))
    with pytest.raises(DTypeError, match="expected a float32 or float64 tensor, got int64"):
        LA.svd(hubkit.tensor([[1, 2], [3, 4]]))
    with pytest.raises(DTypeError, match="same dtype"):
        LA.solve_triangular(hubkit.eye(2), hubkit.ones(2, 1, dtype=hubkit.float64), upper=True)
    with pytest.raises(ShapeError, match="incompatible shapes"):
        LA.solve_triangular(hubkit.eye(2), hubkit.ones(3, 1), upper=True)
    with pytest.raises(ShapeError, match="batch dims"):
        LA.solve_triangular(hubkit.ones(2, 2, 2), hubkit.ones(3, 2, 1), upper=True)
    with pytest.raises(ShapeError, match="at least as many rows as columns"):
        LA.polar(hubkit.ones(2, 3))
    with pytest.raises(ShapeError, match="greater than or equal to input.shape"):
        LA.householder_product(hubkit.ones(2, 3), hubkit.ones(2))
    with pytest.raises(ShapeError, match="tensorinv: Expected A to satisfy"):
        LA.tensorinv(hubkit.ones(2, 3, 4), ind=1)
    with pytest.raises(ShapeError, match="do not fit"):
        LA.lstsq(hubkit.ones(3, 2), hubkit.ones(4, 1))


def test_argument_errors_name_the_accepted_values():
    a = hubkit.eye(3)
    with pytest.raises(ArgumentError, match="unrecognized mode 'raw'"):
        LA.qr(a, mode="raw")
    with pytest.raises(ArgumentError, match="Expected UPLO argument to be 'L' or 'U', but got 'X'"):
        LA.eigh(a, UPLO="X")
    with pytest.raises(ArgumentError, match="driver` should be one of"):
        LA.lstsq(a, a, driver="gesv")
    with pytest.raises(ArgumentError, match="only supported on CUDA"):
        LA.svd(a, driver="gesvd")
    with pytest.raises(ArgumentError, match="N must be greater than 1"):
        LA.vander(hubkit.ones(3), N=1)
    with pytest.raises(ArgumentError, match="strictly positive integer"):
        LA.tensorinv(a, ind=0)
    with pytest.raises(ArgumentError, match="smaller than 3 x the number of requested eigenpairs"):
        hubkit.lobpcg(hubkit.eye(5), k=2)
    with pytest.raises(ArgumentError, match="q\\(=4\\) must be non-negative integer"):
        hubkit.pca_lowrank(hubkit.ones(3, 3), q=4)
    with pytest.raises(ArgumentError, match="rcond is an alias of rtol"):
        LA.pinv(a, 0.1, rtol=0.1)


def test_singular_lu_factor_raises_and_lu_factor_ex_does_not():
    with pytest.raises(LinAlgError, match=r"lu_factor: U\[2,2\] is zero"):
        LA.lu_factor(hubkit.ones(2, 2))
    assert LA.lu_factor_ex(hubkit.ones(2, 2)).info.item() == 2
    assert hubkit.lu(hubkit.ones(2, 2), get_infos=True)[2].item() == 2
    with pytest.raises(LinAlgError, match="ldl_factor: .*diagonal element 1 of D is zero"):
        LA.ldl_factor(hubkit.zeros(2, 2))


def test_gradients_pytorch_does_not_define_raise():
    a = hubkit.tensor(_rand("no-grad", 4, 3), requires_grad=True)
    with pytest.raises(GradError, match="mode='r'"):
        LA.qr(a, mode="r").R.sum().backward()
    with pytest.raises(GradError, match="mode='complete' and nrows > ncols"):
        LA.qr(a, mode="complete").Q.sum().backward()
    with pytest.raises(GradError, match="derivative for 'geqrf' is not implemented"):
        hubkit.geqrf(a).a.sum().backward()
    s = hubkit.tensor(np.eye(3) * 2, requires_grad=True)
    with pytest.raises(GradError, match="ldl_factor is not implemented"):
        LA.ldl_factor(s).LD.sum().backward()
    with pytest.raises(UnsupportedError, match="gradient of torch.linalg.eig is not supported"):
        LA.eig(s)
    with hubkit.no_grad():
        assert LA.eigvals(s).dtype == np.complex128


@pytest.mark.parity
def test_every_torch_linalg_function_exists():
    import torch

    names = [n for n in dir(torch.linalg) if not n.startswith("_") and callable(getattr(torch.linalg, n))]
    assert [n for n in names if not hasattr(LA, n)] == []


@pytest.mark.parity
def test_values_whose_sign_is_free_match_torch_up_to_sign():
    import torch

    a = _rand("signs", 2, 5, 3)
    u, s, vh = LA.svd(hubkit.tensor(a), full_matrices=False)
    tu, ts, tvh = torch.linalg.svd(torch.from_numpy(a), full_matrices=False)
    signs = np.sign(np.sum(u.numpy() * tu.numpy(), axis=-2, keepdims=True))
    np.testing.assert_allclose(u.numpy() * signs, tu.numpy(), atol=1e-10)
    np.testing.assert_allclose(vh.numpy() * np.swapaxes(signs, -1, -2), tvh.numpy(), atol=1e-10)
    np.testing.assert_allclose(s.numpy(), ts.numpy(), rtol=1e-12)
    sym_a = a[:, :3] + np.swapaxes(a[:, :3], -1, -2)
    w, v = LA.eigh(hubkit.tensor(sym_a))
    tw, tv = torch.linalg.eigh(torch.from_numpy(sym_a))
    np.testing.assert_allclose(np.abs(v.numpy()), np.abs(tv.numpy()), atol=1e-10)
    np.testing.assert_allclose(w.numpy(), tw.numpy(), rtol=1e-12)
    w, v = LA.eig(hubkit.tensor(a[0, :3]))
    tw, _ = torch.linalg.eig(torch.from_numpy(a[0, :3]))
    np.testing.assert_allclose(np.sort_complex(w.numpy()), np.sort_complex(tw.numpy()), atol=1e-12)
    ld, piv = LA.ldl_factor(hubkit.tensor(sym_a))
    tld, tpiv = torch.linalg.ldl_factor(torch.from_numpy(sym_a))
    np.testing.assert_array_equal(piv.numpy(), tpiv.numpy())
    lu_data, lu_piv = LA.lu_factor(hubkit.tensor(a))
    np.testing.assert_array_equal(lu_piv.numpy(), torch.linalg.lu_factor(torch.from_numpy(a)).pivots.numpy())
    result = LA.lstsq(hubkit.tensor(a), hubkit.tensor(a[..., :2]), driver="gelsd")
    expected = torch.linalg.lstsq(torch.from_numpy(a), torch.from_numpy(a[..., :2]), driver="gelsd")
    for mine, theirs in zip(result, expected):
        assert tuple(mine.shape) == tuple(theirs.shape)
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-10)
    assert LA.matrix_rank(hubkit.tensor(a)).tolist() == torch.linalg.matrix_rank(torch.from_numpy(a)).tolist()


@pytest.mark.parity
def test_lobpcg_gradient_matches_torch():
    import torch

    a = _spectrum_matrix("lobpcg-torch", np.arange(1.0, 13.0))
    w = _rand("lobpcg-torch-w", 12, 2)
    mine = hubkit.tensor(a, requires_grad=True)
    e, x = hubkit.lobpcg(mine, k=2)
    (e.sum() + (x ** 2 * hubkit.tensor(w)).sum()).backward()
    theirs = torch.from_numpy(a).requires_grad_()
    te, tx = torch.lobpcg(theirs, k=2)
    (te.sum() + (tx ** 2 * torch.from_numpy(w)).sum()).backward()
    np.testing.assert_allclose(e.detach().numpy(), te.detach().numpy(), rtol=1e-8)
    np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), atol=1e-6)
