"""Products and LAPACK-style ops (hubkit/ops/linalg.py): the add* forms, dot/inner/outer, tensordot,
chain_matmul, einsum, matrix_power, inverse, det, slogdet, logdet; gradients and PyTorch parity."""

import numpy as np
import pytest
from opcases import case_ids, check_gradient, check_torch, inputs, n

import hubkit
from hubkit.errors import DTypeError, LinAlgError, ShapeError


def well_conditioned(*shape):
    """Square matrices near the identity (far from singular)."""
    return lambda r: r.standard_normal(shape) * 0.3 + np.eye(shape[-1])


CASES = [
    ("addmm", lambda t, i, a, b: t.addmm(i, a, b, beta=0.5, alpha=2), inputs(n(3), n(2, 4), n(4, 3))),
    ("addmm-beta0", lambda t, i, a, b: t.addmm(i, a, b, beta=0), inputs(n(2, 3), n(2, 4), n(4, 3))),
    ("addmv", lambda t, i, a, v: t.addmv(i, a, v, alpha=-1), inputs(n(2), n(2, 3), n(3))),
    ("addr", lambda t, i, a, b: t.addr(i, a, b, beta=2), inputs(n(2, 3), n(2), n(3))),
    ("addbmm", lambda t, i, a, b: t.addbmm(i, a, b), inputs(n(2, 2), n(3, 2, 4), n(3, 4, 2))),
    ("baddbmm", lambda t, i, a, b: t.baddbmm(i, a, b, alpha=0.5), inputs(n(3, 2, 2), n(3, 2, 4), n(3, 4, 2))),
    ("dot", lambda t, a, b: t.dot(a, b), inputs(n(4), n(4))),
    ("vdot", lambda t, a, b: t.vdot(a, b), inputs(n(3), n(3))),
    ("inner", lambda t, a, b: t.inner(a, b), inputs(n(2, 3), n(4, 3))),
    ("inner-scalar", lambda t, a, b: t.inner(a, b), inputs(n(), n(2))),
    ("outer", lambda t, a, b: t.outer(a, b), inputs(n(3), n(2))),
    ("ger", lambda t, a, b: t.ger(a, b), inputs(n(2), n(2))),
    ("mv", lambda t, a, v: t.mv(a, v), inputs(n(2, 3), n(3))),
    ("tensordot-int", lambda t, a, b: t.tensordot(a, b, 2), inputs(n(2, 3, 4), n(3, 4, 2))),
    ("tensordot-lists", lambda t, a, b: t.tensordot(a, b, ([0, 2], [1, 0])), inputs(n(2, 3, 4), n(4, 2, 3))),
    ("chain_matmul", lambda t, a, b, c: t.chain_matmul(a, b, c), inputs(n(2, 5), n(5, 1), n(1, 3))),
    ("einsum-matmul", lambda t, a, b: t.einsum("bij,bjk->bik", a, b), inputs(n(2, 2, 3), n(2, 3, 2))),
    ("einsum-trace", lambda t, a: t.einsum("ii", a), inputs(n(3, 3))),
    ("einsum-diagonal", lambda t, a: t.einsum("ii->i", a), inputs(n(3, 3))),
    ("einsum-outer-implicit", lambda t, a, b: t.einsum("i,j", a, b), inputs(n(3), n(2))),
    ("einsum-sum-out", lambda t, a, b: t.einsum("ij,j->", a, b), inputs(n(2, 3), n(3))),
    ("einsum-ellipsis", lambda t, a, b: t.einsum("...ij,...jk", a, b), inputs(n(2, 2, 3), n(3, 2))),
    ("einsum-broadcast-ellipsis", lambda t, a, b: t.einsum("b...,b...->b...", a, b), inputs(n(2, 1, 3), n(2, 4, 1))),
    ("einsum-three", lambda t, a, b, c: t.einsum("ij,jk,kl->il", a, b, c), inputs(n(2, 3), n(3, 2), n(2, 2))),
    ("einsum-list", lambda t, a, b: t.einsum("i,i", [a, b]), inputs(n(3), n(3))),
    ("einsum-only-here", lambda t, a, b: t.einsum("ij,k->jk", a, b), inputs(n(2, 3), n(2))),
    ("matrix_power-3", lambda t, a: t.matrix_power(a, 3), inputs(n(2, 3, 3))),
    ("matrix_power-0", lambda t, a: t.matrix_power(a, 0) * a, inputs(n(3, 3))),
    ("matrix_power-neg", lambda t, a: t.matrix_power(a, -2), inputs(well_conditioned(3, 3))),
    ("inverse", lambda t, a: t.inverse(a), inputs(well_conditioned(2, 3, 3))),
    ("det", lambda t, a: t.det(a), inputs(n(2, 3, 3))),
    ("slogdet", lambda t, a: t.slogdet(a).logabsdet, inputs(n(3, 3))),
    ("logdet", lambda t, a: t.logdet(a), inputs(well_conditioned(3, 3))),
]


@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=case_ids(CASES))
def test_gradient_matches_central_differences(name, fn, make):
    check_gradient(name, fn, make)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=case_ids(CASES))
def test_forward_and_backward_match_torch(name, fn, make, dtype):
    check_torch(name, fn, make, dtype, rtol=1e-4 if dtype == np.float32 else None)


def test_det_gradient_of_a_singular_matrix_is_the_cofactor_matrix():
    a = hubkit.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=hubkit.float64, requires_grad=True)
    d = hubkit.det(a)
    assert abs(d.item()) < 1e-12
    d.backward()
    np.testing.assert_allclose(a.grad.numpy(), [[4.0, -2.0], [-2.0, 1.0]], atol=1e-12)


def test_slogdet_sign_and_logdet_of_negative_determinant():
    a = hubkit.tensor([[0.0, 1.0], [1.0, 0.0]])
    sign, logabs = hubkit.slogdet(a)
    assert sign.item() == -1.0 and logabs.item() == 0.0
    assert np.isnan(hubkit.logdet(a).item())


def test_method_forms_and_inplace_variants():
    a = hubkit.tensor(np.arange(6.0).reshape(2, 3))
    b = hubkit.tensor(np.ones((3, 2)))
    i = hubkit.ones(2, 2)
    np.testing.assert_array_equal(i.addmm(a, b).numpy(), hubkit.addmm(i, a, b).numpy())
    alias = i.data
    i.addmm_(a, b, alpha=2)
    np.testing.assert_array_equal(alias.numpy(), 1 + 2 * (a.numpy() @ b.numpy()))
    v = hubkit.zeros(2)
    v.addmv_(a, hubkit.ones(3))
    np.testing.assert_array_equal(v.numpy(), [3.0, 12.0])
    m = hubkit.tensor([[2.0, 0.0], [0.0, 4.0]])
    np.testing.assert_allclose(m.inverse().numpy(), [[0.5, 0.0], [0.0, 0.25]])
    assert m.det().item() == pytest.approx(8.0)
    np.testing.assert_array_equal(m.matrix_power(2).numpy(), [[4, 0], [0, 16]])


def test_integer_products_stay_integer():
    a = hubkit.tensor([[1, 2], [3, 4]])
    assert hubkit.einsum("ij,jk->ik", a, a).dtype == np.int64
    assert hubkit.matrix_power(a, 2).tolist() == [[7, 10], [15, 22]]
    assert hubkit.outer(hubkit.tensor([1, 2]), hubkit.tensor([3])).tolist() == [[3], [6]]


def test_errors_name_the_op_and_the_shapes():
    with pytest.raises(ShapeError, match="dot: expects two 1-d tensors of the same length"):
        hubkit.dot(hubkit.ones(3), hubkit.ones(4))
    with pytest.raises(DTypeError, match="dot: expected both tensors to have the same dtype"):
        hubkit.dot(hubkit.ones(3), hubkit.ones(3, dtype=hubkit.float64))
    with pytest.raises(ShapeError, match="einsum: the equation has 2 operands but 1 tensors were given"):
        hubkit.einsum("ij,jk", hubkit.ones(2, 2))
    with pytest.raises(ShapeError, match="einsum: subscript 'j' has size 3 in one operand and 4 in another"):
        hubkit.einsum("ij,jk", hubkit.ones(2, 3), hubkit.ones(4, 2))
    with pytest.raises(ShapeError, match="einsum: subscripts 'ij' do not match an operand of shape"):
        hubkit.einsum("ij", hubkit.ones(2, 2, 2))
    with pytest.raises(ShapeError, match="matrix_power: expects square matrices"):
        hubkit.matrix_power(hubkit.ones(2, 3), 2)
    with pytest.raises(LinAlgError, match="inverse: a matrix is singular"):
        hubkit.inverse(hubkit.zeros(2, 2))
    with pytest.raises(DTypeError, match="det: expects a floating-point tensor"):
        hubkit.det(hubkit.tensor([[1, 2], [3, 4]]))
    with pytest.raises(ShapeError, match="tensordot: contracted dims"):
        hubkit.tensordot(hubkit.ones(2, 3), hubkit.ones(2, 3), ([1], [1, 0]))
    with pytest.raises(ShapeError, match=r"addmm: shapes \(3,\) and \(2, 2\) cannot be broadcast"):
        hubkit.addmm(hubkit.ones(3), hubkit.ones(2, 2), hubkit.ones(2, 2))
