"""Activations and the softmax family: gradients, PyTorch parity, stability and kink conventions."""

import warnings

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, rng_for

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError


def _n(*shape, scale=3.0):
    return lambda r: [np.asarray(r.standard_normal(shape) * scale)]


CASES = [
    ("relu", lambda m, x: m.relu(x), _n(3, 4)),
    ("relu-method", lambda m, x: x.relu(), _n(2, 3)),
    ("relu-empty", lambda m, x: m.relu(x), _n(0, 4)),
    ("leaky_relu", lambda m, x: m.leaky_relu(x, 0.2), _n(3, 4)),
    ("leaky_relu-default", lambda m, x: m.leaky_relu(x), _n(5)),
    ("elu", lambda m, x: m.elu(x, alpha=0.7), _n(3, 4)),
    ("sigmoid", lambda m, x: m.sigmoid(x), _n(3, 4)),
    ("sigmoid-extreme", lambda m, x: m.sigmoid(x), _n(6, scale=40.0)),
    ("tanh", lambda m, x: m.tanh(x), _n(3, 4)),
    ("gelu-erf", lambda m, x: m.gelu(x), _n(3, 4)),
    ("gelu-tanh", lambda m, x: m.gelu(x, approximate="tanh"), _n(3, 4)),
    ("gelu-0d", lambda m, x: m.gelu(x), _n()),
    ("silu", lambda m, x: m.silu(x), _n(3, 4)),
    ("softplus", lambda m, x: m.softplus(x), _n(3, 4)),
    ("softplus-beta-threshold", lambda m, x: m.softplus(x, beta=2.0, threshold=3.0), _n(3, 4)),
    ("softplus-large", lambda m, x: m.softplus(x), _n(6, scale=50.0)),
    ("hardtanh", lambda m, x: m.hardtanh(x), _n(3, 4, scale=1.5)),
    ("hardtanh-bounds", lambda m, x: m.hardtanh(x, -0.5, 2.0), _n(3, 4)),
    ("relu6", lambda m, x: m.relu6(x), _n(3, 4, scale=5.0)),
    ("hardswish", lambda m, x: m.hardswish(x), _n(3, 4)),
    ("hardsigmoid", lambda m, x: m.hardsigmoid(x), _n(3, 4)),
    ("softmax-last", lambda m, x: m.softmax(x, -1), _n(3, 4)),
    ("softmax-dim0", lambda m, x: m.softmax(x, 0), _n(3, 4)),
    ("softmax-3d-middle", lambda m, x: x.softmax(1), _n(2, 3, 4)),
    ("softmax-large-logits", lambda m, x: m.softmax(x, 1), _n(2, 5, scale=300.0)),
    ("softmax-size-one", lambda m, x: m.softmax(x, 1), _n(3, 1)),
    ("softmax-empty", lambda m, x: m.softmax(x, 1), _n(0, 3)),
    ("softmax-0d", lambda m, x: m.softmax(x, 0), _n()),
    ("log_softmax-last", lambda m, x: m.log_softmax(x, -1), _n(3, 4)),
    ("log_softmax-dim0", lambda m, x: x.log_softmax(0), _n(3, 4)),
    ("log_softmax-large-logits", lambda m, x: m.log_softmax(x, 1), _n(2, 5, scale=300.0)),
    ("log_softmax-4d", lambda m, x: m.log_softmax(x, 1), _n(2, 3, 2, 2)),
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


@pytest.mark.parametrize("fn", [F.relu, F.leaky_relu, F.elu, F.sigmoid, F.tanh, F.gelu, F.silu, F.softplus,
                                F.hardtanh, F.relu6, F.hardswish, F.hardsigmoid,
                                lambda x: F.softmax(x, 1), lambda x: F.log_softmax(x, 1)])
def test_activations_keep_float32_and_stay_finite(fn):
    x = hubkit.tensor([[-1000.0, -3.0, 0.0, 3.0, 1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings from numpy either
        y = fn(x)
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y.numpy()))


def test_gradients_at_kinks_follow_torch():
    x = hubkit.tensor([0.0, -1.0, 1.0, 6.0, -3.0, 3.0], requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1, 1, 0, 1])
    x.grad = None
    F.hardtanh(x).sum().backward()  # nothing passes at the bounds
    np.testing.assert_array_equal(x.grad.numpy(), [1, 0, 0, 0, 0, 0])
    x.grad = None
    F.relu6(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1, 0, 0, 1])
    x.grad = None
    F.hardswish(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 1 / 6, 5 / 6, 1, -0.5, 1.5])


def test_softmax_rows_sum_to_one_and_log_softmax_is_its_log():
    x = hubkit.randn(4, 7) * 10
    p = F.softmax(x, 1)
    np.testing.assert_allclose(p.sum(1).numpy(), np.ones(4), rtol=1e-6)
    np.testing.assert_allclose(F.log_softmax(x, 1).exp().numpy(), p.numpy(), rtol=1e-5, atol=1e-7)


def test_softmax_without_dim_picks_pytorch_legacy_dim_and_warns():
    x = hubkit.randn(2, 3)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = F.softmax(x)
    np.testing.assert_allclose(y.numpy(), F.softmax(x, 1).numpy())


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ArgumentError, match="approximate must be 'none' or 'tanh'"):
        F.gelu(hubkit.ones(2), approximate="fast")


def test_tensor_methods_and_top_level_names_exist():
    x = hubkit.randn(2, 3)
    for name in ("relu", "sigmoid", "tanh"):
        np.testing.assert_allclose(getattr(x, name)().numpy(), getattr(F, name)(x).numpy())
        np.testing.assert_allclose(getattr(hubkit, name)(x).numpy(), getattr(F, name)(x).numpy())
    np.testing.assert_allclose(hubkit.softmax(x, 0).numpy(), x.softmax(0).numpy())


def test_relu_relu6_and_hardtanh_of_integer_tensors():
    """Integer inputs keep their dtype through relu (the clamp kernel had turned an infinite bound into an
    OverflowError); relu6 and hardtanh take floating point, as their float-only ops."""
    x = hubkit.tensor(np.array([[-3, 0], [2, 9]], dtype=np.int64))
    y = F.relu(x)
    assert y.dtype == hubkit.int64 and y.numpy().tolist() == [[0, 0], [2, 9]]
    assert F.relu(hubkit.tensor(np.array([0, 200], dtype=np.uint8))).numpy().tolist() == [0, 200]
    assert F.relu6(x).numpy().tolist() == [[0, 0], [2, 6]]
