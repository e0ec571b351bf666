"""Dropout: train/eval behaviour, scaling, reproducibility from hubkit's generator, gradients."""

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError


def _seeded_dropout(p):
    def fn(x):
        hubkit.manual_seed(123)  # the same mask on every evaluation, so central differences apply
        return F.dropout(x, p)

    return fn


@pytest.mark.parametrize("shape", [(3, 4), (1, 5), (0, 3), ()])
@pytest.mark.parametrize("p", [0.3, 0.9])
def test_gradient_matches_central_differences(shape, p):
    gradcheck(_seeded_dropout(p), [np.random.default_rng(0).standard_normal(shape)])


def test_training_zeroes_about_p_and_scales_the_rest():
    hubkit.manual_seed(0)
    x = hubkit.ones(200_000)
    y = F.dropout(x, 0.3).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs((~kept).mean() - 0.3) < 0.01  # 45 standard deviations would be needed to fail by chance
    assert y.dtype == np.float32


def test_gradient_is_the_same_mask_and_scale():
    hubkit.manual_seed(1)
    x = hubkit.randn(50, requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    expected = np.where(y.detach().numpy() != 0, 2.0, 0.0)
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_eval_mode_and_p_zero_return_the_input_unchanged():
    x = hubkit.randn(3, 4)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_p_one_drops_everything():
    x = hubkit.randn(3, 4, requires_grad=True)
    y = F.dropout(x, 1.0)
    assert not y.detach().numpy().any()
    y.sum().backward()
    assert not x.grad.numpy().any()


def test_manual_seed_makes_masks_reproducible():
    x = hubkit.ones(1000)
    hubkit.manual_seed(7)
    a = F.dropout(x, 0.5).numpy()
    b = F.dropout(x, 0.5).numpy()
    hubkit.manual_seed(7)
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_invalid_probability_is_rejected(p):
    with pytest.raises(ArgumentError, match="between 0 and 1"):
        F.dropout(hubkit.ones(2), p)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_eval_mode_matches_torch(dtype):
    compare_with_torch(lambda m, x: m.dropout(x * 2, 0.4, training=False), [np.random.rand(3, 4)], dtype=dtype)
