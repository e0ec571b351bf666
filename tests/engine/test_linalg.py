"""Matrix products: matmul (vectors, batches, broadcasting, empty), mm, bmm, linear."""

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, rng_for

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import DTypeError, ShapeError


def _n(*shapes):
    return lambda r: [np.asarray(r.standard_normal(s)) for s in shapes]


CASES = [
    ("matmul-2d", lambda m, a, b: m.matmul(a, b), _n((2, 3), (3, 4))),
    ("matmul-operator", lambda m, a, b: a @ b, _n((2, 3), (3, 4))),
    ("matmul-vector-matrix", lambda m, a, b: a @ b, _n((3,), (3, 4))),
    ("matmul-matrix-vector", lambda m, a, b: a @ b, _n((2, 3), (3,))),
    ("matmul-dot", lambda m, a, b: a @ b, _n((3,), (3,))),
    ("matmul-batched-vector", lambda m, a, b: a @ b, _n((5, 2, 3), (3,))),
    ("matmul-vector-batched", lambda m, a, b: a @ b, _n((3,), (2, 3, 4))),
    ("matmul-broadcast-batches", lambda m, a, b: a @ b, _n((2, 1, 2, 3), (4, 3, 2))),
    ("matmul-empty-rows", lambda m, a, b: a @ b, _n((0, 3), (3, 2))),
    ("matmul-zero-inner", lambda m, a, b: a @ b, _n((2, 0), (0, 3))),
    ("matmul-size-one", lambda m, a, b: a @ b, _n((1, 1), (1, 4))),
    ("mm", lambda m, a, b: m.mm(a, b), _n((3, 2), (2, 2))),
    ("bmm", lambda m, a, b: m.bmm(a, b), _n((2, 3, 4), (2, 4, 2))),
    ("linear", lambda m, x, w, b: m.linear(x, w, b), _n((4, 3), (2, 3), (2,))),
    ("linear-no-bias", lambda m, x, w: m.linear(x, w), _n((4, 3), (2, 3))),
    ("linear-3d-input", lambda m, x, w, b: m.linear(x, w, b), _n((2, 3, 4), (5, 4), (5,))),
    ("linear-1d-input", lambda m, x, w, b: m.linear(x, w, b), _n((3,), (2, 3), (2,))),
    ("linear-empty-batch", lambda m, x, w, b: m.linear(x, w, b), _n((0, 3), (2, 3), (2,))),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=IDS)
def test_gradient_matches_central_differences(name, fn, make):
    gradcheck(lambda *xs: fn(F, *xs), make(rng_for(name)))


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=IDS)
def test_forward_and_backward_match_torch(name, fn, make, dtype):
    compare_with_torch(fn, make(rng_for(name)), dtype=dtype)


def test_matmul_inner_dim_error_names_op_and_shapes():
    with pytest.raises(ShapeError, match=r"matmul: \(2, 3\) @ \(4, 5\): inner dims 3 and 4 differ"):
        hubkit.zeros(2, 3) @ hubkit.zeros(4, 5)


def test_matmul_batch_error_names_batch_dims():
    with pytest.raises(ShapeError, match=r"batch dims \(2,\) and \(3,\) cannot be broadcast"):
        hubkit.zeros(2, 2, 3) @ hubkit.zeros(3, 3, 4)


def test_mm_and_bmm_insist_on_their_ranks():
    with pytest.raises(ShapeError, match=r"mm: expects two 2-d tensors, got shapes \(2, 3, 4\) and \(4, 5\)"):
        hubkit.mm(hubkit.zeros(2, 3, 4), hubkit.zeros(4, 5))
    with pytest.raises(ShapeError, match=r"bmm: .*\(2, 3, 4\) and \(3, 4, 5\)"):
        hubkit.bmm(hubkit.zeros(2, 3, 4), hubkit.zeros(3, 4, 5))


def test_linear_errors_name_the_shapes():
    with pytest.raises(ShapeError, match=r"linear: input \(4, 3\) @ weight.T \(5, 2\)"):
        F.linear(hubkit.zeros(4, 3), hubkit.zeros(2, 5))
    with pytest.raises(ShapeError, match=r"bias has shape \(3,\), expected \(2,\)"):
        F.linear(hubkit.zeros(4, 3), hubkit.zeros(2, 3), hubkit.zeros(3))
    with pytest.raises(DTypeError, match="float64"):
        F.linear(hubkit.zeros(4, 3, dtype=hubkit.float64), hubkit.zeros(2, 3))


def test_matmul_keeps_float32():
    assert (hubkit.randn(2, 3) @ hubkit.randn(3, 4)).dtype == np.float32
