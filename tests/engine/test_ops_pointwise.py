"""Pointwise math (hubkit/ops/pointwise.py, special.py): gradients against central differences, values
and gradients against PyTorch, dtype rules, in-place variants, special-function accuracy and errors."""

import math

import numpy as np
import pytest
from opcases import (
    away_from_zero,
    case_ids,
    check_gradient,
    check_torch,
    distinct,
    inputs,
    n,
    uniform,
)

import hubkit
from hubkit.errors import ArgumentError, DTypeError, ShapeError

# (name, fn(ns, *xs) with ns = hubkit or torch, input maker)
UNARY = [
    ("sin", lambda t, x: t.sin(x), n(2, 3)),
    ("cos", lambda t, x: t.cos(x), n(2, 3)),
    ("tan", lambda t, x: t.tan(x), uniform(-1.2, 1.2, 5)),
    ("asin", lambda t, x: t.asin(x), uniform(-0.9, 0.9, 5)),
    ("arcsin", lambda t, x: t.arcsin(x), uniform(-0.9, 0.9, 5)),
    ("acos", lambda t, x: t.acos(x), uniform(-0.9, 0.9, 5)),
    ("atan", lambda t, x: t.atan(x), n(5)),
    ("sinh", lambda t, x: t.sinh(x), n(5)),
    ("cosh", lambda t, x: t.cosh(x), n(5)),
    ("asinh", lambda t, x: t.asinh(x), n(5)),
    ("acosh", lambda t, x: t.acosh(x), uniform(1.2, 4.0, 5)),
    ("atanh", lambda t, x: t.atanh(x), uniform(-0.9, 0.9, 5)),
    ("exp2", lambda t, x: t.exp2(x), n(5)),
    ("expm1", lambda t, x: t.expm1(x), n(5)),
    ("log2", lambda t, x: t.log2(x), uniform(0.2, 3.0, 5)),
    ("log10", lambda t, x: t.log10(x), uniform(0.2, 3.0, 5)),
    ("log1p", lambda t, x: t.log1p(x), uniform(-0.5, 3.0, 5)),
    ("rsqrt", lambda t, x: t.rsqrt(x), uniform(0.3, 3.0, 5)),
    ("reciprocal", lambda t, x: t.reciprocal(x), away_from_zero(5)),
    ("square", lambda t, x: t.square(x), n(2, 3)),
    ("sinc", lambda t, x: t.sinc(x), n(6)),
    ("deg2rad", lambda t, x: t.deg2rad(x), n(4, scale=90)),
    ("rad2deg", lambda t, x: t.rad2deg(x), n(4)),
    ("erfc", lambda t, x: t.erfc(x), n(6, scale=1.5)),
    ("erfinv", lambda t, x: t.erfinv(x), uniform(-0.95, 0.95, 6)),
    ("lgamma", lambda t, x: t.lgamma(x), uniform(-3.3, 6.0, 6)),
    ("digamma", lambda t, x: t.digamma(x), uniform(0.3, 6.0, 6)),
    ("digamma-negative", lambda t, x: t.digamma(x), uniform(-2.9, -2.1, 4)),
    ("polygamma-1", lambda t, x: t.polygamma(1, x), uniform(0.3, 6.0, 5)),
    ("polygamma-3", lambda t, x: t.polygamma(3, x), uniform(0.5, 4.0, 5)),
    ("mvlgamma", lambda t, x: t.mvlgamma(x, 3), uniform(1.5, 5.0, 4)),
    ("i0", lambda t, x: t.i0(x), n(5, scale=3)),
    ("logit", lambda t, x: t.logit(x), uniform(0.05, 0.95, 5)),
    ("logit-eps", lambda t, x: t.logit(x, eps=0.2), uniform(0.01, 0.99, 8)),
    ("frac", lambda t, x: t.frac(x), distinct(6)),
    ("floor", lambda t, x: t.floor(x), distinct(5)),
    ("ceil", lambda t, x: t.ceil(x), distinct(5)),
    ("round", lambda t, x: t.round(x), distinct(5)),
    ("round-decimals", lambda t, x: t.round(x, decimals=1), distinct(5)),
    ("trunc", lambda t, x: t.trunc(x), distinct(5)),
    ("fix", lambda t, x: t.fix(x), distinct(5)),
    ("sign", lambda t, x: t.sign(x), away_from_zero(5)),
    ("sgn", lambda t, x: t.sgn(x) * x, away_from_zero(5)),  # torch hands sgn a ZeroTensor gradient
    ("positive", lambda t, x: t.positive(x) * 2, n(3)),
    ("nan_to_num", lambda t, x: t.nan_to_num(x, nan=1.5), n(5)),
    ("clamp_min", lambda t, x: t.clamp_min(x, 0.1), distinct(6)),
    ("clamp_max", lambda t, x: t.clamp_max(x, 0.1), distinct(6)),
    ("angle", lambda t, x: t.angle(x), away_from_zero(5)),
    ("frexp-mantissa", lambda t, x: t.frexp(x).mantissa, away_from_zero(5)),
]

BINARY = [
    ("atan2", lambda t, a, b: t.atan2(a, b), inputs(n(2, 3), n(3))),
    ("arctan2", lambda t, a, b: t.arctan2(a, b), inputs(n(3), n(3))),
    ("hypot", lambda t, a, b: t.hypot(a, b), inputs(n(2, 3), n(2, 1))),
    ("logaddexp", lambda t, a, b: t.logaddexp(a, b), inputs(n(2, 3, scale=3), n(3, scale=3))),
    ("logaddexp2", lambda t, a, b: t.logaddexp2(a, b), inputs(n(4), n(4))),
    ("copysign", lambda t, a, b: t.copysign(a, b), inputs(away_from_zero(5), away_from_zero(5))),
    ("fmod", lambda t, a, b: t.fmod(a, b), inputs(distinct(6), uniform(0.7, 1.3, 6))),
    ("remainder", lambda t, a, b: t.remainder(a, b), inputs(distinct(6), uniform(0.7, 1.3, 6))),
    ("remainder-scalar", lambda t, a: t.remainder(a, 1.5), inputs(distinct(6))),
    ("xlogy", lambda t, a, b: t.xlogy(a, b), inputs(n(5), uniform(0.3, 3.0, 5))),
    ("fmax", lambda t, a, b: t.fmax(a, b), inputs(distinct(2, 3), distinct(3))),
    ("fmin", lambda t, a, b: t.fmin(a, b), inputs(distinct(2, 3), distinct(3))),
    ("float_power", lambda t, a, b: t.float_power(a, b), inputs(uniform(0.5, 2.0, 4), n(4))),
    ("float_power-scalar", lambda t, a: t.float_power(a, 3), inputs(n(4))),
    ("ldexp", lambda t, a: t.ldexp(a, t.tensor([1, -2, 3])), inputs(n(3))),
    ("lerp-scalar", lambda t, a, b: t.lerp(a, b, 0.3), inputs(n(2, 3), n(3))),
    ("lerp-tensor", lambda t, a, b, w: t.lerp(a, b, w), inputs(n(2, 3), n(2, 3), uniform(0, 1, 3))),
    ("addcmul", lambda t, a, b, c: t.addcmul(a, b, c, value=0.5), inputs(n(2, 3), n(3), n(2, 1))),
    ("addcdiv", lambda t, a, b, c: t.addcdiv(a, b, c, value=-2), inputs(n(2, 3), n(2, 3), away_from_zero(3))),
    ("rsub", lambda t, a, b: t.rsub(a, b, alpha=2), inputs(n(3), n(3))),
    ("mod-operator", lambda t, a, b: a % b, inputs(distinct(5), uniform(0.7, 1.3, 5))),
]

CASES = UNARY + BINARY


@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=case_ids(CASES))
def test_gradient_matches_central_differences(name, fn, make):
    check_gradient(name, fn, make)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=case_ids(CASES))
def test_forward_and_backward_match_torch(name, fn, make, dtype):
    check_torch(name, fn, make, dtype)


# ---------------------------------------------------------------- dtype rules

FLOAT_OF_INT = ["sin", "cos", "tan", "asin", "atan", "sinh", "asinh", "exp2", "expm1", "log2", "log10", "log1p",
                "rsqrt", "reciprocal", "sinc", "deg2rad", "rad2deg", "erfc", "erfinv", "lgamma", "digamma", "i0",
                "logit"]


@pytest.mark.parametrize("name", FLOAT_OF_INT)
def test_integer_and_bool_input_to_float_math_gives_float32(name):
    assert getattr(hubkit, name)(hubkit.tensor([1, 2, 3])).dtype == np.float32
    assert getattr(hubkit, name)(hubkit.tensor([True, False])).dtype == np.float32
    assert getattr(hubkit, name)(hubkit.tensor([0.5], dtype=hubkit.float64)).dtype == np.float64


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc", "fix", "sign", "square"])
def test_rounding_sign_and_square_keep_integer_dtypes(name):
    out = getattr(hubkit, name)(hubkit.tensor([-2, 3], dtype=hubkit.int32))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.numpy(), {"sign": [-1, 1], "square": [4, 9]}.get(name, [-2, 3]))


def test_binary_dtype_rules_follow_torch():
    i = hubkit.tensor([3, -7])
    assert hubkit.atan2(i, i).dtype == np.float32
    assert hubkit.copysign(i, hubkit.tensor([-1, 1])).dtype == np.float32
    assert hubkit.fmod(i, 2).dtype == np.int64
    np.testing.assert_array_equal(hubkit.remainder(i, 2).numpy(), [1, 1])
    np.testing.assert_array_equal(hubkit.fmod(i, 2).numpy(), [1, -1])
    assert hubkit.float_power(hubkit.tensor([2]), 2).dtype == np.float64
    assert hubkit.ldexp(hubkit.tensor([1]), hubkit.tensor([3])).dtype == np.float32
    assert hubkit.sin(hubkit.ones(2)).dtype == np.float32


def test_python_scalars_do_not_promote_float32():
    x = hubkit.ones(3)
    for out in (hubkit.atan2(x, 2.0), hubkit.hypot(x, 1.5), hubkit.logaddexp(x, 0.5), hubkit.lerp(x, x, 0.3),
                hubkit.fmod(x, 0.7), hubkit.xlogy(x, 2.0), hubkit.addcmul(x, x, x, value=0.5)):
        assert out.dtype == np.float32


# ---------------------------------------------------------------- methods, in-place variants, operators


@pytest.mark.parametrize("name", ["sin", "exp2", "log1p", "erfinv", "frac", "trunc", "lgamma", "square"])
def test_method_equals_function_and_inplace_writes_through(name):
    base = np.array([0.25, 0.5, 0.75])
    fn = getattr(hubkit, name)
    expected = fn(hubkit.tensor(base)).numpy()
    np.testing.assert_allclose(getattr(hubkit.tensor(base), name)().numpy(), expected)
    t = hubkit.tensor(base)
    alias = t.data
    assert getattr(t, name + "_")() is t
    np.testing.assert_allclose(t.numpy(), expected)
    np.testing.assert_allclose(alias.numpy(), expected)  # the same memory was written


def test_inplace_binary_and_ternary_variants():
    t = hubkit.tensor([1.0, 2.0])
    t.lerp_(hubkit.tensor([3.0, 4.0]), 0.5)
    np.testing.assert_allclose(t.numpy(), [2.0, 3.0])
    t.addcmul_(hubkit.tensor([1.0, 1.0]), hubkit.tensor([2.0, 3.0]), value=2)
    np.testing.assert_allclose(t.numpy(), [6.0, 9.0])
    t.fmod_(4)
    np.testing.assert_allclose(t.numpy(), [2.0, 1.0])
    t.clamp_min_(1.5)
    np.testing.assert_allclose(t.numpy(), [2.0, 1.5])


def test_inplace_on_a_graph_value_keeps_the_gradient():
    x = hubkit.tensor([0.3, 0.7], dtype=hubkit.float64, requires_grad=True)
    y = x * 2
    y.sin_()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(2 * np.array([0.3, 0.7])))


def test_remainder_shift_and_unary_plus_operators():
    a = hubkit.tensor([5, -3, 8])
    np.testing.assert_array_equal((a % 3).numpy(), [2, 0, 2])
    np.testing.assert_array_equal((7 % hubkit.tensor([4, 5])).numpy(), [3, 2])
    np.testing.assert_array_equal((a << 1).numpy(), [10, -6, 16])
    np.testing.assert_array_equal((hubkit.tensor([8, 16]) >> 2).numpy(), [2, 4])
    assert +a is a
    b = hubkit.tensor([9, 10])
    b %= 4
    b <<= 2
    np.testing.assert_array_equal(b.numpy(), [4, 8])


# ---------------------------------------------------------------- values and edge cases


def test_rounding_is_half_to_even_with_decimals():
    np.testing.assert_allclose(hubkit.round(hubkit.tensor([0.5, 1.5, 2.5, -0.5])).numpy(), [0, 2, 2, -0.0])
    np.testing.assert_allclose(hubkit.round(hubkit.tensor([1.2345, 1234.5]), decimals=2).numpy(), [1.23, 1234.5])
    np.testing.assert_allclose(hubkit.round(hubkit.tensor([1234.5]), decimals=-2).numpy(), [1200.0])


def test_rounding_passes_a_zero_gradient():
    x = hubkit.tensor([0.3, 1.7], requires_grad=True)
    (hubkit.floor(x) + hubkit.ceil(x) + hubkit.round(x) + hubkit.sign(x)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])


def test_nan_to_num_defaults_and_gradient():
    x = hubkit.tensor([np.nan, np.inf, -np.inf, 1.0], requires_grad=True)
    out = hubkit.nan_to_num(x)
    big = np.finfo(np.float32).max
    np.testing.assert_array_equal(out.detach().numpy(), np.array([0.0, big, -big, 1.0], dtype=np.float32))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0, 1])


def test_special_values_at_poles_and_ends():
    lg = hubkit.lgamma(hubkit.tensor([0.0, -1.0, np.inf, 1.0, 2.0], dtype=hubkit.float64)).numpy()
    assert np.isposinf(lg[:3]).all() and np.allclose(lg[3:], 0.0, atol=1e-14)
    dg = hubkit.digamma(hubkit.tensor([0.0, -2.0, 1.0], dtype=hubkit.float64)).numpy()
    assert np.isneginf(dg[0]) and np.isnan(dg[1]) and dg[2] == pytest.approx(-0.5772156649015329, abs=1e-14)
    ei = hubkit.erfinv(hubkit.tensor([1.0, -1.0, 1.5, 0.0])).numpy()
    assert np.isposinf(ei[0]) and np.isneginf(ei[1]) and np.isnan(ei[2]) and ei[3] == 0.0
    ec = hubkit.erfc(hubkit.tensor([-np.inf, np.inf, 30.0], dtype=hubkit.float64)).numpy()
    np.testing.assert_array_equal(ec, [2.0, 0.0, 0.0])


def test_erfc_keeps_relative_precision_in_the_tail():
    # erfc(10) = 2.088e-45: 1 - erf would give 0
    assert hubkit.erfc(hubkit.tensor([10.0], dtype=hubkit.float64)).item() == pytest.approx(2.088487583762545e-45,
                                                                                             rel=1e-12)
    assert hubkit.erfc(hubkit.tensor([5.0])).item() == pytest.approx(math.erfc(5.0), rel=1e-6)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "lo", "hi", "rtol"), [
    ("lgamma", -20.5, 60.0, 1e-12), ("digamma", -9.7, 60.0, 1e-12), ("erfc", -6.0, 26.0, 1e-11),
    ("erfinv", -0.999999, 0.999999, 1e-12), ("i0", -30.0, 30.0, 1e-12), ("sinc", -8.0, 8.0, 1e-12),
])
def test_special_functions_match_torch_over_their_range(name, lo, hi, rtol, dtype):
    import torch

    xs = np.linspace(lo, hi, 2001).astype(dtype)
    xs = xs[np.abs(xs - np.round(xs)) > 1e-3] if name in ("lgamma", "digamma") else xs  # away from the poles
    ours = getattr(hubkit, name)(hubkit.tensor(xs)).numpy()
    ref = getattr(torch, name)(torch.from_numpy(xs)).numpy()
    if dtype == np.float64:
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * 10 if name == "lgamma" else 0)
    else:  # hubkit evaluates float32 in float64 and rounds once; torch's float32 kernels are a little looser
        np.testing.assert_allclose(ours, ref, rtol=2e-6, atol=1e-6)


@pytest.mark.parity
def test_polygamma_and_i0_gradient_match_torch_on_a_grid():
    import torch

    xs = np.linspace(0.2, 12.0, 60)
    for k in range(4):
        ours = hubkit.polygamma(k, hubkit.tensor(xs)).numpy()
        # torch's own trigamma carries ~5e-10 relative error (a short series), hence the tolerance
        np.testing.assert_allclose(ours, torch.polygamma(k, torch.from_numpy(xs)).numpy(), rtol=1e-8)
    x = hubkit.tensor(xs, requires_grad=True)
    hubkit.i0(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), torch.special.i1(torch.from_numpy(xs)).numpy(), rtol=1e-12)


@pytest.mark.parity
def test_non_differentiable_pointwise_ops_match_torch():
    import torch

    a = np.array([-1.5, 0.0, 2.0, np.nan])
    b = np.array([0.5, 0.25, 0.5, 0.5])
    np.testing.assert_array_equal(hubkit.heaviside(hubkit.tensor(a), hubkit.tensor(b)).numpy(),
                                  torch.heaviside(torch.tensor(a), torch.tensor(b)).numpy())
    np.testing.assert_array_equal(hubkit.nextafter(hubkit.tensor(a[:3]), hubkit.tensor(b[:3])).numpy(),
                                  torch.nextafter(torch.tensor(a[:3]), torch.tensor(b[:3])).numpy())
    i, j = np.array([12, 18, -4]), np.array([8, 12, 6])
    for name in ("gcd", "lcm", "bitwise_left_shift", "bitwise_right_shift"):
        ours = getattr(hubkit, name)(hubkit.tensor(i), hubkit.tensor(np.abs(j) % 5))
        np.testing.assert_array_equal(ours.numpy(), getattr(torch, name)(torch.tensor(i), torch.tensor(np.abs(j) % 5)))
    np.testing.assert_array_equal(hubkit.signbit(hubkit.tensor([-0.0, 0.0, -1.0])).numpy(), [True, False, True])
    m, e = hubkit.frexp(hubkit.tensor([8.0, 0.3]))
    tm, te = torch.frexp(torch.tensor([8.0, 0.3]))
    np.testing.assert_array_equal(m.numpy(), tm.numpy())
    np.testing.assert_array_equal(e.numpy(), te.numpy())
    assert e.dtype == np.int32


def test_fmax_ignores_nan_and_splits_ties_like_torch():
    nan = float("nan")
    a = hubkit.tensor([nan, 1.0, 2.0, 3.0], requires_grad=True)
    b = hubkit.tensor([1.0, nan, 2.0, 1.0], requires_grad=True)
    out = hubkit.fmax(a, b)
    np.testing.assert_array_equal(out.detach().numpy(), [1.0, 1.0, 2.0, 3.0])
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 1.0, 0.5, 1.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0, 0.5, 0.0])


def test_real_tensor_complex_helpers():
    x = hubkit.tensor([-2.0, 3.0])
    assert hubkit.real(x) is x and x.real is x and hubkit.conj(x) is x and x.resolve_conj() is x
    np.testing.assert_allclose(hubkit.angle(x).numpy(), [math.pi, 0.0])
    assert not x.is_complex() and not hubkit.is_conj(x) and hubkit.isreal(x).numpy().all()
    with pytest.raises(DTypeError, match="non-complex"):
        _ = x.imag


# ---------------------------------------------------------------- errors


def test_bad_input_errors_say_what_is_wrong():
    with pytest.raises(DTypeError, match="frac: expected a floating-point tensor"):
        hubkit.frac(hubkit.tensor([1, 2]))
    with pytest.raises(DTypeError, match="integer division with addcdiv"):
        hubkit.addcdiv(hubkit.ones(2), hubkit.tensor([1, 2]), hubkit.tensor([1, 2]))
    with pytest.raises(ArgumentError, match="polygamma: n must be a non-negative int"):
        hubkit.polygamma(-1, hubkit.ones(2))
    with pytest.raises(ArgumentError, match=r"greater than \(p-1\)/2 = 1.0"):
        hubkit.mvlgamma(hubkit.tensor([0.9, 2.0]), 3)
    with pytest.raises(DTypeError, match="positive: the \\+ operator on a bool tensor"):
        hubkit.positive(hubkit.tensor([True]))
    with pytest.raises(DTypeError, match="gcd: expected integer tensors"):
        hubkit.gcd(hubkit.ones(2), hubkit.ones(2))
    with pytest.raises(ShapeError, match=r"atan2: shapes \(2,\) and \(3,\) cannot be broadcast"):
        hubkit.atan2(hubkit.ones(2), hubkit.ones(3))
    with pytest.raises(DTypeError, match="heaviside: input .* and values .* must have the same dtype"):
        hubkit.heaviside(hubkit.ones(2), hubkit.tensor([1], dtype=hubkit.float64))
