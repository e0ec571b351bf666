"""Elementwise ops: gradients against central differences, forward/backward against PyTorch,
type promotion, reflected operators, erf accuracy and broadcast errors."""

import math

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, rng_for

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ShapeError
from hubkit.ops.elementwise import erf_array


def _n(*shape):
    return lambda r: r.standard_normal(shape)


def _pos(*shape):
    return lambda r: r.uniform(0.5, 2.0, shape)


def _away_from_zero(*shape):
    return lambda r: r.uniform(0.5, 2.0, shape) * r.choice([-1.0, 1.0], shape)


def _inputs(*makers):
    return lambda r: [m(r) for m in makers]


# (name, fn(m, *inputs) with m = hubkit.nn.functional or torch, input maker)
CASES = [
    ("add", lambda m, a, b: m.add(a, b), _inputs(_n(2, 3), _n(2, 3))),
    ("add-broadcast", lambda m, a, b: a + b, _inputs(_n(3, 1, 4), _n(2, 1))),
    ("add-alpha", lambda m, a, b: m.add(a, b, alpha=-1.5), _inputs(_n(2, 3), _n(3))),
    ("add-scalar", lambda m, a: a + 2.5, _inputs(_n(4))),
    ("add-0d-tensor", lambda m, a, b: a + b, _inputs(_n(2, 3), _n())),
    ("add-empty", lambda m, a, b: a + b, _inputs(_n(0, 3), _n(1, 3))),
    ("add-size-one", lambda m, a, b: a + b, _inputs(_n(1, 1), _n(1, 4))),
    ("sub-broadcast", lambda m, a, b: a - b, _inputs(_n(2, 1), _n(1, 3))),
    ("sub-alpha", lambda m, a, b: m.sub(a, b, alpha=2), _inputs(_n(3), _n(3))),
    ("rsub-scalar", lambda m, a: 1.5 - a, _inputs(_n(2, 2))),
    ("mul-broadcast", lambda m, a, b: a * b, _inputs(_n(2, 3, 1), _n(4))),
    ("mul-self", lambda m, a: a * a, _inputs(_n(3))),
    ("div-broadcast", lambda m, a, b: a / b, _inputs(_n(2, 3), _away_from_zero(3))),
    ("rdiv-scalar", lambda m, b: 2.0 / b, _inputs(_away_from_zero(2, 3))),
    ("pow-scalar", lambda m, a: a**3, _inputs(_n(2, 3))),
    ("pow-tensor", lambda m, a, b: m.pow(a, b), _inputs(_pos(2, 3), _n(2, 3))),
    ("pow-broadcast", lambda m, a, b: a**b, _inputs(_pos(3, 1), _n(4))),
    ("rpow-scalar", lambda m, b: 2.0**b, _inputs(_n(5))),
    ("neg", lambda m, a: -a, _inputs(_n(2, 3))),
    ("exp", lambda m, a: m.exp(a), _inputs(_n(2, 3))),
    ("exp-0d", lambda m, a: m.exp(a), _inputs(_n())),
    ("log", lambda m, a: m.log(a), _inputs(_pos(2, 3))),
    ("sqrt", lambda m, a: m.sqrt(a), _inputs(_pos(4))),
    ("abs", lambda m, a: m.abs(a), _inputs(_away_from_zero(2, 3))),
    ("clamp", lambda m, a: m.clamp(a, -0.5, 0.5), _inputs(_n(3, 4))),
    ("clamp-min-only", lambda m, a: m.clamp(a, min=0.1), _inputs(_n(3, 4))),
    ("clamp-max-only", lambda m, a: m.clamp(a, max=0.1), _inputs(_n(3, 4))),
    ("maximum", lambda m, a, b: m.maximum(a, b), _inputs(_n(2, 3), _n(2, 3))),
    ("maximum-broadcast", lambda m, a, b: m.maximum(a, b), _inputs(_n(2, 1), _n(3))),
    ("minimum", lambda m, a, b: m.minimum(a, b), _inputs(_n(2, 3), _n(1, 3))),
    ("where", lambda m, c, a, b: m.where(c, a, b),
     lambda r: [r.random((2, 3)) > 0.5, r.standard_normal((2, 3)), r.standard_normal((2, 3))]),
    ("where-broadcast", lambda m, c, a, b: m.where(c, a, b),
     lambda r: [r.random((3, 1)) > 0.5, r.standard_normal((1, 4)), r.standard_normal((3, 4))]),
    ("where-scalar", lambda m, c, a: m.where(c, a, 0.0), lambda r: [r.random(5) > 0.5, r.standard_normal(5)]),
    ("erf", lambda m, a: m.erf(a), lambda r: [r.standard_normal((3, 4)) * 2.5]),
    ("composite", lambda m, a, b: (a * b - a / (b * b + 1)).exp() * 0.1, _inputs(_n(2, 3), _n(3))),
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


def test_erf_matches_math_erf_to_1e_13_in_float64():
    xs = np.concatenate([np.linspace(-8, 8, 80001), np.geomspace(1e-300, 1e-2, 500), [0.0, -0.0]])
    ref = np.array([math.erf(v) for v in xs])
    assert np.abs(erf_array(xs) - ref).max() < 1e-13
    assert np.abs(erf_array(-xs) + ref).max() < 1e-13


def test_erf_float32_stays_float32_and_is_accurate():
    xs = np.linspace(-6, 6, 20001).astype(np.float32)
    out = erf_array(xs)
    assert out.dtype == np.float32
    ref = np.array([math.erf(float(v)) for v in xs])
    assert np.abs(out - ref).max() < 3e-7


def test_erf_handles_infinities_nan_and_empty():
    out = erf_array(np.array([np.inf, -np.inf, np.nan]))
    assert out[0] == 1.0 and out[1] == -1.0 and np.isnan(out[2])
    assert erf_array(np.zeros((2, 0))).shape == (2, 0)
    assert hubkit.erf(hubkit.tensor(0.5)).item() == pytest.approx(math.erf(0.5), abs=1e-7)


@pytest.mark.parametrize(
    "expr",
    [lambda x: x + 1.5, lambda x: 2.0 * x, lambda x: x / 3, lambda x: x**2.5, lambda x: 1 - x,
     lambda x: x * np.float64(2), lambda x: x + hubkit.tensor(1.0, dtype=hubkit.float64),
     lambda x: hubkit.where(x > 0, x, 0.0), lambda x: hubkit.maximum(x, hubkit.tensor(0.0, dtype=hubkit.float64))],
)
def test_scalars_and_0d_tensors_never_promote_float32(expr):
    assert expr(hubkit.ones(3)).dtype == np.float32


def test_integer_and_bool_promotion_follows_torch():
    i = hubkit.tensor([1, 2, 3])
    assert (i + 1).dtype == np.int64
    assert (i * 1.5).dtype == np.float32
    assert (i / 2).dtype == np.float32
    assert (i + hubkit.tensor(1.5, dtype=hubkit.float64)).dtype == np.float64  # a 0-d float beats an int tensor
    assert (hubkit.tensor([True, False]) + 1).dtype == np.int64
    assert (hubkit.tensor([1, 2], dtype=hubkit.int32) + hubkit.tensor(1)).dtype == np.int32
    assert (hubkit.ones(2) + hubkit.ones(2, dtype=hubkit.float64)).dtype == np.float64


def test_reflected_operators_with_numpy_arrays_and_scalars():
    t = hubkit.tensor([1.0, 2.0, 4.0])
    a = np.array([2.0, 2.0, 2.0], dtype=np.float32)
    for result, expected in [
        (a + t, [3, 4, 6]), (a - t, [1, 0, -2]), (a * t, [2, 4, 8]), (a / t, [2, 1, 0.5]),
        (2 ** t, [2, 4, 16]), (3 - t, [2, 1, -1]), (8 / t, [8, 4, 2]), (t // 2, [0, 1, 2]), (5 // t, [5, 2, 1]),
    ]:
        assert isinstance(result, hubkit.Tensor)
        np.testing.assert_allclose(result.numpy(), expected)
    m = np.eye(3, dtype=np.float32)
    assert isinstance(m @ t, hubkit.Tensor)
    np.testing.assert_allclose((m @ t).numpy(), t.numpy())


def test_reflected_operator_gradient_reaches_the_tensor():
    t = hubkit.tensor([1.0, 2.0], requires_grad=True)
    (np.array([3.0, 4.0], dtype=np.float32) * t + 1.0 / t).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), [3 - 1.0, 4 - 0.25])


def test_comparisons_return_bool_tensors_without_grad():
    a = hubkit.tensor([1.0, 2.0, 3.0], requires_grad=True)
    reflected = 2 < a  # noqa: SIM300  (int.__lt__ defers to Tensor.__gt__)
    for r, expected in [(a > 2, [0, 0, 1]), (a >= 2, [0, 1, 1]), (a < 2, [1, 0, 0]), (a <= 2, [1, 1, 0]),
                        (a == 2, [0, 1, 0]), (a != 2, [1, 0, 1]), (reflected, [0, 0, 1])]:
        assert r.dtype == np.bool_ and not r.requires_grad
        np.testing.assert_array_equal(r.numpy(), np.array(expected, dtype=bool))


@pytest.mark.parametrize("op", [F.add, F.sub, F.mul, F.div, F.maximum, F.minimum, F.pow])
def test_broadcast_error_names_op_and_both_shapes(op):
    with pytest.raises(ShapeError, match=rf"{op.__name__}: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        op(hubkit.ones(2, 3), hubkit.ones(4))


def test_maximum_splits_the_gradient_of_ties_evenly():
    a = hubkit.tensor([1.0, 2.0], requires_grad=True)
    b = hubkit.tensor([1.0, 3.0], requires_grad=True)
    F.maximum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.5, 0.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.5, 1.0])
