"""``hubkit.linalg`` (PyTorch's ``torch.linalg``): norms, singular values, solve and the re-exported
products and determinants; gradients, PyTorch parity and the errors. The factorizations are tested in
test_linalg_decompositions.py."""

import math

import numpy as np
import pytest
from opcases import case_ids, check_gradient, check_torch, inputs, n

import hubkit
import hubkit.linalg as LA
from hubkit.errors import ArgumentError, LinAlgError, ShapeError


def _linalg(t):
    return LA if t is hubkit else t.linalg


def _matrix_norm(order):
    return lambda t, x: _linalg(t).matrix_norm(x, order)


def well_conditioned(*shape):
    return lambda r: r.standard_normal(shape) * 0.3 + np.eye(shape[-1])


CASES = [
    ("vector_norm", lambda t, x: _linalg(t).vector_norm(x, 3, dim=1), n(2, 4)),
    ("vector_norm-all", lambda t, x: _linalg(t).vector_norm(x), n(2, 3)),
    *[(f"matrix_norm-{o}", _matrix_norm(o), n(2, 3, 3)) for o in ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)],
    ("matrix_norm-dims-keepdim", lambda t, x: _linalg(t).matrix_norm(x, 1, dim=(0, 2), keepdim=True), n(3, 2, 4)),
    ("norm-default", lambda t, x: _linalg(t).norm(x), n(2, 3, 2)),
    ("norm-matrix-ord", lambda t, x: _linalg(t).norm(x, "nuc"), n(3, 2)),
    ("norm-vector-ord", lambda t, x: _linalg(t).norm(x, 1), n(5)),
    ("norm-dim", lambda t, x: _linalg(t).norm(x, 2, dim=-1), n(2, 3)),
    ("svdvals", lambda t, x: _linalg(t).svdvals(x), n(2, 4, 3)),
    ("solve-vector", lambda t, a, b: _linalg(t).solve(a, b), inputs(well_conditioned(3, 3), n(3))),
    ("solve-batched", lambda t, a, b: _linalg(t).solve(a, b), inputs(well_conditioned(2, 3, 3), n(3, 2))),
    ("solve-right", lambda t, a, b: _linalg(t).solve(a, b, left=False), inputs(well_conditioned(3, 3), n(2, 3))),
    ("vecdot", lambda t, x, y: _linalg(t).vecdot(x, y), inputs(n(2, 3), n(3))),
    ("cross", lambda t, x, y: _linalg(t).cross(x, y), inputs(n(2, 3), n(2, 3))),
    ("diagonal", lambda t, x: _linalg(t).diagonal(x, offset=1), n(2, 3, 3)),
    ("inv", lambda t, x: _linalg(t).inv(x), well_conditioned(3, 3)),
    ("det", lambda t, x: _linalg(t).det(x), n(2, 3, 3)),
    ("slogdet", lambda t, x: _linalg(t).slogdet(x).logabsdet, n(3, 3)),
    ("multi_dot", lambda t, a, b, c: _linalg(t).multi_dot([a, b, c]), inputs(n(3), n(3, 4), n(4))),
    ("matrix_power", lambda t, x: _linalg(t).matrix_power(x, 3), n(3, 3)),
]


@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=case_ids(CASES))
def test_gradient_matches_central_differences(name, fn, make):
    check_gradient(name, fn, make)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=case_ids(CASES))
def test_forward_and_backward_match_torch(name, fn, make, dtype):
    check_torch(name, fn, make, dtype, rtol=1e-4 if dtype == np.float32 else None)


def test_errors_and_unknown_names():
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        LA.nothing  # noqa: B018
    with pytest.raises(LinAlgError, match="linalg.solve: the matrix A is singular"):
        LA.solve(hubkit.zeros(2, 2), hubkit.ones(2))
    with pytest.raises(ShapeError, match="linalg.solve: A .* and B .* do not fit"):
        LA.solve(hubkit.eye(2), hubkit.ones(3))
    with pytest.raises(ArgumentError, match="matrix_norm: ord must be"):
        LA.matrix_norm(hubkit.ones(2, 2), 3)
    with pytest.raises(ArgumentError, match="ord='fro' is a matrix norm"):
        LA.norm(hubkit.ones(3), "fro")
