"""layer_norm over trailing dims, with and without affine parameters."""

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, rng_for

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ShapeError


def _n(*shapes):
    return lambda r: [np.asarray(r.standard_normal(s)) for s in shapes]


CASES = [
    ("last-dim", lambda m, x, w, b: m.layer_norm(x, (4,), w, b), _n((3, 4), (4,), (4,))),
    ("two-dims", lambda m, x, w, b: m.layer_norm(x, (3, 4), w, b), _n((2, 3, 4), (3, 4), (3, 4))),
    ("no-affine", lambda m, x: m.layer_norm(x, (4,)), _n((3, 4))),
    ("weight-only", lambda m, x, w: m.layer_norm(x, (4,), w), _n((3, 4), (4,))),
    ("eps", lambda m, x, w, b: m.layer_norm(x, (4,), w, b, eps=0.1), _n((3, 4), (4,), (4,))),
    ("size-one-batch", lambda m, x, w, b: m.layer_norm(x, (6,), w, b), _n((1, 6), (6,), (6,))),
    ("1d-input", lambda m, x, w, b: m.layer_norm(x, (4,), w, b), _n((4,), (4,), (4,))),
    ("empty-batch", lambda m, x, w, b: m.layer_norm(x, (3,), w, b), _n((0, 3), (3,), (3,))),
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


def test_output_is_normalized_over_the_trailing_dims():
    x = hubkit.randn(5, 3, 8) * 4 + 2
    y = F.layer_norm(x, (3, 8)).numpy().reshape(5, -1)
    np.testing.assert_allclose(y.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(1), 1, rtol=1e-3)
    assert y.dtype == np.float32


def test_an_int_normalized_shape_means_the_last_dim():
    x = hubkit.randn(2, 5)
    np.testing.assert_array_equal(F.layer_norm(x, 5).numpy(), F.layer_norm(x, (5,)).numpy())


def test_shape_errors_name_input_and_normalized_shape():
    with pytest.raises(ShapeError, match=r"layer_norm: input \(2, 3\) must end with normalized_shape \(4,\)"):
        F.layer_norm(hubkit.zeros(2, 3), (4,))
    with pytest.raises(ShapeError, match=r"weight has shape \(2,\), expected normalized_shape \(3,\)"):
        F.layer_norm(hubkit.zeros(2, 3), (3,), hubkit.ones(2))
